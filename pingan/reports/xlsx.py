"""The compliance report as an XLSX workbook (openpyxl): a sheet per view, frozen headers,
Chinese column names (English with ``PINGAN_LOCALE=en``), a totals row under each view, and a
sheet listing every task behind the figures, with a filter, so each figure can be reproduced.

The file is written to a temporary name beside the target and renamed into place, so a reader
never sees half a workbook; every text cell goes through ``pingan.core.sheets`` and stays text
(a unit named ``=…`` is never a formula).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pingan.core import sheets
from pingan.core.i18n import MESSAGES, pick
from pingan.reports.text import (
    basis_lines, definitions, figure_columns, figure_values, naive, task_columns, task_values, tr, view_table,
)
from pingan.reports.compute import Report

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="2F5597")
TOTAL_FONT = Font(bold=True)
TOTAL_FILL = PatternFill("solid", fgColor="DDEBF7")
RATE_FORMAT = "0.0%"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
VIEWS = ("unit", "leader", "duty")


def _width(value: object) -> int:
    text = str(value if value is not None else "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _table(ws: Worksheet, headers: list[str], rows: list[list[object]], *, freeze: str, totals: list | None = None,
           rate_columns: set[int] = frozenset(), time_columns: set[int] = frozenset(), max_width: int = 48) -> None:
    sheets.append(ws, headers)
    for cell in ws[1]:
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for row in rows:
        sheets.append(ws, row)
    if totals is not None:
        sheets.append(ws, totals)
        for cell in ws[ws.max_row]:
            cell.font, cell.fill = TOTAL_FONT, TOTAL_FILL
    for col in rate_columns:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = RATE_FORMAT
    for col in time_columns:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = TIME_FORMAT
    ws.freeze_panes = freeze
    for index, header in enumerate(headers, 1):
        sample = [header] + [r[index - 1] for r in rows[:200]]
        width = 17 if index in time_columns else max(_width(v) for v in sample) + 2
        ws.column_dimensions[get_column_letter(index)].width = min(max(width, 8), max_width)


def _about(ws: Worksheet, report: Report) -> None:
    p = report.period
    sheets.append(ws, [f"{tr('title')} · {p.key}"])
    ws["A1"].font = Font(bold=True, size=14)
    sheets.append(ws, [tr("period", key=p.key, start=p.start.isoformat(), end=p.end.isoformat(),
                  as_of=f"{report.as_of:%Y-%m-%d %H:%M}")])
    sheets.append(ws, [])
    figs = figure_columns(report)
    values = figure_values(report, report.totals, report.hazard_totals)
    sheets.append(ws, [tr("total"), ""])
    ws.cell(ws.max_row, 1).font = TOTAL_FONT
    for key, header in figs:
        sheets.append(ws, [header, values[key]])
        if key == "rate":
            ws.cell(ws.max_row, 2).number_format = RATE_FORMAT
    sheets.append(ws, [])
    for title, lines in ((tr("basis"), basis_lines()), (tr("definitions"), definitions())):
        sheets.append(ws, [title])
        ws.cell(ws.max_row, 1).font = TOTAL_FONT
        for line in lines:
            sheets.append(ws, [line])
            ws.cell(ws.max_row, 1).alignment = Alignment(wrap_text=True, vertical="top")
        sheets.append(ws, [])
    ws.column_dimensions["A"].width = 100
    ws.column_dimensions["B"].width = 14


def _view(ws: Worksheet, report: Report, view: str) -> None:
    headers, body, totals = view_table(report, view)
    rate_col = headers.index(tr("col.rate")) + 1
    _table(ws, headers, body, freeze="C2", totals=totals, rate_columns={rate_col})


def _matrix(ws: Worksheet, report: Report) -> None:
    duties = report.by_duty
    headers = [tr("col.unit_code"), tr("col.unit"), *(pick(d.label, d.info.get("name_en") or None) for d in duties),
               tr("total")]
    rows = []
    for unit in report.by_unit:
        rates = [report.matrix[(unit.key, d.key)].rate if (unit.key, d.key) in report.matrix else None for d in duties]
        rows.append([unit.key, unit.label, *rates, unit.figures.rate])
    totals = [tr("total"), "", *(d.figures.rate for d in duties), report.totals.rate]
    _table(ws, headers, rows, freeze="C2", totals=totals, rate_columns=set(range(3, len(headers) + 1)), max_width=20)


def _tasks(ws: Worksheet, report: Report) -> None:
    headers = task_columns()
    rows = [task_values(f) for f in report.tasks]
    times = {headers.index(tr("col.due_at")) + 1, headers.index(tr("col.completed_at")) + 1}
    _table(ws, headers, rows, freeze="B2", time_columns=times)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(ws.max_row, 1)}"


def _hazards(ws: Worksheet, report: Report) -> None:
    headers = [tr(f"col.{k}") for k in ("hazard", "unit_code", "unit", "hazard_level", "state", "place", "found_at",
                                         "deadline", "open", "overdue", "found_in_period", "closed_in_period")]
    yes, no = tr("yes"), tr("no")
    rows = [[h.id, h.unit_code, h.unit, tr(f"hz.{h.level}") if h.level in ("general", "major") else h.level,
             tr(f"hzs.{h.state}") if f"rpt.hzs.{h.state}" in MESSAGES else h.state,
             h.place, naive(h.found_at), naive(h.deadline), yes if h.open else no,
             yes if h.overdue else no, yes if h.found_in_period else no, yes if h.closed_in_period else no]
            for h in report.hazards or ()]
    ht = report.hazard_totals
    totals = [tr("total"), "", "", "", "", "", "", "", ht.open if ht else 0, ht.overdue if ht else 0,
              ht.found if ht else 0, ht.closed if ht else 0]
    _table(ws, headers, rows, freeze="B2", totals=totals, time_columns={7, 8})
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(ws.max_row - 1, 1)}"


def _charts(ws: Worksheet, report: Report, charts: Mapping[str, Path]) -> None:
    from openpyxl.drawing.image import Image

    row = 1
    for name, path in charts.items():
        title = tr(f"chart.{name}", key=report.period.key) if f"rpt.chart.{name}" in MESSAGES else name
        sheets.put(ws, row, 1, title).font = TOTAL_FONT
        image = Image(str(path))
        ws.add_image(image, f"A{row + 1}")
        row += int(image.height / 20) + 4


def workbook(report: Report, charts: Mapping[str, Path] | None = None) -> Workbook:
    wb = Workbook()
    _about(wb.active, report)
    wb.active.title = tr("sheet.about")
    for view in VIEWS:
        _view(wb.create_sheet(tr(f"sheet.{view}")), report, view)
    _matrix(wb.create_sheet(tr("sheet.matrix")), report)
    if report.hazards is not None:
        _hazards(wb.create_sheet(tr("sheet.hazards")), report)
    _tasks(wb.create_sheet(tr("sheet.tasks")), report)
    if charts:
        _charts(wb.create_sheet(tr("sheet.charts")), report, charts)
    return wb


def write_workbook(report: Report, path: Path, *, charts: Mapping[str, Path] | None = None) -> Path:
    """Write the workbook to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = workbook(report, charts)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_report(report: Report, xlsx: Path, *, chart_dir: Path | None = None) -> dict[str, Path]:
    """The charts (when ``chart_dir`` is given) and the workbook (with the charts on a sheet):
    {"heatmap": …, "escalations": …, "xlsx": …}."""
    files: dict[str, Path] = {}
    if chart_dir is not None:
        from pingan.reports.charts import draw

        files.update(draw(report, Path(chart_dir)))
    files["xlsx"] = write_workbook(report, Path(xlsx), charts=dict(files))
    return files
