"""The risk-point register as a workbook (安全风险等级清单: 人、物、管、环), read and written with
``pingan.core.sheets``.

One sheet 风险点, one row per point. Reading checks every row against the organisation and
``hazards.yaml`` and reports every problem with its file, sheet, row and column
(:class:`RiskImportError`); nothing is returned unless the whole file is good. Export writes the
same format, so a bureau can export, edit and import again; ``write_template`` writes the
typical school risk points of ``catalog/hazards.yaml``, marked as a template to adapt. Every text
cell written stays text (a place named ``=HYPERLINK(…)`` never becomes a formula).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from models.hazard import RiskCategory, RiskLevel
from pingan.core.i18n import register, t
from pingan.core.sheets import Column, Problems, Sheet, Table, boolean, inert, norm, write_xlsx
from pingan.duties.runtime import Runtime
from pingan.hazards.rules import HazardConfig, hazard_config
from pingan.hazards.views import point_rows
from pingan.org.snapshot import Org

register({
    "risk.err.summary": {"zh-CN": "文件有 {n} 处错误，未导入任何内容：", "en": "{n} problem(s) in the file; nothing was imported:"},
    "risk.err.more": {"zh-CN": "……另有 {n} 处错误", "en": "… and {n} more"},
    "risk.err.read": {"zh-CN": "{file}：无法读取（{reason}）；请使用 .xlsx 工作簿", "en": "{file}: cannot be read ({reason}); use an .xlsx workbook"},
    "risk.err.empty": {"zh-CN": "{place}：没有数据行", "en": "{place}: no data rows"},
    "risk.err.required": {"zh-CN": "必填", "en": "required"},
    "risk.err.too_long": {"zh-CN": "过长（最多 {n} 字）", "en": "too long (at most {n} characters)"},
    "risk.err.unit": {"zh-CN": "没有在用单位 {value!r}", "en": "no active unit {value!r}"},
    "risk.err.other_unit": {"zh-CN": "本次只导入单位 {unit} 的风险点，此行为 {value!r}", "en": "this import is for unit {unit} only, the row names {value!r}"},
    "risk.err.category": {"zh-CN": "{value!r} 不是风险类别（人 / 物 / 管 / 环）", "en": "{value!r} is not a category (人 people / 物 things / 管 management / 环 environment)"},
    "risk.err.level": {"zh-CN": "{value!r} 不是风险等级（重大 / 较大 / 一般 / 低，或 红 / 橙 / 黄 / 蓝）",
                       "en": "{value!r} is not a risk level (重大 major / 较大 high / 一般 general / 低 low, or red / orange / yellow / blue)"},
    "risk.err.owner": {"zh-CN": "没有在职人员 {value!r}", "en": "no active person {value!r}"},
    "risk.err.owner_unit": {"zh-CN": "责任人 {value!r} 不属于单位 {unit}", "en": "owner {value!r} does not belong to unit {unit}"},
    "risk.err.bool": {"zh-CN": "{value!r} 应为 是 或 否", "en": "{value!r} must be 是 (yes) or 否 (no)"},
    "risk.err.twice": {"zh-CN": "风险点 {unit}/{code} 在第 {first} 行已出现", "en": "risk point {unit}/{code} already appears in row {first}"},
    "risk.err.code": {"zh-CN": "编号 {value!r} 不能含空格或 / ; ,", "en": "code {value!r} must not contain spaces or / ; ,"},
})

SHEET, HELP_SHEET = "风险点", "说明"
MAX_ERRORS = 50
_CODE = re.compile(r"^[^\s/;；,，]{1,64}$")

COLUMNS = (
    Column("unit_code", "单位编码", ("unit", "unit_code", "单位", "单位代码"), True, "学校的单位编码（与组织导入一致）；用 --unit 导入时可留空", 12),
    Column("code", "风险点编号", ("code", "编号", "风险点编码"), True, "本单位内唯一，如 R-T01", 12),
    Column("category", "类别", ("category", "风险类别", "类型"), True, "人 / 物 / 管 / 环", 8),
    Column("place", "场所/部位", ("place", "场所", "部位", "风险点"), True, "风险点所在的场所、部位或对象", 28),
    Column("description", "风险描述", ("description", "描述", "风险", "可能导致的后果"), True, "可能发生的事故及后果", 40),
    Column("measures", "管控措施", ("measures", "措施", "管控措施和责任"), True, "日常管控措施", 50),
    Column("level", "风险等级", ("level", "等级", "风险级别"), True, "重大 / 较大 / 一般 / 低（红 / 橙 / 黄 / 蓝）", 10),
    Column("owner_code", "责任人编码", ("owner", "owner_code", "责任人", "负责人编码"), False, "本单位人员编码；空 = 由安全主任、校长负责", 14),
    Column("active", "启用", ("active", "在用"), False, "是 / 否；空 = 是；撤销的风险点填 否", 6),
)
NOTE_HEADER = "备注"


class RiskImportError(ValueError):
    """A bad register file. Each line names the file, sheet, row and column (``summary``: a
    heading counting them; a file that cannot be read at all is one line without it)."""

    def __init__(self, errors: Sequence[str], *, summary: bool = True):
        self.errors = list(errors)
        lines = self.errors[:MAX_ERRORS]
        if len(self.errors) > MAX_ERRORS:
            lines.append(t("risk.err.more", n=len(self.errors) - MAX_ERRORS))
        if summary:
            lines.insert(0, t("risk.err.summary", n=len(self.errors)))
        super().__init__("\n".join(lines))


# =========================================================================== reading a file

@dataclass(frozen=True)
class PointRow:
    row: int
    unit_id: int
    unit_code: str
    code: str
    category: RiskCategory
    place: str
    description: str
    measures: str
    level: RiskLevel
    owner_id: int | None
    active: bool


def _table(path: Path, name: str) -> Table:
    """The register's sheet (风险点…, else the first that is not 说明) as a table."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise RiskImportError([t("risk.err.read", file=name, reason=type(exc).__name__)], summary=False) from None
    try:
        sheet = next((s for s in wb.sheetnames if norm(s).startswith(norm(SHEET))), None)
        sheet = sheet or next(s for s in wb.sheetnames if norm(s) != norm(HELP_SHEET))
        lines = list(wb[sheet].iter_rows(values_only=True))
    except StopIteration:
        raise RiskImportError([t("risk.err.empty", place=name)], summary=False) from None
    finally:
        wb.close()
    table = Table(name, sheet, list(lines[0]) if lines else [], enumerate(lines[1:], start=2))
    if not lines:
        raise RiskImportError([t("risk.err.empty", place=table.place())], summary=False)
    return table


def read_points(path: Path, org: Org, cfg: HazardConfig, *, unit_code: str | None = None,
                name: str | None = None) -> list[PointRow]:
    """Every row of the file, checked against the organisation; ``RiskImportError`` lists all problems."""
    table = _table(path, name or Path(path).name)
    problems = Problems()
    optional = ("unit_code",) if unit_code else ()
    if table.columns(COLUMNS, problems, optional=optional) is None or problems:
        raise RiskImportError(problems.lines)
    units = {u.code: u for u in org.units.values()}
    persons = {p.code: p for p in org.persons.values()}
    if unit_code and unit_code not in units:
        raise RiskImportError(["--unit：" + t("risk.err.unit", value=unit_code)], summary=False)

    out: list[PointRow] = []
    first_row: dict[tuple[str, str], int] = {}
    for row in table.rows(COLUMNS, problems, optional=optional):

        def bad(key: str, message: str) -> None:
            problems.add(row.place(key), message)

        def text(key: str, limit: int) -> str | None:
            v = row.get(key)
            if v is None:
                bad(key, t("risk.err.required"))
            elif len(v) > limit:
                bad(key, t("risk.err.too_long", n=limit))
                return None
            return v

        unit = row.get("unit_code") or unit_code
        if unit is None:
            bad("unit_code", t("risk.err.required"))
        elif unit_code and unit != unit_code:
            bad("unit_code", t("risk.err.other_unit", unit=unit_code, value=unit))
            unit = None
        elif unit not in units:
            bad("unit_code", t("risk.err.unit", value=unit))
            unit = None
        code = text("code", 64)
        if code is not None and not _CODE.match(code):
            bad("code", t("risk.err.code", value=code))
            code = None
        category = level = None
        raw = row.get("category")
        if raw is None:
            bad("category", t("risk.err.required"))
        elif (category := cfg.parse_category(raw)) is None:
            bad("category", t("risk.err.category", value=raw))
        place = text("place", 200)
        description = text("description", 5000)
        measures = text("measures", 5000)
        raw = row.get("level")
        if raw is None:
            bad("level", t("risk.err.required"))
        elif (level := cfg.parse_risk_level(raw)) is None:
            bad("level", t("risk.err.level", value=raw))
        owner_id = None
        raw = row.get("owner_code")
        if raw is not None:
            person = persons.get(raw)
            if person is None:
                bad("owner_code", t("risk.err.owner", value=raw))
            elif unit is not None and person.unit_id != units[unit].id:
                bad("owner_code", t("risk.err.owner_unit", value=raw, unit=unit))
            else:
                owner_id = person.id
        raw = row.get("active")
        active = True if raw is None else boolean(raw)
        if active is None:
            bad("active", t("risk.err.bool", value=raw))
        if unit is not None and code is not None:
            key = (unit, code)
            if key in first_row:
                bad("code", t("risk.err.twice", unit=unit, code=code, first=first_row[key]))
                continue
            first_row[key] = row.number
        if None in (unit, code, category, place, description, measures, level, active):
            continue
        out.append(PointRow(row.number, units[unit].id, unit, code, category, place, description, measures, level,
                            owner_id, active))
    if problems:
        raise RiskImportError(problems.lines)
    if not out:
        raise RiskImportError([t("risk.err.empty", place=table.place())], summary=False)
    return out


# =========================================================================== writing the register

def _write(path: Path, rows: Iterable[Sequence[Any]], *, template: bool, note: str | None = None) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill

    title = "模板（TEMPLATE）：典型学校风险点示例，须由各校根据实际增删、修改后再导入" if template else "风险点清单（导出）"
    points = Sheet(SHEET, [c.header for c in COLUMNS] + ([NOTE_HEADER] if template else []), rows,
                   widths=[c.width for c in COLUMNS] + ([30] if template else []), wrap=True)
    help_ = Sheet(HELP_SHEET, None, [
        (note or "",),
        ("",),
        ("列", "说明"),
        *((c.header + ("（必填）" if c.required else ""), c.help) for c in COLUMNS),
        ("",),
        ("风险等级与检查频次", ""),
    ], widths=[24, 80], freeze=None)

    def heading(ws: Any, sheet: Sheet) -> None:  # the help sheet's first line, large (and marked in a template)
        if sheet is help_:
            cell = inert(WriteOnlyCell(ws, title))
            cell.font = Font(bold=True, size=14, color="C00000" if template else "000000")
            if template:
                cell.fill = PatternFill("solid", fgColor="FFF2CC")
            ws.append([cell])

    write_xlsx(path, [help_, points] if template else [points, help_], style=heading,
               title="风险点清单模板 / risk point template" if template else "风险点清单 / risk points")


def _levels_help(cfg: HazardConfig) -> str:
    return "；".join(f"{s.name}（{s.color_zh}）：{_EVERY_ZH.get(s.check.every, s.check.every)}"
                     for s in cfg.risk_levels.values())


# The help sheet is written in Chinese (as the column help): how often each level is checked.
_EVERY_ZH = {"daily": "每天检查", "weekly": "每周检查", "half_monthly": "每半月检查", "monthly": "每月检查",
            "quarterly": "每季度检查", "half_yearly": "每半年检查", "semester": "每学期检查", "yearly": "每年检查"}


def write_template(rt: Runtime, path: Path, *, unit_code: str | None = None) -> int:
    """The typical school risk points of hazards.yaml as a workbook to adapt; returns the rows written."""
    cfg = hazard_config(rt)
    rows = [
        (unit_code, p.code, cfg.data.categories[p.category].name, p.place, p.description, p.measures,
         cfg.risk_levels[p.level].name.removesuffix("风险"), None, "是", "模板示例：请按本校实际修改或删除")
        for p in cfg.data.risk_template
    ]
    quote = cfg.data.sources["risk_register"]
    _write(path, rows, template=True,
           note=f"依据：{quote.document} 第 {quote.clause} 条 —— {' '.join(quote.text.split())}　{_levels_help(cfg)}")
    return len(rows)


def export_points(session: Session, rt: Runtime, path: Path, *, unit_code: str | None = None,
                  include_inactive: bool = False) -> int:
    """The register as a workbook that ``import_points`` reads back unchanged; returns the rows written."""
    cfg = hazard_config(rt)
    found = point_rows(session, unit_code=unit_code, include_inactive=include_inactive)
    rows = [
        (r.unit_code, r.code, cfg.data.categories[RiskCategory(r.category)].name, r.place, r.description, r.measures,
         cfg.risk_levels[RiskLevel(r.level)].name.removesuffix("风险"), r.owner_code, "是" if r.active else "否")
        for r in found
    ]
    _write(path, rows, template=False, note=_levels_help(cfg))
    return len(rows)
