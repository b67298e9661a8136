"""``pingan report``: the compliance report of a period as an XLSX workbook (and PNG charts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from pingan.cli.app import UserError, command, console, parse_as_of, runtime, say


@command("report")
def report(
    period: Optional[str] = typer.Option(
        None, "--period", help="报告期：2026-Q4、2026-H2、2026-11、2026 或 previous-year，默认上一季度 / period: 2026-Q4, 2026-H2, 2026-11, 2026 or previous-year; default the quarter just ended"),
    out: Optional[Path] = typer.Option(None, "--out", help="工作簿（.xlsx），默认 <home>/reports/<period>/ 下 / workbook (.xlsx); default under <home>/reports/<period>/"),
    charts: Optional[Path] = typer.Option(None, "--charts", help="图表目录 / directory for the PNG charts"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出全部数字及其任务编号 / print every figure with its task ids"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="数据截至 / as of, e.g. 2027-01-04 (default now)"),
) -> None:
    """安全工作履职考核报告：按单位、责任领导和职责 / compliance report per unit, leader and duty."""
    from pingan.reports.text import tr
    from pingan.reports.xlsx import write_report
    from pingan.reports.compute import report_dir, report_for
    from pingan.reports.rules import ReportError, parse_period

    rt = runtime()
    moment = parse_as_of(as_of)
    try:
        parsed = parse_period(period, moment)
    except ReportError as exc:
        raise UserError(str(exc)) from None
    target = out or report_dir(rt, parsed) / f"compliance-{parsed.key}.xlsx"
    if target.suffix.lower() != ".xlsx":
        raise UserError(say(f"--out：{str(target)!r} 应以 .xlsx 结尾", f"--out: {str(target)!r} must end in .xlsx"))
    if target.exists() and target.is_dir():
        raise UserError(say(f"--out：{target} 是目录", f"--out: {target} is a directory"))
    if charts is not None and charts.exists() and not charts.is_dir():
        raise UserError(say(f"--charts：{charts} 不是目录", f"--charts: {charts} is not a directory"))
    result = report_for(rt, parsed.key, moment)
    try:
        files = write_report(result, target, chart_dir=charts)
    except OSError as exc:
        raise UserError(say(f"无法写入 {exc.filename or target}：{exc.strerror or exc}",
                            f"cannot write {exc.filename or target}: {exc.strerror or exc}")) from None
    if as_json:
        console.print_json(json.dumps({**result.as_dict(), "files": {k: str(v) for k, v in files.items()}},
                                      ensure_ascii=False))
        return
    table = Table(title=f"{tr('title')} · {result.period.key}（{result.period.start} – {result.period.end}）",
                  caption=tr("total.distinct"), box=box.SIMPLE_HEAD)
    table.add_column(tr("col.leader"), no_wrap=True)
    for key in ("due", "on_time", "late", "pending", "missing", "waived", "rate", "escalated"):
        table.add_column(tr(f"col.{key}"), justify="right", overflow="fold")
    for row in [*result.by_leader, None]:
        f = row.figures if row else result.totals
        if row is None:
            table.add_section()
        name = (row.label or tr("no_leader")) if row else tr("total")
        table.add_row(name, *(str(v) for v in (f.due, f["on_time"], f["late"], f["pending"], f["missing"], f["waived"])),
                      "—" if f.rate is None else f"{f.rate:.1%}", str(f.escalated))
    console.print(table)
    for name, path in files.items():
        console.print(f"{name}: {path}")
