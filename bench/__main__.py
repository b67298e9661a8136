"""``python -m bench``: a province-scale busy day through pingan, against floors from the same run.

    python -m bench                                   # SQLite, 2,000 units, the busy morning
    python -m bench --days busy,overdue               # and the overdue morning five weeks later
    python -m bench --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m bench --scale                           # 200, 1,000, 4,000 units (busy day)
    python -m bench --units 500 --profile             # cProfile of every phase into bench/out/

Every database is created fresh and removed afterwards (PostgreSQL: ``pingan_bench_<random>``
on the server of the URL, dropped at the end). Messages go to a loopback HTTP sink in a
process of its own. Results: a table on the console and JSON in ``bench/out/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.busyday import DAYS, BenchError, run_once
from bench.databases import fresh_postgres, fresh_sqlite
from bench.report import machine, print_runs, write_json
from bench.sink import Sink
from pingan.core.migrate import safe_url

OUT = Path(__file__).resolve().parent / "out"


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers separated by commas")
    return sizes


def _days(text: str) -> list[str]:
    days = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [d for d in days if d not in DAYS]
    if unknown or not days:
        raise argparse.ArgumentTypeError(f"days are among {', '.join(DAYS)}")
    return days


def _shown(arg: str) -> str:
    """A command-line argument fit for the report: a database URL without its password."""
    name, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
    return f"{name}{eq}{safe_url(value)}" if value.startswith("postgresql") else arg


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=2000, help="schools in the synthetic organisation (default 2000)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL: a server URL (a fresh database is made there)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (with --postgres)")
    parser.add_argument("--scale", action="store_true", help="run several sizes to show growth (see --sizes)")
    parser.add_argument("--sizes", type=_sizes, default=[200, 1000, 4000], help="sizes for --scale (default 200,1000,4000)")
    parser.add_argument("--days", type=_days, default=None,
                        help="mornings to run, among busy,overdue (default: busy; the overdue one needs busy first)")
    parser.add_argument("--no-rerun", action="store_true", help="skip the idempotency re-run of each day")
    parser.add_argument("--per-run", action="store_true",
                        help="the shape before the digest: every duty run followed by a dispatch (to compare with old figures)")
    parser.add_argument("--history", action="store_true",
                        help="run the first morning twice: on a fresh database, then after months of history (bench.history)")
    parser.add_argument("--profile", action="store_true", help="cProfile every phase into bench/out/profile-*/ (slows it)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (SQLite folder, PostgreSQL database)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the JSON results (default bench/out)")
    args = parser.parse_args(argv)
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")
    args.days = args.days or ["busy"]
    if "overdue" in args.days and "busy" not in args.days:
        parser.error("--days overdue needs the busy morning first: --days busy,overdue")
    args.days = [d for d in DAYS if d in args.days]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    profile_dir = args.out / f"profile-{stamp}" if args.profile else None
    backends = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    sizes = args.sizes if args.scale else [args.units]
    facts = machine()
    console.print(f"pingan bench: {facts['nproc']} CPU(s) ({facts.get('cpu', '?')}), Python {facts['python']}, "
                  f"{', '.join(backends)}; sizes {', '.join(f'{n:,}' for n in sizes)}; days {', '.join(args.days)}; "
                  f"reference loop {facts['reference_loop_s']:.3f} s"
                  + ("; [yellow]profiling (times are inflated)[/]" if args.profile else ""))
    runs, started, error = [], time.perf_counter(), None
    load_before = os.getloadavg()
    try:
        with Sink(max_seconds=4 * 3600, idle_seconds=900) as sink:
            for backend in backends:
                for units in sizes:
                    for history in ((False, True) if args.history else (False,)):
                        fresh = fresh_sqlite(keep=args.keep) if backend == "sqlite" else fresh_postgres(args.postgres, keep=args.keep)
                        with fresh as db:
                            console.print(f"[bold]{db.server_version}[/] on {db.shown}" + (" (with history)" if history else ""))
                            run_once(db, sink, units, args.days, runs, rerun=not args.no_rerun, profile_dir=profile_dir,
                                     log=console.print, per_run=args.per_run, history=history)
    except BenchError as exc:
        error = str(exc)
    elapsed = time.perf_counter() - started
    print_runs(console, runs, scale=args.scale and not error)
    command = "python -m bench " + " ".join(_shown(a) for a in (sys.argv[1:] if argv is None else argv))
    path = args.out / f"bench-{stamp}.json"
    facts["loadavg_before"], facts["loadavg_after"] = load_before, os.getloadavg()
    write_json(path, {"command": command.strip(), "started": stamp, "seconds": elapsed, "machine": facts,
                      "days": {d: DAYS[d].isoformat() for d in args.days}, "scale": args.scale, "error": error,
                      "runs": [r.as_dict() for r in runs]})
    if error:
        console.print(f"[red]bench check failed:[/] {error}\npartial results in {path}")
        return 1
    console.print(f"{elapsed:.0f} s in all; load average {load_before[0]:.1f} before, {facts['loadavg_after'][0]:.1f} after; "
                  f"results in {path}" + (f", profiles in {profile_dir}" if profile_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
