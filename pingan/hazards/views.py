"""What people read of the dual-prevention work: hazard rows for the CLI and the artifacts, open
hazards per unit by level and age, a hazard's history, the platform uploads, the risk checks per
unit and level with the points in warning, and the watch's markdown summary citing its clauses.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Occurrence, Person, Unit
from models.hazard import Hazard, HazardEvent, HazardFile, HazardLevel, HazardState, PlatformUpload, RiskCheck, RiskLevel, RiskPoint
from pingan.core.clock import TZ_NAME
from pingan.core.i18n import pick, t
from pingan.duties.runtime import Runtime
from pingan.hazards.rules import (
    AGE_BUCKETS, OPEN_STATES, HazardConfig, HazardView, age_bucket, age_days, hazard_config, status,
)

H, HE, HF, PU = Hazard.__table__, HazardEvent.__table__, HazardFile.__table__, PlatformUpload.__table__
RP, RC, O = RiskPoint.__table__, RiskCheck.__table__, Occurrence.__table__


def state_label(state: str) -> str:
    """A hazard's shown state for a table: ``逾期 overdue``."""
    return f"{t(f'hz.state.{state}')} {state}"


# =========================================================================== hazards

@dataclass(frozen=True)
class HazardRow:
    id: int
    unit: str
    unit_code: str
    place: str
    description: str
    level: str
    source: str
    state: str
    status: str
    round: int
    found_at: dt.datetime
    deadline: dt.datetime
    age: int
    rectifier: str | None

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["found_at"], out["deadline"] = self.found_at.isoformat(), self.deadline.isoformat()
        return out


def hazard_rows(session: Session, as_of: dt.datetime, *, unit_code: str | None = None, state: str | None = None,
                level: str | None = None, open_only: bool = False, limit: int | None = None) -> list[HazardRow]:
    U, P = Unit.__table__, Person.__table__
    query = (sa.select(H, U.c.name.label("unit"), U.c.code.label("unit_code"), P.c.name.label("rectifier"))
             .join(U, U.c.id == H.c.unit_id).outerjoin(P, P.c.id == H.c.rectifier_id).order_by(H.c.id))
    if unit_code:
        query = query.where(U.c.code == unit_code)
    if state and state != "overdue":
        query = query.where(H.c.state == state)
    if state == "overdue":
        query = query.where(H.c.state.in_(OPEN_STATES), H.c.deadline < as_of)
    if open_only:
        query = query.where(H.c.state != HazardState.closed.value)
    if level:
        query = query.where(H.c.level == level)
    if limit:
        query = query.limit(limit)
    out = []
    for r in session.execute(query):
        v = HazardView(r.id, r.unit_id, r.level, r.state, r.round, r.found_at, r.deadline, r.rectifier_id)
        out.append(HazardRow(r.id, r.unit, r.unit_code, r.place, r.description, r.level, r.source, r.state,
                             status(v, as_of), r.round, r.found_at, r.deadline, age_days(r.found_at, as_of), r.rectifier))
    return out


def by_unit(rows: Iterable[HazardRow]) -> list[dict]:
    """Open hazards (not yet closed) per unit: by level, by age and how many are overdue or wait."""
    table: dict[str, dict] = {}
    for r in rows:
        if r.state == HazardState.closed.value:
            continue
        row = table.setdefault(r.unit_code, {
            "单位 unit": r.unit, "一般隐患 general": 0, "重大隐患 major": 0, "逾期 overdue": 0,
            "待核验 to verify": 0, "待销号 to close": 0, **{f"{label} age": 0 for _, label in AGE_BUCKETS},
            "最久(天) oldest days": 0,
        })
        row["一般隐患 general" if r.level == "general" else "重大隐患 major"] += 1
        row["逾期 overdue"] += r.status == "overdue"
        row["待核验 to verify"] += r.state == "rectified"
        row["待销号 to close"] += r.state == "verified"
        row[f"{age_bucket(r.age)} age"] += 1
        row["最久(天) oldest days"] = max(row["最久(天) oldest days"], r.age)
    return [table[k] for k in sorted(table)]


def history(session: Session, hazard_id: int) -> list[dict]:
    rows = session.execute(sa.select(HE).where(HE.c.hazard_id == hazard_id).order_by(HE.c.at, HE.c.id)).all()
    files = defaultdict(list)
    for f in session.execute(sa.select(HF).where(HF.c.hazard_id == hazard_id).order_by(HF.c.id)):
        files[f.event_id].append({"id": f.id, "role": f.role, "name": f.filename, "sha256": f.sha256, "size": f.size,
                                  "content_type": f.content_type})
    return [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "from": r.from_state, "to": r.to_state,
             "round": r.round, "step": r.step, "note": r.note, "detail": r.detail, "files": files.get(r.id, [])}
            for r in rows]


def upload_rows(session: Session, rt: Runtime, as_of: dt.datetime) -> list[dict]:
    """Half-monthly checks due in the last ``stop_after`` and whether each was uploaded."""
    cfg = hazard_config(rt)
    U = Unit.__table__
    since = as_of - cfg.data.half_monthly_checks.stop_after - dt.timedelta(days=16)
    query = (sa.select(O.c.id, O.c.period_key, O.c.due_at, U.c.name, U.c.code, PU.c.reference, PU.c.uploaded_on)
             .join(U, U.c.id == O.c.unit_id).outerjoin(PU, PU.c.occurrence_id == O.c.id)
             .where(O.c.duty_key.in_(cfg.upload_duties), O.c.due_at >= since, O.c.opens_at <= as_of)
             .order_by(U.c.code, O.c.period_key))
    return [{"单位 unit": r.name, "周期 period": r.period_key, "截止 due": f"{r.due_at:%Y-%m-%d %H:%M}",
             "已上传 uploaded": "是 yes" if r.reference else ("否 no" if r.due_at <= as_of else "—"),
             "上传编号 reference": r.reference or "", "上传日期 date": r.uploaded_on.isoformat() if r.uploaded_on else ""}
            for r in session.execute(query)]


def summary_markdown(cfg: HazardConfig, rows: Sequence[HazardRow], as_of: dt.datetime, run: Mapping[str, int],
                     warnings: int = 0, uploads_missing: int = 0) -> str:
    """The watch's summary for the operator, citing the clauses it answers."""
    open_rows = [r for r in rows if r.state != HazardState.closed.value]
    by_level = Counter(r.level for r in open_rows)
    by_status = Counter(r.status for r in open_rows)
    src = cfg.data.sources
    lines = [
        f"# 隐患排查治理与风险点巡查 · {as_of:%Y-%m-%d}",
        f"*Hazard closed loop and risk-point checks* — as of {as_of:%Y-%m-%d %H:%M} ({TZ_NAME})",
        "",
        *(f"**依据 / source**：`{q.document}` {q.clause} —— {' '.join(q.text.split())}"
          for q in (src.get("closed_loop"), src.get("risk_register"), src.get("leaders_supervise")) if q),
        "",
        "| 未销号隐患 open hazards | 数量 count |", "|---|---:|",
        *(f"| {cfg.level_name(lvl)} {lvl.value} | {by_level.get(lvl.value, 0)} |" for lvl in HazardLevel),
        *(f"| {state_label(s)} | {by_status.get(s, 0)} |" for s in ("reported", "rectifying", "overdue", "rectified", "verified")),
        "",
        f"本次运行 / this run: 新建风险点检查 checks planned **{run.get('checks_planned', 0)}**, "
        f"新逾期 newly overdue **{run.get('overdue_marked', 0)}**, "
        f"隐患提醒 hazard reminders **{run.get('hazard_reminders', 0)}**, 隐患督办 hazard escalations **{run.get('hazard_escalations', 0)}**, "
        f"检查提醒 check reminders **{run.get('check_reminders', 0)}**, 检查督办 check escalations **{run.get('check_escalations', 0)}**, "
        f"上传提醒 upload reminders **{run.get('upload_reminders', 0)}**, 即刻发送 released now **{run.get('released', 0)}**.",
    ]
    if not run.get("working_time", True):
        lines.append("\n非工作时间：提醒与督办将在下一个工作时段发送 / outside working time: nothing was queued.")
    if warnings:
        lines.append(f"\n⚠ 风险点预警 / risk points in warning (check overdue): **{warnings}**")
    if uploads_missing:
        lines.append(f"\n⚠ 半月排查未登记上传监管平台 / half-monthly checks not uploaded: **{uploads_missing}**")
    return "\n".join(lines)


# =========================================================================== risk points and their checks

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
