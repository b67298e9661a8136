"""Rich tables for the console, JSON for bench/out/, machine facts for both."""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import sys
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.busyday import Run


def reference_loop() -> float:
    """Seconds for a fixed pure-Python loop (best of three): how fast this machine runs Python
    today. Floors compare within one run; this compares runs on machines of different speed
    (shared virtual machines of the same kind differ by 2× and more from one day to the next)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sum(range(10_000_000))
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def machine() -> dict:
    facts = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {},
        "reference_loop_s": reference_loop(),
    }
    for name in ("sqlalchemy", "sqlmodel", "apprise", "requests", "urllib3", "psycopg"):
        try:
            facts["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        facts["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return facts


def _n(x: float | int | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if count and seconds > 0 else "–"


def run_table(run: Run) -> Table:
    org = run.org
    table = Table(
        title=f"{run.server} — {run.units:,} units, {org['persons']:,} persons, {run.settings['duties_planned']} planned duties, "
              f"send_concurrency {run.settings['send_concurrency']}",
        title_justify="left",
    )
    for name, justify in (("day", "left"), ("phase", "left"), ("count", "right"), ("what", "left"), ("pingan s", "right"),
                          ("per s", "right"), ("CPU s", "right"), ("floor", "left"), ("floor s", "right"),
                          ("floor per s", "right"), ("× floor", "right"), ("× floor CPU", "right")):
        table.add_column(name, justify=justify)
    for name, seconds in run.setup.items():
        table.add_row("setup", name.replace("_", " "), "", "", _n(seconds), "", "", "", "", "", "", "")
    current = None
    for p in run.phases:
        if p.day.endswith("(re-run)"):
            continue
        if p.day != current:
            table.add_section()
            current = p.day
        f = p.floor
        table.add_row(p.day, p.name, _n(p.count), p.unit, _n(p.seconds), _rate(p.count, p.seconds), _n(p.cpu),
                      f.label if f else "", _n(f.seconds, 3) if f else "", _rate(f.count, f.seconds) if f else "",
                      f"{p.ratio:,.1f}" if p.ratio else "–", f"{p.cpu_ratio:,.1f}" if p.cpu_ratio else "–")
        nc = p.extra.get("floor_new_connection")
        if nc and nc["seconds"] > 0:  # a sample: compare rates
            table.add_row("", "", "", "", "", "", "", f"{nc['label']} ({nc['count']:,})", _n(nc["seconds"], 3),
                          _rate(nc["count"], nc["seconds"]), f"{(nc['count'] / nc['seconds']) / (p.count / p.seconds):,.1f}",
                          f"{(nc['count'] / nc['cpu']) / (p.count / p.cpu):,.1f}" if nc["cpu"] and p.cpu else "–")
    if run.reruns:
        table.add_section()
        for day, r in run.reruns.items():
            ok = "idempotent" if r["idempotent"] else "CHANGED"
            table.add_row(f"{day} (re-run)", "all", _n(sum(r["inserted"].values())), f"rows, {r['posts']} POSTs: {ok}",
                          _n(r["seconds"]), "", "", "", "", "", "", "")
    return table


_SCALED = ("plan", "remind", "escalate", "dispatch")


def _phase(run: Run, day: str, name: str):
    return next((p for p in run.phases if p.day == day and p.name == name), None)


def scale_table(runs: list[Run], day: str) -> Table:
    runs = sorted(runs, key=lambda r: r.units)
    table = Table(title=f"{runs[0].server} — growth with the number of units ({day} day)", title_justify="left")
    table.add_column("units", justify="right")
    for name in _SCALED:
        table.add_column(name, justify="right")
    table.add_column("re-run s", justify="right")
    for run in runs:
        cells = [_n(run.units)]
        for name in _SCALED:
            p = _phase(run, day, name)
            cells.append(f"{p.count:,} in {p.seconds:.2f} s\n{_n(p.ratio, 1)}× floor" if p else "–")
        rerun = run.reruns.get(day)
        cells.append(_n(rerun["seconds"]) if rerun else "–")
        table.add_row(*cells)
    table.add_section()
    for a, b in zip(runs, runs[1:]):
        cells = [f"k {a.units:,}→{b.units:,}"]
        for name in _SCALED:
            pa, pb = _phase(a, day, name), _phase(b, day, name)
            if pa and pb and (k := growth(a.units, pa.seconds, b.units, pb.seconds)) is not None:
                cells.append(f"{_n(k)} (CPU {_n(growth(a.units, pa.cpu, b.units, pb.cpu))})")
            else:
                cells.append("–")
        ra, rb = a.reruns.get(day), b.reruns.get(day)
        cells.append(_n(growth(a.units, ra["seconds"], b.units, rb["seconds"])) if ra and rb else "–")
        table.add_row(*cells)
    table.caption = "k: time ∝ units^k between two sizes (1 linear, 2 quadratic), on wall and on CPU time"
    return table


def growth(n1: int, t1: float, n2: int, t2: float) -> float | None:
    """k in t ∝ n^k between two sizes: 1 is linear, 2 quadratic."""
    if min(n1, n2, t1, t2) <= 0 or n1 == n2:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def print_runs(console: Console, runs: list[Run], *, scale: bool) -> None:
    if scale:
        for backend in dict.fromkeys(r.backend for r in runs):
            mine = [r for r in runs if r.backend == backend]
            for day in dict.fromkeys(p.day for r in mine for p in r.phases if not p.day.endswith("(re-run)")):
                console.print(scale_table(mine, day))
    else:
        for run in runs:
            console.print(run_table(run))
    for line in summary_lines([r.as_dict() for r in runs]):
        console.print(line)
    for run in runs:
        for p in run.phases:
            if p.name == "dispatch" and p.count and p.extra.get("sink_cpu") is not None:
                console.print(f"{run.backend}, {p.day}: the sink used {p.extra['sink_cpu']:.2f} s CPU for "
                              f"{p.count:,} messages over {p.extra['connections']:,} connections; message bodies: "
                              f"median {p.extra['body_bytes_median']:,} B, largest {p.extra['body_bytes_max']:,} B, "
                              f"{p.extra['over_2048_bytes']:,} over 2,048 B; {p.extra.get('recipients', 0):,} recipients, "
                              f"{p.extra.get('messages_per_recipient', 0)} message(s) each on average, at most "
                              f"{p.extra.get('most_messages_one_recipient', 0)}")
        for note in run.notes:
            console.print(f"[yellow]note ({run.backend}, {run.units:,} units):[/] {note}")
        for day, r in run.reruns.items():
            console.print(f"re-run of the {day} day on {run.backend} ({run.units:,} units): "
                          f"{sum(r['inserted'].values())} rows inserted, {r['posts']} messages sent — "
                          + ("[green]idempotent[/]" if r["idempotent"] else "[red]NOT idempotent[/]"))


def summary_lines(runs: list[dict]) -> list[str]:
    """Each morning's total (every phase, sending included), the peak memory, and what history costs."""
    out = []
    for r in runs:
        label = f"{r['backend']}+history" if r.get("history") else r["backend"]
        days = dict.fromkeys(p["day"] for p in r["phases"] if not p["day"].endswith("(re-run)"))
        totals = ", ".join(f"{day} {sum(p['seconds'] for p in r['phases'] if p['day'] == day):.1f} s" for day in days)
        again = ", ".join(f"{day} again {rr['seconds']:.1f} s" for day, rr in r.get("reruns", {}).items())
        rss = f"; peak RSS {r['peak_rss_mb']:,.0f} MB" if r.get("peak_rss_mb") else ""
        if r.get("morning_rss_mb"):
            rss += f" with the floors, {r['morning_rss_mb']:,.0f} MB after the first morning before them"
        out.append(f"{label}, {r['units']:,} units — whole morning: {totals}" + (f"; {again}" if again else "") + rss)
    fresh = {(r["backend"], r["units"]): r for r in runs if not r.get("history")}
    for r in runs:
        base = fresh.get((r["backend"], r["units"])) if r.get("history") else None
        if base is None:
            continue
        rows = sum(r["history"]["rows"].values())
        for day in dict.fromkeys(p["day"] for p in r["phases"] if not p["day"].endswith("(re-run)")):
            cells = []
            for name in _SCALED:
                a = next((p for p in base["phases"] if p["day"] == day and p["name"] == name), None)
                b = next((p for p in r["phases"] if p["day"] == day and p["name"] == name), None)
                if a and b and a["seconds"] > 0:
                    cells.append(f"{name} {b['seconds'] / a['seconds']:.2f}×")
            total_a = sum(p["seconds"] for p in base["phases"] if p["day"] == day)
            total_b = sum(p["seconds"] for p in r["phases"] if p["day"] == day)
            out.append(f"history ({r['backend']}, {r['units']:,} units, {rows:,} rows from {r['history']['from']}): the {day} "
                       f"morning costs {total_b / total_a:.2f}× the same morning on a fresh database ({', '.join(cells)})")
    return out


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


# --------------------------------------------------------------------------- markdown for docs/PERFORMANCE.md

def _md_ratio(x: float | None) -> str:
    return f"{x:,.1f}×" if x else "–"


def markdown(payload: dict) -> str:
    """The figures of one results file as Markdown tables (``python -m bench.report FILE``)."""
    out = [f"`{payload['command']}` — {payload['seconds']:.0f} s, load average "
           f"{payload['machine']['loadavg_before'][0]:.1f} → {payload['machine']['loadavg_after'][0]:.1f}", ""]
    runs = payload["runs"]
    if payload.get("scale"):
        for backend in dict.fromkeys(r["backend"] for r in runs):
            mine = sorted((r for r in runs if r["backend"] == backend), key=lambda r: r["units"])
            days = dict.fromkeys(p["day"] for r in mine for p in r["phases"] if not p["day"].endswith("(re-run)"))
            for day in days:
                out += [f"{mine[0]['server']}, {day} morning:", "",
                        "| units | " + " | ".join(_SCALED) + " | re-run |", "|---:|" + "---:|" * (len(_SCALED) + 1)]
                for r in mine:
                    cells = []
                    for name in _SCALED:
                        p = next((p for p in r["phases"] if p["day"] == day and p["name"] == name), None)
                        cells.append(f"{p['count']:,} in {p['seconds']:.1f} s ({_md_ratio(p['ratio'])})" if p else "–")
                    rr = r["reruns"].get(day)
                    out.append(f"| {r['units']:,} | " + " | ".join(cells) + (f" | {rr['seconds']:.1f} s |" if rr else " | – |"))
                for a, b in zip(mine, mine[1:]):
                    cells = []
                    for name in _SCALED:
                        pa = next(p for p in a["phases"] if p["day"] == day and p["name"] == name)
                        pb = next(p for p in b["phases"] if p["day"] == day and p["name"] == name)
                        k = growth(a["units"], pa["seconds"], b["units"], pb["seconds"])
                        kc = growth(a["units"], pa["cpu"], b["units"], pb["cpu"])
                        cells.append(f"k = {k:.2f} (CPU {kc:.2f})" if k is not None and kc is not None else "–")
                    ra, rb = a["reruns"].get(day), b["reruns"].get(day)
                    k = growth(a["units"], ra["seconds"], b["units"], rb["seconds"]) if ra and rb else None
                    tail = f" | k = {k:.2f} |" if k else " | – |"
                    out.append(f"| {a['units']:,}→{b['units']:,} | " + " | ".join(cells) + tail)
                out.append("")
        return "\n".join(out)
    for r in runs:
        out += [f"{r['server']}, {r['units']:,} units, {r['org']['persons']:,} persons, "
                f"{r['settings']['duties_planned']} duties, send_concurrency {r['settings']['send_concurrency']}. "
                "Setup: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in r["setup"].items()), "",
                "| morning | phase | count | pingan s | per s | CPU s | floor | floor s | floor per s | × floor "
                "| × floor (CPU) |",
                "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
        for p in r["phases"]:
            if p["day"].endswith("(re-run)"):
                continue
            f = p["floor"]
            rate = f"{p['count'] / p['seconds']:,.0f}" if p["count"] and p["seconds"] else "–"
            out.append(f"| {p['day']} | {p['name']} | {p['count']:,} {p['unit']} | {p['seconds']:.2f} | {rate} | "
                       f"{p['cpu']:.2f} | "
                       + (f"{f['label']} | {f['seconds']:.2f} | {f['count'] / f['seconds']:,.0f} | " if f else "– | | | ")
                       + f"{_md_ratio(p['ratio'])} | {_md_ratio(p['cpu_ratio'])} |")
            nc = p["extra"].get("floor_new_connection")
            if nc and nc["seconds"]:
                rate_nc, rate_p = nc["count"] / nc["seconds"], p["count"] / p["seconds"]
                out.append(f"| | | | | | | {nc['label']} (sample of {nc['count']:,}) | {nc['seconds']:.2f} | "
                           f"{rate_nc:,.0f} | {rate_nc / rate_p:.1f}× | "
                           f"{(nc['count'] / nc['cpu']) / (p['count'] / p['cpu']):.1f}× |")
        for day, rr in r["reruns"].items():
            out.append(f"| {day} again | all | {sum(rr['inserted'].values())} rows, {rr['posts']} POSTs | "
                       f"{rr['seconds']:.2f} | | | | | | | |")
        out.append("")
    out += [f"- {line}" for line in summary_lines(runs)]
    return "\n".join(out)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text(encoding="utf-8"))))
