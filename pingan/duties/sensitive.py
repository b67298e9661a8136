"""Key sensitive periods (重点敏感时期): tighten chosen duties for a date range and scope.

A period names its duties (default: every duty whose catalog entry says how it tightens), a
scope (unit kinds and/or unit codes; empty: all) and optionally one cadence for all of them.
While it is active, each duty cycle also plans the tighter tasks for the units in scope: for
each (duty, unit) the tightest cadence among the active periods covering it wins, so
overlapping periods never double a task. Its tasks are clipped to the period, and after
``ends_on`` nothing more is planned: the period ends by itself.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, NoticeKind, Occurrence, SensitivePeriod, UnitKind
from pingan.core.clock import now
from pingan.core.cadence import CADENCE_DAYS
from pingan.duties.catalog import Catalog, DutySpec
from pingan.core.db import insert_ignore
from pingan.core.i18n import both, register, say
from pingan.delivery import notices
from pingan.core.calendar import WorkCalendar
from pingan.core.periods import Period, period_at
from pingan.core.clock import TZ
from pingan.org.snapshot import Org
from pingan.duties.runtime import Runtime

FREQUENCIES = ("daily", "weekly", "half_monthly", "monthly")

register({
    "sp.announce": {"zh-CN": "【重点敏感时期】{name}：{start} 至 {end}，以下工作加密频次",
                    "en": "[Key sensitive period] {name}, {start} to {end}: these duties run more often"},
    "sp.every.daily": {"zh-CN": "每日", "en": "daily"},
    "sp.every.weekly": {"zh-CN": "每周", "en": "weekly"},
    "sp.every.half_monthly": {"zh-CN": "每半月", "en": "half-monthly"},
    "sp.every.monthly": {"zh-CN": "每月", "en": "monthly"},
    "sp.every.catalog": {"zh-CN": "按清单规定加密", "en": "as the list tightens them"},
})
S = SensitivePeriod.__table__


class SensitivePeriodError(ValueError):
    """A bad sensitive-period request; the message names the option."""


@dataclass(frozen=True)
class Request:
    name: str
    starts_on: dt.date
    ends_on: dt.date
    kinds: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    duties: tuple[str, ...] = ()
    frequency: str | None = None


def parse_scope(text: str | None, org: Org) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"all"``, or comma-separated unit kinds and unit codes → (kinds, codes)."""
    if not text or text.strip().lower() in ("all", "全部"):
        return (), ()
    kinds, codes = [], []
    known_codes = {u.code for u in org.units.values()}
    for token in (t.strip() for t in text.replace("，", ",").split(",")):
        if not token:
            continue
        if token in UnitKind.__members__:
            kinds.append(token)
        elif token in known_codes:
            codes.append(token)
        else:
            raise SensitivePeriodError(say(f"--scope：{token!r} 既不是单位类型也不是单位编码",
                                             f"--scope: {token!r} is neither a unit kind nor a unit code"))
    return tuple(kinds), tuple(codes)


def validate(req: Request, catalog: Catalog) -> tuple[str, ...]:
    """Check a request; return the duty keys it tightens."""
    if not req.name.strip():
        raise SensitivePeriodError(say("--name 不能为空", "--name is empty"))
    if req.ends_on < req.starts_on:
        raise SensitivePeriodError(say("--to 早于 --from", "--to is before --from"))
    if (req.ends_on - req.starts_on).days > 366:
        raise SensitivePeriodError(say("--to：重点敏感时期不超过一年", "--to: a sensitive period lasts a year at most"))
    if req.frequency is not None and req.frequency not in FREQUENCIES:
        raise SensitivePeriodError(say(f"--frequency：{req.frequency!r} 应为 {'/'.join(FREQUENCIES)}",
                                          f"--frequency: {req.frequency!r} must be {'/'.join(FREQUENCIES)}"))
    keys = req.duties or tuple(d.key for d in catalog.planned if d.sensitive)
    for key in keys:
        duty = catalog.duties.get(key)
        if duty is None or not duty.planned:
            raise SensitivePeriodError(say(f"--duties：没有可加密的职责 {key!r}", f"--duties: no planned duty {key!r}"))
        if req.frequency is None and duty.sensitive is None:
            raise SensitivePeriodError(say(f"--duties：{key!r} 未规定加密频次，请给出 --frequency",
                                          f"--duties: {key!r} has no tightened cadence: give --frequency"))
    return keys


def start(session: Session, rt: Runtime, req: Request, *, actor: str) -> tuple[int, bool]:
    """Record the period (idempotent on name and dates); return (id, created)."""
    keys = validate(req, rt.catalog)
    row = {
        "name": req.name.strip(), "starts_on": req.starts_on, "ends_on": req.ends_on,
        "scope": {"kinds": list(req.kinds), "units": list(req.units)}, "duties": list(keys),
        "frequency": req.frequency, "created_by": actor, "created_at": now(),
    }
    inserted = insert_ignore(session, S, [row], ["name", "starts_on", "ends_on"])
    if inserted:
        period_id = inserted[0].id
        session.add(Audit(actor=actor, action="sensitive_period.started", object_type="sensitive_period",
                          object_id=str(period_id), detail={k: str(v) if isinstance(v, dt.date) else v for k, v in row.items()
                                                            if k != "created_at"}))
        return period_id, True
    existing = session.execute(sa.select(S.c.id).where(
        S.c.name == row["name"], S.c.starts_on == req.starts_on, S.c.ends_on == req.ends_on)).scalar_one()
    return existing, False


def cancel(session: Session, period_id: int, *, actor: str) -> bool:
    done = session.execute(
        sa.update(S).where(S.c.id == period_id, S.c.cancelled_at.is_(None)).values(cancelled_at=now()).returning(S.c.id)
    ).all()
    if done:
        session.add(Audit(actor=actor, action="sensitive_period.cancelled", object_type="sensitive_period", object_id=str(period_id)))
    return bool(done)


def active(session: Session, day: dt.date) -> list[sa.Row]:
    return session.execute(
        sa.select(S).where(S.c.cancelled_at.is_(None), S.c.starts_on <= day, S.c.ends_on >= day).order_by(S.c.id)
    ).all()


def _cadence(duty: DutySpec, period: sa.Row) -> str:
    return period.frequency or duty.sensitive.every


def in_scope(period: sa.Row, org: Org, unit_id: int) -> bool:
    scope = period.scope or {}
    kinds, units = scope.get("kinds") or [], scope.get("units") or []
    if not kinds and not units:
        return True
    unit = org.units.get(unit_id)
    return unit is not None and (unit.kind.value in kinds or unit.code in units)


def last_workday(period: Period, calendar: WorkCalendar) -> dt.date:
    """A tighter task is due inside its own (clipped) period: on its last working day, or on
    its last day when it has none (a period of one weekend, say). Unlike a regular due date it
    never moves past the period, which may be the end of the sensitive period itself."""
    day = period.end
    while day >= period.start:
        if calendar.is_workday(day):
            return day
        day -= dt.timedelta(days=1)
    return period.end


def tighter_slots(duty: DutySpec, org: Org, periods: list[sa.Row], as_of: dt.datetime, rt: Runtime) -> list[dict]:
    """Occurrence rows for the tighter tasks due to ``periods`` at ``as_of`` (tightest wins)."""
    day = as_of.date()
    regular = CADENCE_DAYS[duty.cadence.every]
    best: dict[tuple[int, int | None], tuple[int, str, sa.Row]] = {}
    for sp in periods:
        if duty.key not in (sp.duties or []):
            continue
        every = _cadence(duty, sp)
        if CADENCE_DAYS[every] >= regular:
            continue  # not tighter than the duty already is
        for unit_id, person_id in org.subjects(duty.carrier):
            if not in_scope(sp, org, unit_id):
                continue
            rank = (CADENCE_DAYS[every], sp.id)
            if (unit_id, person_id) not in best or rank < best[(unit_id, person_id)][:2]:
                best[(unit_id, person_id)] = (*rank, sp)
    rows = []
    for (unit_id, person_id), (_, _, sp) in best.items():
        every = _cadence(duty, sp)
        base = period_at(every, day, rt.terms)
        if base is None:
            continue
        clipped = Period(max(base.start, sp.starts_on), min(base.end, sp.ends_on), base.key)
        due_at = dt.datetime.combine(last_workday(clipped, rt.calendar), duty.window.due_time, tzinfo=TZ)
        opens_at = dt.datetime.combine(clipped.start, dt.time(0, 0), tzinfo=TZ)
        rows.append({
            "duty_key": duty.key, "unit_id": unit_id, "person_id": person_id, "person_key": person_id or 0,
            "period_key": clipped.key, "period_start": clipped.start, "period_end": clipped.end,
            "opens_at": opens_at, "due_at": due_at, "escalate_at": due_at + duty.escalation.grace,
            "created_at": as_of, "sensitive_period_id": sp.id,
        })
    return rows


def plan_tighter(session: Session, rt: Runtime, duty: DutySpec, org: Org, as_of: dt.datetime) -> int:
    """Plan the sensitive-period tasks of one duty at ``as_of``; return how many were created."""
    periods = active(session, as_of.date())
    if not periods or not duty.planned:
        return 0
    rows = tighter_slots(duty, org, periods, as_of, rt)
    inserted = insert_ignore(session, Occurrence.__table__, rows, ["duty_key", "unit_id", "person_key", "period_key"])
    return len(inserted)


def announce(session: Session, rt: Runtime, period_id: int, org: Org, as_of: dt.datetime) -> int:
    """Tell everyone who carries a tightened duty in scope, once per period and person."""
    sp = session.execute(sa.select(S).where(S.c.id == period_id)).one()
    people: dict[int, list[str]] = defaultdict(list)
    names_en: dict[int, list[str]] = defaultdict(list)
    for key in sp.duties:
        duty = rt.catalog.duties[key]
        for unit_id, person_id in org.subjects(duty.carrier):
            if in_scope(sp, org, unit_id):
                for pid in org.assignees(duty.carrier, unit_id, person_id):
                    if duty.name not in people[pid]:
                        people[pid].append(duty.name)
                        names_en[pid].append(duty.name_en)
    rows = []
    for pid, names in people.items():
        how_zh, how_en = both(f"sp.every.{sp.frequency or 'catalog'}")
        zh, en = both("sp.announce", name=sp.name, start=f"{sp.starts_on:%Y-%m-%d}", end=f"{sp.ends_on:%Y-%m-%d}")
        text = f"{zh}（{how_zh}）：{'、'.join(names)}。请按时完成并提交材料。"
        text_en = f"{en} ({how_en}): {', '.join(names_en[pid])}. Please complete them on time and hand in the evidence."
        rows.append(notices.notice(pid, f"sp:{period_id}", NoticeKind.announcement, "announce",
                                   {"text": text, "text_en": text_en}, as_of))
    return notices.queue(session, rows)
