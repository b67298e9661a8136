"""The risk-point register (安全风险等级清单: 人、物、管、环) and the checks its levels demand.

Register: a workbook with one sheet 风险点 (one row per point) is imported all or nothing — every
problem is reported with its sheet, row and column, and nothing is written unless the whole
file is good. Export writes the same format, so a bureau can export, edit and import again;
``write_template`` writes the typical school risk points of ``catalog/hazards.yaml``, marked as
a template to adapt.

Checks: a point's level sets its cadence (``hazards.yaml``: red weekly … blue each semester).
The daily hazard watch plans one check per active point and period (idempotently, on the
natural key), reminds the point's owner and escalates missed checks with the duty cycle's
rules; an escalation step is claimed with a conditional update of the check's last step, so
overlapping runs cannot fire it twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, NoticeKind, Person, RoleKind, Unit
from models.hazard import RiskCategory, RiskCheck, RiskLevel, RiskPoint
from pingan.duties.catalog import EscalationPolicy
from pingan.core.db import insert_ignore
from pingan.hazards.service import HazardConfig, HazardError, _notice, _notices, hazard_config, report
from pingan.core.i18n import pick, register, t
from pingan.org.snapshot import Org
from pingan.duties.rules import TaskView, escalations_due, open_periods, reminder_due
from pingan.duties.runtime import Runtime

RP, RC = RiskPoint.__table__, RiskCheck.__table__

register({
    "risk.err.summary": {"zh-CN": "文件有 {n} 处错误，未导入任何内容：", "en": "{n} problem(s) in the file; nothing was imported:"},
    "risk.err.more": {"zh-CN": "……另有 {n} 处错误", "en": "… and {n} more"},
    "risk.err.read": {"zh-CN": "{file}：无法读取（{reason}）；请使用 .xlsx 工作簿", "en": "{file}: cannot be read ({reason}); use an .xlsx workbook"},
    "risk.err.empty": {"zh-CN": "{place}：没有数据行", "en": "{place}: no data rows"},
    "risk.err.missing_column": {"zh-CN": "缺少必需的列", "en": "required column missing"},
    "risk.err.duplicate_column": {"zh-CN": "列重复", "en": "column appears twice"},
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
    "risk.err.no_point": {"zh-CN": "没有风险点 {point}", "en": "no risk point {point}"},
    "risk.err.inactive": {"zh-CN": "风险点 {point} 已停用", "en": "risk point {point} is inactive"},
    "risk.err.no_check": {"zh-CN": "风险点 {point} 当前没有待完成的检查（下一检查周期尚未开始）",
                          "en": "risk point {point} has no check waiting (its next period has not begun)"},
    "risk.err.result": {"zh-CN": "检查结果应为 ok（正常）或 hazard（发现隐患）", "en": "the result must be ok or hazard"},
    "risk.err.hazard": {"zh-CN": "发现隐患时须填写隐患描述、等级和整改责任人", "en": "a hazard found needs its description, level and rectifier"},
    "rc.name": {"zh-CN": "{level}点检查：{place}", "en": "{level} point check: {place}"},
    "rc.reason": {"zh-CN": "逾期未检查", "en": "not checked in time"},
})

SHEET, HELP_SHEET = "风险点", "说明"
MAX_ERRORS = 50
_CODE = re.compile(r"^[^\s/;；,，]{1,64}$")
_TRUE = {"是", "true", "yes", "y", "1", "启用", "在用"}
_FALSE = {"否", "false", "no", "n", "0", "停用"}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    aliases: tuple[str, ...]
    required: bool
    width: int
    help: str


COLUMNS = (
    Column("unit_code", "单位编码", ("unit", "unit_code", "单位", "单位代码"), True, 12, "学校的单位编码（与组织导入一致）；用 --unit 导入时可留空"),
    Column("code", "风险点编号", ("code", "编号", "风险点编码"), True, 12, "本单位内唯一，如 R-T01"),
    Column("category", "类别", ("category", "风险类别", "类型"), True, 8, "人 / 物 / 管 / 环"),
    Column("place", "场所/部位", ("place", "场所", "部位", "风险点"), True, 28, "风险点所在的场所、部位或对象"),
    Column("description", "风险描述", ("description", "描述", "风险", "可能导致的后果"), True, 40, "可能发生的事故及后果"),
    Column("measures", "管控措施", ("measures", "措施", "管控措施和责任"), True, 50, "日常管控措施"),
    Column("level", "风险等级", ("level", "等级", "风险级别"), True, 10, "重大 / 较大 / 一般 / 低（红 / 橙 / 黄 / 蓝）"),
    Column("owner_code", "责任人编码", ("owner", "owner_code", "责任人", "负责人编码"), False, 14, "本单位人员编码；空 = 由安全主任、校长负责"),
    Column("active", "启用", ("active", "在用"), False, 6, "是 / 否；空 = 是；撤销的风险点填 否"),
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


def _norm(header: Any) -> str:
    text = re.sub(r"[（(].*?[)）]", "", str(header or ""))
    return re.sub(r"[\s*＊/／]", "", text).lower()


_LOOKUP = {_norm(name): col for col in COLUMNS for name in (col.header, col.key, *col.aliases)}


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


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


def read_points(path: Path, org: Org, cfg: HazardConfig, *, unit_code: str | None = None,
                name: str | None = None) -> list[PointRow]:
    """Every row of the file, checked against the organisation; ``RiskImportError`` lists all problems."""
    import openpyxl

    name = name or Path(path).name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise RiskImportError([t("risk.err.read", file=name, reason=type(exc).__name__)], summary=False) from None
    try:
        sheet = next((s for s in wb.sheetnames if _norm(s).startswith(_norm(SHEET))), None)
        sheet = sheet or next(s for s in wb.sheetnames if _norm(s) != _norm(HELP_SHEET))
        rows = list(wb[sheet].iter_rows(values_only=True))
    except StopIteration:
        raise RiskImportError([t("risk.err.empty", place=name)], summary=False) from None
    finally:
        wb.close()
    place = f"{name} [{sheet}]"
    if not rows:
        raise RiskImportError([t("risk.err.empty", place=place)], summary=False)

    def at(row: int, index: int | None, header: str) -> str:
        if index is None:
            return f"{place}：第 {row} 行「{header}」列 / row {row}, column {header}"
        return f"{place}：第 {row} 行 {_letter(index)} 列「{header}」/ row {row}, column {_letter(index)} ({header})"

    errors: list[str] = []
    index: dict[str, int] = {}
    for i, header in enumerate(rows[0]):
        col = _LOOKUP.get(_norm(header))
        if col is None:
            continue  # 备注 and the bureau's own columns
        if col.key in index:
            errors.append(f"{at(1, i, str(header).strip())}：{t('risk.err.duplicate_column')}")
        index[col.key] = i
    for col in COLUMNS:
        if col.required and col.key not in index and not (col.key == "unit_code" and unit_code):
            errors.append(f"{at(1, None, col.header)}：{t('risk.err.missing_column')}")
    if errors:
        raise RiskImportError(errors)
    headers = {c.key: (str(rows[0][index[c.key]]).strip() if c.key in index else c.header) for c in COLUMNS}
    units = {u.code: u for u in org.units.values()}
    persons = {p.code: p for p in org.persons.values()}
    if unit_code and unit_code not in units:
        raise RiskImportError(["--unit：" + t("risk.err.unit", value=unit_code)], summary=False)

    out: list[PointRow] = []
    first_row: dict[tuple[str, str], int] = {}
    for rownum, values in enumerate(rows[1:], start=2):
        if all(_cell(v) is None for v in values):
            continue

        def value(key: str) -> str | None:
            i = index.get(key)
            return _cell(values[i]) if i is not None and i < len(values) else None

        def bad(key: str, message: str) -> None:
            errors.append(f"{at(rownum, index.get(key), headers[key])}：{message}")

        def text(key: str, limit: int) -> str | None:
            v = value(key)
            if v is None:
                bad(key, t("risk.err.required"))
            elif len(v) > limit:
                bad(key, t("risk.err.too_long", n=limit))
                return None
            return v

        unit = value("unit_code") or unit_code
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
        raw = value("category")
        if raw is None:
            bad("category", t("risk.err.required"))
        elif (category := cfg.parse_category(raw)) is None:
            bad("category", t("risk.err.category", value=raw))
        place_ = text("place", 200)
        description = text("description", 5000)
        measures = text("measures", 5000)
        raw = value("level")
        if raw is None:
            bad("level", t("risk.err.required"))
        elif (level := cfg.parse_risk_level(raw)) is None:
            bad("level", t("risk.err.level", value=raw))
        owner_id = None
        raw = value("owner_code")
        if raw is not None:
            person = persons.get(raw)
            if person is None:
                bad("owner_code", t("risk.err.owner", value=raw))
            elif unit is not None and person.unit_id != units[unit].id:
                bad("owner_code", t("risk.err.owner_unit", value=raw, unit=unit))
            else:
                owner_id = person.id
        active = True
        raw = value("active")
        if raw is not None:
            if raw.lower() in _TRUE:
                active = True
            elif raw.lower() in _FALSE:
                active = False
            else:
                bad("active", t("risk.err.bool", value=raw))
        if unit is not None and code is not None:
            key = (unit, code)
            if key in first_row:
                bad("code", t("risk.err.twice", unit=unit, code=code, first=first_row[key]))
                continue
            first_row[key] = rownum
        if None in (unit, code, category, place_, description, measures, level):
            continue
        out.append(PointRow(rownum, units[unit].id, unit, code, category, place_, description, measures, level,
                            owner_id, active))
    if errors:
        raise RiskImportError(errors)
    if not out:
        raise RiskImportError([t("risk.err.empty", place=place)], summary=False)
    return out


# =========================================================================== writing the register

@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    deactivated: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)


_FIELDS = ("category", "place", "description", "measures", "level", "owner_id", "active")


def import_points(session: Session, rt: Runtime, org: Org, path: Path, *, actor: str, as_of: dt.datetime,
                  unit_code: str | None = None, replace: bool = False, dry_run: bool = False,
                  name: str | None = None) -> ImportResult:
    """Upsert the file's risk points by (unit, code); with ``replace``, deactivate the points of the
    file's units that the file leaves out. Raises ``RiskImportError`` before writing anything."""
    cfg = hazard_config(rt)
    rows = read_points(path, org, cfg, unit_code=unit_code, name=name)
    unit_ids = {r.unit_id for r in rows}
    existing = {(r.unit_id, r.code): r for r in session.execute(sa.select(RP).where(RP.c.unit_id.in_(unit_ids)))}
    inserts, updates, unchanged = [], [], 0
    for r in rows:
        values = {"category": r.category.value, "place": r.place, "description": r.description, "measures": r.measures,
                  "level": r.level.value, "owner_id": r.owner_id, "active": r.active}
        old = existing.get((r.unit_id, r.code))
        if old is None:
            inserts.append({"unit_id": r.unit_id, "code": r.code, **values, "created_at": as_of, "updated_at": as_of})
        elif any(getattr(old, k) != v for k, v in values.items()):
            updates.append({"pid": old.id, **values, "updated_at": as_of})
        else:
            unchanged += 1
    keep = {(r.unit_id, r.code) for r in rows}
    stale = [r.id for key, r in existing.items() if replace and key not in keep and r.active]
    result = ImportResult(len(inserts), len(updates), unchanged, len(stale))
    if dry_run or not result.changed:
        return result
    if inserts:
        insert_ignore(session, RP, inserts, ["unit_id", "code"], returning=())
    if updates:
        session.execute(
            sa.update(RP).where(RP.c.id == sa.bindparam("pid"))
            .values(**{k: sa.bindparam(k) for k in (*_FIELDS, "updated_at")})
            .execution_options(synchronize_session=False), updates)
    if stale:
        session.execute(sa.update(RP).where(RP.c.id.in_(stale)).values(active=False, updated_at=as_of))
    session.add(Audit(at=as_of, actor=actor[:100], action="risk.imported", object_type="risk_register",
                      object_id=(name or Path(path).name)[:64],
                      detail={"created": result.created, "updated": result.updated, "deactivated": result.deactivated,
                              "units": sorted(org.units[u].code for u in unit_ids)}))
    return result


def _write(path: Path, rows: Iterable[Sequence[Any]], *, template: bool, note: str | None = None) -> None:
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = openpyxl.Workbook()
    help_ws = wb.active
    help_ws.title = HELP_SHEET
    ws = wb.create_sheet(SHEET, 0 if not template else 1)
    headers = [c.header for c in COLUMNS] + ([NOTE_HEADER] if template else [])
    ws.append(headers)
    bold = Font(bold=True)
    for i, col in enumerate(COLUMNS, start=1):
        ws.cell(1, i).font = bold
        ws.column_dimensions[_letter(i - 1)].width = col.width
    if template:
        ws.cell(1, len(headers)).font = bold
        ws.column_dimensions[_letter(len(headers) - 1)].width = 30
    for values in rows:
        ws.append([None] * len(values))
        r = ws.max_row
        for i, v in enumerate(values, start=1):
            cell = ws.cell(r, i)
            cell.value = v
            if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
                cell.data_type = "s"  # text, never a formula (spreadsheet injection)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    lines = [
        ("模板（TEMPLATE）：典型学校风险点示例，须由各校根据实际增删、修改后再导入" if template else "风险点清单（导出）",),
        (note or "",),
        ("",),
        ("列", "说明"),
        *((c.header + ("（必填）" if c.required else ""), c.help) for c in COLUMNS),
        ("",),
        ("风险等级与检查频次", ""),
    ]
    for line in lines:
        help_ws.append(list(line))
    help_ws["A1"].font = Font(bold=True, size=14, color="C00000" if template else "000000")
    if template:
        help_ws["A1"].fill = PatternFill("solid", fgColor="FFF2CC")
    help_ws.column_dimensions["A"].width = 24
    help_ws.column_dimensions["B"].width = 80
    wb.properties.title = "风险点清单模板 / risk point template" if template else "风险点清单 / risk points"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def _levels_help(cfg: HazardConfig) -> str:
    return "；".join(f"{s.name}（{s.color_zh}）：{_EVERY_ZH.get(s.check.every, s.check.every)}"
                     for s in cfg.risk_levels.values())


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


def point_rows(session: Session, *, unit_code: str | None = None, level: str | None = None,
               include_inactive: bool = False) -> list[sa.Row]:
    U, P = Unit.__table__, Person.__table__
    query = (sa.select(RP, U.c.code.label("unit_code"), U.c.name.label("unit"), P.c.code.label("owner_code"),
                       P.c.name.label("owner"))
             .join(U, U.c.id == RP.c.unit_id).outerjoin(P, P.c.id == RP.c.owner_id).order_by(U.c.code, RP.c.code))
    if unit_code:
        query = query.where(U.c.code == unit_code)
    if level:
        query = query.where(RP.c.level == level)
    if not include_inactive:
        query = query.where(RP.c.active.is_(True))
    return session.execute(query).all()


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


# =========================================================================== checks

def plan_checks(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """One check per active point for each open period of its level's cadence; return how many were new.

    A point owes no check for a period whose deadline passed before the point was registered.
    """
    cfg = hazard_config(rt)
    points = session.execute(sa.select(RP.c.id, RP.c.unit_id, RP.c.level, RP.c.created_at).where(RP.c.active.is_(True))).all()
    by_level: dict[str, list] = defaultdict(list)
    for p in points:
        if p.unit_id in org.units:
            by_level[p.level].append(p)
    rows = []
    for level, pts in by_level.items():
        duty = cfg.check_duties[RiskLevel(level)]
        for period, opens_at, due_at, escalate_at in open_periods(duty, as_of, rt.ctx):
            rows += [{"risk_point_id": p.id, "unit_id": p.unit_id, "level": level, "period_key": period.key,
                      "period_start": period.start, "period_end": period.end, "opens_at": opens_at, "due_at": due_at,
                      "escalate_at": escalate_at, "escalation_level": 0, "escalation_seq": 0, "created_at": as_of}
                     for p in pts if due_at >= p.created_at]
    return len(insert_ignore(session, RC, rows, ["risk_point_id", "period_key"]))


@dataclass(frozen=True)
class CheckView:
    id: int
    risk_point_id: int
    unit_id: int
    level: str
    period_key: str
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime
    escalation_level: int
    escalation_seq: int
    place: str
    code: str
    owner_id: int | None

    def task(self) -> TaskView:
        return TaskView(self.id, f"risk-check-{self.level}", self.unit_id, self.owner_id, self.period_key,
                        self.opens_at, self.due_at, self.escalate_at, "none")


def _open_checks(session: Session, *where) -> list[CheckView]:
    """Unchecked checks of active points still at the level they were planned for."""
    query = (sa.select(RC.c.id, RC.c.risk_point_id, RC.c.unit_id, RC.c.level, RC.c.period_key, RC.c.opens_at,
                       RC.c.due_at, RC.c.escalate_at, RC.c.escalation_level, RC.c.escalation_seq, RP.c.place,
                       RP.c.code, RP.c.owner_id)
             .join(RP, RP.c.id == RC.c.risk_point_id)
             .where(RC.c.checked_at.is_(None), RP.c.active.is_(True), RP.c.level == RC.c.level, *where)
             .order_by(RC.c.id))
    return [CheckView(**r._mapping) for r in session.execute(query)]


def assignees(org: Org, cfg: HazardConfig, unit_id: int, owner_id: int | None) -> list[int]:
    """The point's owner, else the unit's holders of the check roles, else its principal."""
    if owner_id is not None and owner_id in org.persons:
        return [owner_id]
    return org.holders(unit_id, *cfg.data.check_roles) or org.holders(unit_id, RoleKind.principal)


def _payload(cfg: HazardConfig, org: Org, c: CheckView, **extra) -> dict:
    unit = org.units.get(c.unit_id)
    owner = org.persons.get(c.owner_id) if c.owner_id else None
    return {"duty": t("rc.name", level=cfg.risk_name(c.level), place=c.place[:80]),
            "unit": unit.name if unit else str(c.unit_id), "person": owner.name if owner else None,
            "period": c.period_key, "due": c.due_at.isoformat(), "risk_point": c.risk_point_id, "check": c.id, **extra}


def queue_check_reminders(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    cfg = hazard_config(rt)
    rows = []
    for c in _open_checks(session, RC.c.opens_at <= as_of, RC.c.escalate_at > as_of):
        duty = cfg.check_duties[RiskLevel(c.level)]
        step = reminder_due(duty.reminders, c.task(), as_of)
        if step is None:
            continue
        payload = _payload(cfg, org, c, step=step.key)
        rows += [_notice(pid, f"rc:{c.id}:{step.key}", NoticeKind.reminder, step.key, payload, as_of, duty_key=duty.key)
                 for pid in assignees(org, cfg, c.unit_id, c.owner_id)]
    return _notices(session, rows)


def fired_from(policy: EscalationPolicy, level: int, seq: int) -> set[tuple[int, int]]:
    """The (level, seq) steps behind a check's last fired step: levels are never skipped."""
    out = {(lvl.level, 0) for lvl in policy.levels if lvl.level <= level}
    last = policy.levels[-1].level
    return out | {(last, s) for s in range(1, seq + 1)} if level == last else out


def queue_check_escalations(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """Fire the due escalation steps of missed checks; return the events fired."""
    cfg = hazard_config(rt)
    fired = 0
    notices, audits = [], []
    for c in _open_checks(session, RC.c.escalate_at <= as_of):
        duty = cfg.check_duties[RiskLevel(c.level)]
        events = escalations_due(duty.escalation, c.task(), as_of, fired_from(duty.escalation, c.escalation_level, c.escalation_seq))
        if not events:
            continue
        last = events[-1]
        claimed = session.execute(
            sa.update(RC).where(RC.c.id == c.id, RC.c.escalation_level == c.escalation_level,
                                RC.c.escalation_seq == c.escalation_seq)
            .values(escalation_level=last.level, escalation_seq=last.seq).returning(RC.c.id)
        ).first()
        if claimed is None:  # another run fired them
            continue
        fired += len(events)
        owners = set(assignees(org, cfg, c.unit_id, c.owner_id))
        names = [org.persons[p].name for p in sorted(owners) if p in org.persons]
        for event in events:
            recipients = [p for p in org.escalation_targets(event.targets, c.unit_id) if p not in owners]
            payload = _payload(cfg, org, c, level=event.level, seq=event.seq, reason=t("rc.reason"), assignees=names)
            step = f"L{event.level}" + (f"R{event.seq}" if event.seq else "")
            notices += [_notice(pid, f"rc:{c.id}:e{event.level}.{event.seq}", NoticeKind.escalation, step, payload, as_of,
                                level=event.level, duty_key=duty.key) for pid in recipients]
            audits.append({"at": as_of, "actor": "system", "action": "risk_check.escalated", "object_type": "risk_check",
                           "object_id": str(c.id), "detail": {"level": event.level, "seq": event.seq,
                                                              "recipients": recipients, "due": event.at.isoformat()}})
    _notices(session, notices)
    if audits:
        session.execute(sa.insert(Audit.__table__), audits)
    return fired


@dataclass(frozen=True)
class CheckRecorded:
    checks: tuple[int, ...]
    hazard_id: int | None


def find_point(session: Session, org: Org, ref: str | int) -> sa.Row:
    """A risk point by id, or by ``UNIT/CODE``."""
    text = str(ref).strip()
    query = sa.select(RP)
    if text.isdigit():
        query = query.where(RP.c.id == int(text))
    elif "/" in text:
        unit_code, code = text.split("/", 1)
        unit = next((u for u in org.units.values() if u.code == unit_code), None)
        query = query.where(RP.c.unit_id == (unit.id if unit else -1), RP.c.code == code)
    else:
        raise HazardError(t("risk.err.no_point", point=text))
    row = session.execute(query).first()
    if row is None:
        raise HazardError(t("risk.err.no_point", point=text))
    return row


def record_check(
    session: Session, rt: Runtime, org: Org, *, risk_point_id: int, person_id: int, result: str, actor: str,
    as_of: dt.datetime, note: str | None = None, hazard: dict | None = None, photos: Sequence = (),
) -> CheckRecorded:
    """Record the check of a point: every check of it waiting at ``as_of`` is done. A hazard found
    goes into the closed loop (``hazard``: description, level, rectifier_id, optional place/deadline)."""
    point = session.execute(sa.select(RP).where(RP.c.id == risk_point_id)).first()
    if point is None:
        raise HazardError(t("risk.err.no_point", point=risk_point_id))
    label = f"#{point.id} {point.code}"
    if not point.active:
        raise HazardError(t("risk.err.inactive", point=label))
    if result not in ("ok", "hazard"):
        raise HazardError(t("risk.err.result"))
    if person_id not in org.persons:
        raise HazardError(t("hz.err.person", role="检查人", role_en="checker", person=person_id))
    waiting = session.scalars(sa.select(RC.c.id).where(
        RC.c.risk_point_id == point.id, RC.c.checked_at.is_(None), RC.c.level == point.level, RC.c.opens_at <= as_of,
    ).order_by(RC.c.period_start)).all()
    if not waiting:
        raise HazardError(t("risk.err.no_check", point=label))
    hazard_id = None
    if result == "hazard":
        if not hazard or not hazard.get("description") or not hazard.get("level") or not hazard.get("rectifier_id"):
            raise HazardError(t("risk.err.hazard"))
        hazard_id = report(session, rt, org, unit_id=point.unit_id, place=hazard.get("place") or point.place,
                           description=hazard["description"], level=hazard["level"],
                           rectifier_id=hazard["rectifier_id"], actor=actor, as_of=as_of, source="risk_check",
                           reporter_id=person_id, deadline=hazard.get("deadline"), photos=photos,
                           risk_point_id=point.id).hazard_id
    done = session.execute(
        sa.update(RC).where(RC.c.id.in_(waiting), RC.c.checked_at.is_(None))
        .values(checked_at=as_of, checker_id=person_id, checked_by=actor[:100], result=result,
                note=(note or "").strip() or None, hazard_id=hazard_id).returning(RC.c.id)
    ).scalars().all()
    session.add(Audit(at=as_of, actor=actor[:100], action="risk.checked", object_type="risk_point",
                      object_id=str(point.id), detail={"checks": sorted(done), "result": result, "hazard": hazard_id}))
    return CheckRecorded(tuple(sorted(done)), hazard_id)


def check_summary(session: Session, rt: Runtime, as_of: dt.datetime) -> tuple[list[dict], list[dict]]:
    """(per unit and level: checks waiting, overdue and done in the current periods; the points in
    warning — a check overdue, the 实时预警 of the register)."""
    cfg = hazard_config(rt)
    U = Unit.__table__
    query = (sa.select(RC.c.id, RC.c.level, RC.c.period_key, RC.c.due_at, RC.c.escalate_at, RC.c.checked_at,
                       RC.c.escalation_level, RP.c.code, RP.c.place, RP.c.level.label("point_level"), RP.c.active,
                       U.c.code.label("unit_code"), U.c.name.label("unit"))
             .join(RP, RP.c.id == RC.c.risk_point_id).join(U, U.c.id == RC.c.unit_id)
             .where(RC.c.opens_at <= as_of, sa.or_(RC.c.checked_at.is_(None), RC.c.escalate_at >= as_of - dt.timedelta(days=31)))
             .order_by(U.c.code, RC.c.level, RP.c.code))
    counts: dict[tuple, Counter] = defaultdict(Counter)
    warnings = []
    names = {}
    for r in session.execute(query):
        if r.checked_at is None and (not r.active or r.point_level != r.level):
            continue
        key = (r.unit_code, r.level)
        names[r.unit_code] = r.unit
        if r.checked_at is not None:
            counts[key]["done"] += 1
        elif as_of > r.due_at:
            counts[key]["overdue"] += 1
            warnings.append({"单位 unit": r.unit, "风险点 point": f"{r.code} {r.place}",
                             "等级 level": f"{cfg.risk_levels[RiskLevel(r.level)].color_zh} {cfg.risk_name(r.level)}",
                             "周期 period": r.period_key, "截止 due": f"{r.due_at:%Y-%m-%d %H:%M}",
                             "督办级别 level": r.escalation_level})
        else:
            counts[key]["waiting"] += 1
    table = [{"单位 unit": names[u], "等级 level": f"{cfg.risk_levels[RiskLevel(lvl)].color_zh} {cfg.risk_name(lvl)}",
              "待检查 waiting": c["waiting"], "逾期 overdue": c["overdue"], "已检查 done": c["done"]}
             for (u, lvl), c in sorted(counts.items(), key=lambda kv: (kv[0][0], list(RiskLevel).index(RiskLevel(kv[0][1]))))]
    return table, warnings


def level_label(cfg: HazardConfig, level: str) -> str:
    spec = cfg.risk_levels[RiskLevel(level)]
    return f"{spec.color_zh} {pick(spec.name, spec.name_en)}"
