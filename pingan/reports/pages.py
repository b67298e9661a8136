"""What a person's own page and a leader's page show: read-only queries over every duty.

A person's open tasks are the tasks of the units they hold a role at whose carrier names them
(``Org.assignees``, as the reminders do), ordered by urgency; their hazards are the ones they
rectify, or verify (named by the level's ``verify_by``, never the rectifier); the holiday watch
and the incidents are their units'. A leader's page is the overdue and escalated tasks of the
units they answer for (their own as 主要负责人, 包保/分管; the bureau head, its leader in charge
of safety and its safety section's head: every unit of the bureau), grouped by duty and unit. The web layer renders them; nothing here writes but :func:`remind_again`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import (
    Audit,
    Escalation,
    Incident,
    NoticeKind,
    Occurrence,
    Review,
    RoleKind,
    UnitKind,
    Waiver,
)
from models.hazard import Hazard, HazardLevel, HazardState
from models.watch import WatchReport, WatchRoster
from pingan.core.clock import local
from pingan.core.i18n import pick, register, t
from pingan.delivery import notices
from pingan.duties.catalog import CatalogError
from pingan.duties.rules import TaskView, state
from pingan.duties.runtime import Runtime
from pingan.hazards.rules import hazard_config
from pingan.incidents import rules as incident_rules
from pingan.org.snapshot import Org
from pingan.watch import service as watch
from pingan.watch.rules import load_rules, on_duty, watch_days

register({
    "pages.again": {"zh-CN": "{leader}要求再次提醒，请尽快办理", "en": "{leader} asks again: please see to it now"},
})

O, W, E = Occurrence.__table__, Waiver.__table__, Escalation.__table__
BUCKETS = ("overdue", "today", "week", "later")
LEAD_ROLES = (RoleKind.patron, RoleKind.in_charge)
REMIND_AGAIN_HOURS = 4  # a leader reminds a unit again at most once in this many hours


def bucket(due: dt.datetime, as_of: dt.datetime) -> str:
    """Overdue (past its deadline), due today, due by Sunday of this week, or later (Asia/Shanghai)."""
    if due < as_of:
        return "overdue"
    today, day = local(as_of).date(), local(due).date()
    if day == today:
        return "today"
    sunday = today + dt.timedelta(days=6 - today.weekday())
    return "week" if day <= sunday else "later"


@dataclass(frozen=True)
class TaskItem:
    id: int
    duty_key: str
    name: str
    clause: str
    unit_id: int
    unit: str
    period: str
    due_at: dt.datetime
    state: str  # open | overdue | escalated (duties.rules.state)
    bucket: str
    rejected: bool = False


@dataclass(frozen=True)
class HazardItem:
    id: int
    unit: str
    place: str
    description: str
    level: str
    state: str
    deadline: dt.datetime
    role: str  # rectify | verify


@dataclass(frozen=True)
class WatchItem:
    unit_id: int
    unit_code: str
    unit: str
    period: str
    day: dt.date | None  # today, when it is a day of watch
    report: str | None  # ok | incident | None (not yet)
    roster_filed: bool
    on_duty: dict = field(default_factory=dict)  # role → ["name phone", …]


@dataclass(frozen=True)
class IncidentItem:
    id: int
    unit: str
    occurred_at: dt.datetime
    category: str
    phone_due_at: dt.datetime
    written_due_at: dt.datetime
    phone_at: dt.datetime | None
    written_at: dt.datetime | None


@dataclass
class MyPage:
    person_id: int
    name: str
    tasks: list[TaskItem]
    hazards: list[HazardItem]
    watch: list[WatchItem]
    incidents: list[IncidentItem]
    leads: bool  # answers for units: the leader's page exists

    def by_bucket(self) -> list[tuple[str, list[TaskItem]]]:
        return [(b, [x for x in self.tasks if x.bucket == b]) for b in BUCKETS if any(x.bucket == b for x in self.tasks)]


def units_of(org: Org, person_id: int) -> set[int]:
    """The units the person holds a role at (their own unit too)."""
    units = {u for p, u, _ in org.roles if p == person_id}
    person = org.persons.get(person_id)
    if person is not None:
        units.add(person.unit_id)
    return units


def _waived():
    return (sa.select(sa.func.max(W.c.until)).where(W.c.occurrence_id == O.c.id, W.c.revoked_at.is_(None))
            .scalar_subquery())


def _open_tasks(session: Session, rt: Runtime, units: set[int], as_of: dt.datetime, where=None) -> list[tuple]:
    """(row, view, state) of the tasks of ``units`` that are open now: opened, not handed in or
    accepted, not waived."""
    if not units:
        return []
    level = sa.select(sa.func.coalesce(sa.func.max(E.c.level), 0)).where(E.c.occurrence_id == O.c.id).scalar_subquery()
    query = (sa.select(O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.opens_at, O.c.due_at,
                       O.c.escalate_at, O.c.review, _waived().label("waived_until"), level.label("level"))
             .where(O.c.unit_id.in_(units), O.c.opens_at <= as_of,
                    O.c.review.in_((Review.none.value, Review.rejected.value)))
             .order_by(O.c.due_at, O.c.id))
    if where is not None:
        query = query.where(where)
    out = []
    for r in session.execute(query):
        view = TaskView(r.id, r.duty_key, r.unit_id, r.person_id, r.period_key, r.opens_at, r.due_at, r.escalate_at,
                        r.review, r.waived_until)
        st = state(view, as_of, escalated=r.level > 0)
        if st in ("open", "overdue", "escalated") and r.duty_key in rt.catalog.duties:
            out.append((r, st))
    return out


def _item(rt: Runtime, org: Org, r, st: str, as_of: dt.datetime) -> TaskItem:
    duty = rt.catalog.duties[r.duty_key]
    unit = org.units.get(r.unit_id)
    return TaskItem(r.id, r.duty_key, pick(duty.name, duty.name_en), duty.source.clause, r.unit_id,
                    unit.name if unit else str(r.unit_id), r.period_key, r.due_at, st, bucket(r.due_at, as_of),
                    r.review == Review.rejected.value)


def my_tasks(session: Session, rt: Runtime, org: Org, person_id: int, as_of: dt.datetime) -> list[TaskItem]:
    """The person's open tasks, most urgent first (then by deadline)."""
    items = []
    for r, st in _open_tasks(session, rt, units_of(org, person_id), as_of):
        duty = rt.catalog.duties[r.duty_key]
        if person_id in org.assignees(duty.carrier, r.unit_id, r.person_id):
            items.append(_item(rt, org, r, st, as_of))
    return sorted(items, key=lambda x: (BUCKETS.index(x.bucket), x.due_at, x.id))


def unit_tasks(session: Session, rt: Runtime, org: Org, unit_id: int, as_of: dt.datetime) -> list[tuple[TaskItem, list[int]]]:
    """Every open task of a unit with the persons who carry it, by deadline (a unit's calendar)."""
    out = []
    for r, st in _open_tasks(session, rt, {unit_id}, as_of):
        duty = rt.catalog.duties[r.duty_key]
        out.append((_item(rt, org, r, st, as_of), org.assignees(duty.carrier, r.unit_id, r.person_id)))
    return out


def feed_units(org: Org, person_id: int) -> list[int]:
    """The units whose calendar a person may subscribe to: theirs and those they answer for."""
    return sorted(units_of(org, person_id) | set(led_units(org, person_id)))


def my_hazards(session: Session, rt: Runtime, org: Org, person_id: int) -> list[HazardItem]:
    """Hazards the person must rectify (reported, rectifying) or verify (rectified, not by them)."""
    try:
        cfg = hazard_config(rt)
    except (CatalogError, OSError):  # no hazards.yaml in this catalog: no hazard loop
        return []
    H = Hazard.__table__
    # theirs to rectify, or waiting for a verifier (few at a time: a rectified hazard is verified within days)
    rows = session.execute(sa.select(H).where(sa.or_(
        sa.and_(H.c.rectifier_id == person_id,
                H.c.state.in_((HazardState.reported.value, HazardState.rectifying.value))),
        H.c.state == HazardState.rectified.value)).order_by(H.c.deadline, H.c.id))
    out = []
    for h in rows:
        if h.state != HazardState.rectified.value:
            if h.rectifier_id != person_id:
                continue
            role = "rectify"
        else:
            verifiers = org.escalation_targets(cfg.hazard_levels[HazardLevel(h.level)].verify_by, h.unit_id)
            if person_id not in verifiers or person_id in (h.rectifier_id, h.rectified_by_id):
                continue
            role = "verify"
        unit = org.units.get(h.unit_id)
        out.append(HazardItem(h.id, unit.name if unit else "", h.place, h.description, cfg.level_name(h.level), h.state,
                              h.deadline, role))
    return out


def may_act_on_hazard(session: Session, rt: Runtime, org: Org, person_id: int, hazard_id: int) -> str | None:
    """``rectify`` or ``verify`` when the hazard waits for this person, else None."""
    return next((h.role for h in my_hazards(session, rt, org, person_id) if h.id == hazard_id), None)


def my_watch(session: Session, rt: Runtime, org: Org, person_id: int, as_of: dt.datetime) -> list[WatchItem]:
    """The holiday watch of the person's units: the periods of today and the coming week, the
    roster (who is on duty today) and today's report."""
    try:
        rules = load_rules(rt)
        report_duty = rt.catalog.duty(rules.daily_report.duty)
    except (CatalogError, KeyError, OSError):
        return []
    today = local(as_of).date()
    found = watch.periods(session, since=today, until=today + dt.timedelta(days=7))
    if not found:
        return []
    watched = watch_days(found)
    units = [u for u in sorted(units_of(org, person_id))
             if u in org.units and org.matches(report_duty.carrier, org.units[u])
             and person_id in org.assignees(report_duty.carrier, u, None)]
    out = []
    for p in found:
        if p.cancelled_at is not None:
            continue
        day = today if today in watched and p in watched[today] else None
        for u in units:
            roster = session.execute(sa.select(WatchRoster.entries).where(
                WatchRoster.period_id == p.id, WatchRoster.unit_id == u)).first()
            report = session.scalar(sa.select(WatchReport.status).where(
                WatchReport.unit_id == u, WatchReport.day == day)) if day else None
            unit = org.units[u]
            out.append(WatchItem(u, unit.code, unit.name, p.name, day, report, roster is not None,
                                 on_duty(roster.entries, day) if (roster and day) else {}))
    return out


def my_incidents(session: Session, rt: Runtime, org: Org, person_id: int, as_of: dt.datetime) -> list[IncidentItem]:
    """Incidents of the person's units: those whose reports are not all in, and those of the last 7 days."""
    units = units_of(org, person_id)
    if not units:
        return []
    I = Incident.__table__
    rows = session.execute(sa.select(I).where(I.c.unit_id.in_(units), sa.or_(
        I.c.phone_at.is_(None), I.c.written_at.is_(None), I.c.occurred_at >= as_of - dt.timedelta(days=7)))
        .order_by(I.c.occurred_at.desc()))
    try:
        categories = {k: pick(v.name, v.name_en) for k, v in incident_rules.load_rules(rt).categories.items()}
    except (CatalogError, OSError):
        categories = {}
    return [IncidentItem(r.id, org.units[r.unit_id].name if r.unit_id in org.units else "", r.occurred_at,
                         categories.get(r.category, r.category), r.phone_due_at, r.written_due_at, r.phone_at,
                         r.written_at) for r in rows]


def led_units(org: Org, person_id: int) -> list[int]:
    """The units a person answers for — every target an escalation can reach: the unit they head
    (主要负责人), those they are 包保/分管 for, and every unit of the bureau for its head, its
    leader in charge of safety and the head of its safety section."""
    units = {u for p, u, role in org.roles if p == person_id and (
        RoleKind(role) in LEAD_ROLES or (RoleKind(role) == RoleKind.principal and u in org.units
                                          and org.units[u].kind != UnitKind.bureau))}
    bureaus = set()
    for p, u, role in org.roles:
        unit = org.units.get(u)
        if p != person_id or unit is None:
            continue
        if unit.kind == UnitKind.bureau and RoleKind(role) in (RoleKind.principal, RoleKind.safety_lead):
            bureaus.add(u)
        section = org.safety_section(unit.parent_id)
        if section is not None and section.id == u and RoleKind(role) == RoleKind.principal:
            bureaus.add(unit.parent_id)
    if bureaus:
        for unit in org.units.values():
            bureau = org.bureau_of(unit.id)
            if unit.id not in bureaus and bureau is not None and bureau.id in bureaus:
                units.add(unit.id)
    return sorted(units)


def my_page(session: Session, rt: Runtime, org: Org, person_id: int, as_of: dt.datetime) -> MyPage:
    person = org.persons[person_id]
    return MyPage(person_id, person.name, my_tasks(session, rt, org, person_id, as_of),
                  my_hazards(session, rt, org, person_id), my_watch(session, rt, org, person_id, as_of),
                  my_incidents(session, rt, org, person_id, as_of), bool(led_units(org, person_id)))


# --------------------------------------------------------------------------- a leader's page

@dataclass
class UnitGroup:
    unit_id: int
    unit: str
    tasks: list[TaskItem]


@dataclass
class DutyGroup:
    duty_key: str
    name: str
    clause: str
    units: list[UnitGroup]

    @property
    def count(self) -> int:
        return sum(len(u.tasks) for u in self.units)


def lead_page(session: Session, rt: Runtime, org: Org, person_id: int, as_of: dt.datetime) -> list[DutyGroup]:
    """The overdue and escalated tasks of the units the leader answers for, by duty then unit."""
    units = set(led_units(org, person_id))
    groups: dict[str, dict[int, list[TaskItem]]] = defaultdict(lambda: defaultdict(list))
    for r, st in _open_tasks(session, rt, units, as_of, where=O.c.due_at < as_of):
        groups[r.duty_key][r.unit_id].append(_item(rt, org, r, st, as_of))
    out = []
    for key, by_unit in groups.items():
        duty = rt.catalog.duties[key]
        out.append(DutyGroup(key, pick(duty.name, duty.name_en), duty.source.clause, [
            UnitGroup(u, org.units[u].name, tasks) for u, tasks in sorted(by_unit.items(), key=lambda kv: org.units[kv[0]].code)]))
    return sorted(out, key=lambda g: (-g.count, g.duty_key))


class TooSoon(Exception):
    """The unit was reminded again less than ``REMIND_AGAIN_HOURS`` ago."""

    def __init__(self, last: dt.datetime):
        self.last = last


def remind_again(session: Session, rt: Runtime, org: Org, *, leader_id: int, unit_id: int, as_of: dt.datetime,
                 actor: str) -> int:
    """Queue a reminder of every overdue task of the unit to the people who carry it; return the
    notices queued. At most once per unit in ``REMIND_AGAIN_HOURS`` (whoever asked); audited.
    Raises LookupError when the leader does not answer for the unit, TooSoon when it is too soon."""
    if unit_id not in led_units(org, leader_id):
        raise LookupError(unit_id)
    A = Audit.__table__
    last = session.scalar(sa.select(sa.func.max(A.c.at)).where(
        A.c.action == "unit.reminded_again", A.c.object_type == "unit", A.c.object_id == str(unit_id)))
    if last is not None and as_of - last < dt.timedelta(hours=REMIND_AGAIN_HOURS):
        raise TooSoon(last)
    rows, tasks = [], []
    # one notice per task and person per window: two leaders (or two taps) at once cannot double it
    window = int(as_of.timestamp()) // (REMIND_AGAIN_HOURS * 3600)
    unit = org.units[unit_id]
    for r, _st in _open_tasks(session, rt, {unit_id}, as_of, where=O.c.due_at < as_of):
        duty = rt.catalog.duties[r.duty_key]
        person = org.persons.get(r.person_id) if r.person_id else None
        payload = {"duty": duty.key, "unit": unit.name, "person": person.name if person else None,
                   "period": r.period_key, "due": r.due_at.isoformat(),
                   "step": t("pages.again", leader=org.persons[leader_id].name)}
        tasks.append(r.id)
        for pid in org.assignees(duty.carrier, unit_id, r.person_id):
            rows.append(notices.notice(pid, f"again:{r.id}:{window}", NoticeKind.reminder, "again", payload, as_of,
                                       occurrence_id=r.id, duty_key=duty.key, urgent=True))
    queued = notices.queue(session, rows)
    session.add(Audit(at=as_of, actor=actor[:100], action="unit.reminded_again", object_type="unit",
                      object_id=str(unit_id), detail={"unit": unit.code, "tasks": tasks, "notices": queued,
                                                      "leader": org.persons[leader_id].code}))
    return queued
