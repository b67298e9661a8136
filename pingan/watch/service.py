"""The holiday watch's data functions: periods, planning the tasks, filing rosters and reports.

Rosters and reports are occurrences of their catalog duties (``catalog/flows/holiday.yaml``
names them), so the reminders and the escalations — a dead man's switch per unit and day — come
from the one engine in ``pingan.duties.cycle`` and go out through the outbox exactly once.
Unlike duty cycles they run on holidays, within the watch's sending hours.

Every function takes a session, writes in bulk and idempotently, and never commits: the
caller's ``session_scope`` does (the CLI, the web page, the steps of ``pingan.watch.workflow``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import (
    Audit,
    Incident,
    Occurrence,
    Waiver,
    WatchPeriod,
    WatchReport,
    WatchRoster,
)
from pingan.core.clock import at, local
from pingan.core.db import insert_ignore, upsert
from pingan.core.i18n import pick, t
from pingan.core.periods import days
from pingan.duties.catalog import DutySpec
from pingan.duties.cycle import queue_escalations, queue_reminders
from pingan.duties.runtime import Runtime
from pingan.incidents import service as incidents
from pingan.org.snapshot import Org
from pingan.watch.rules import (
    HORIZON,
    LOOKBACK,
    PeriodView,
    RosterEntry,
    WatchError,
    WatchRules,
    check_roster,
    load_rules,
    period_key,
    report_deadline,
    roster_deadline,
    slot_row,
    slot_rows,
    term_breaks,
    watch_days,
)

P, R, REP, O = WatchPeriod.__table__, WatchRoster.__table__, WatchReport.__table__, Occurrence.__table__


# --------------------------------------------------------------------------- database: periods

def _view(row) -> PeriodView:
    return PeriodView(row.id, row.key, row.name, row.starts_on, row.ends_on, row.source, row.created_at, row.cancelled_at)


def sync_calendar(session: Session, rt: Runtime, as_of: dt.datetime, horizon: dt.timedelta, *, rules: WatchRules) -> int:
    """Record the calendar's holiday periods and the term breaks (寒假, 暑假) from LOOKBACK ago to
    ``horizon`` ahead; return how many are new."""
    today = as_of.date()
    first, last = today - LOOKBACK, today + horizon
    found: list[tuple[str, dt.date, dt.date, str]] = []
    if rules.calendar_holidays:
        # a holiday of a year without an official arrangement is provisional (pingan.core.calendar)
        found += [(h.name, h.start, h.end, "calendar" if rt.calendar.is_official(h.start.year) else "provisional")
                  for h in rt.calendar.holiday_periods(first, last)]
        settle_provisional(session, rt, as_of, first, last, {period_key(n, a): (b, src) for n, a, b, src in found})
    if rules.term_breaks:
        found += [(b.name, b.start, b.end, "term") for b in term_breaks(rt.terms, first, last)]
    if not found:
        return 0
    rows = [{
        "key": period_key(name, start), "name": name, "starts_on": start, "ends_on": end,
        "source": source, "created_by": "system", "created_at": as_of,
    } for name, start, end, source in found]
    return len(insert_ignore(session, P, rows, ["key"]))


def settle_provisional(session: Session, rt: Runtime, as_of: dt.datetime, first: dt.date, last: dt.date,
                       current: dict[str, tuple[dt.date, str]]) -> None:
    """Bring the holiday periods recorded from the statutory days in line with the calendar now.

    A provisional period the calendar still has (same name and first day) takes its last day and
    source (the State Council's notice may add bridging days); one it no longer has — the notice
    moved the holiday — is cancelled, its open tasks waived, and the new period is recorded."""
    recorded = session.execute(sa.select(P.c.id, P.c.key, P.c.ends_on, P.c.source).where(
        P.c.source == "provisional", P.c.cancelled_at.is_(None), P.c.ends_on >= first, P.c.starts_on <= last)).all()
    for row in recorded:
        now_is = current.get(row.key)
        if now_is is None:
            if rt.calendar.is_official(int(row.key[:4])):
                cancel_period(session, rt, row.id, as_of, actor="system:calendar")
        elif now_is != (row.ends_on, row.source):
            session.execute(sa.update(P).where(P.c.id == row.id).values(ends_on=now_is[0], source=now_is[1]))


def periods(session: Session, *, since: dt.date | None = None, until: dt.date | None = None,
            include_cancelled: bool = False) -> list[PeriodView]:
    query = sa.select(P).order_by(P.c.starts_on, P.c.id)
    if since is not None:
        query = query.where(P.c.ends_on >= since)
    if until is not None:
        query = query.where(P.c.starts_on <= until)
    if not include_cancelled:
        query = query.where(P.c.cancelled_at.is_(None))
    return [_view(r) for r in session.execute(query)]


MAX_DAYS = 62


def add_period(session: Session, name: str, starts_on: dt.date, ends_on: dt.date, as_of: dt.datetime, *,
               actor: str) -> tuple[int, bool]:
    """An operator's watch period (重要时段): (id, created); the same name and first day is the same period."""
    name = (name or "").strip()
    if not name:
        raise WatchError(t("watch.err.name"))
    if ends_on < starts_on:
        raise WatchError(t("watch.err.dates"))
    if (ends_on - starts_on).days + 1 > MAX_DAYS:
        raise WatchError(t("watch.err.long", n=MAX_DAYS))
    key = period_key(name, starts_on)
    inserted = insert_ignore(session, P, [{
        "key": key, "name": name[:120], "starts_on": starts_on, "ends_on": ends_on, "source": "operator",
        "created_by": actor[:100], "created_at": as_of,
    }], ["key"])
    if not inserted:
        return session.scalar(sa.select(P.c.id).where(P.c.key == key)), False
    session.add(Audit(at=as_of, actor=actor[:100], action="watch_period.added", object_type="watch_period",
                      object_id=str(inserted[0].id), detail={"name": name, "from": starts_on.isoformat(), "to": ends_on.isoformat()}))
    return inserted[0].id, True


def cancel_period(session: Session, rt: Runtime, period_id: int, as_of: dt.datetime, *, actor: str) -> int | None:
    """Cancel a period: nothing more is planned, and its open tasks are waived. None if not found or cancelled."""
    done = session.execute(sa.update(P).where(P.c.id == period_id, P.c.cancelled_at.is_(None))
                           .values(cancelled_at=as_of).returning(P.c.key, P.c.starts_on, P.c.ends_on)).first()
    if done is None:
        return None
    rules = load_rules(rt)
    still = watch_days(periods(session))  # days another period still watches keep their reports
    day_keys = [d.isoformat() for d in days(done.starts_on, done.ends_on) if d not in still]
    open_tasks = session.scalars(sa.select(O.c.id).where(
        O.c.review.in_(("none", "rejected")),
        sa.or_(sa.and_(O.c.duty_key == rules.roster.duty, O.c.period_key == done.key),
               sa.and_(O.c.duty_key == rules.daily_report.duty, O.c.period_key.in_(day_keys))),
    )).all()
    if open_tasks:
        session.execute(sa.insert(Waiver.__table__), [{
            "occurrence_id": task, "granted_by": actor[:100], "reason": f"值守时段已取消 / watch period {done.key} cancelled",
            "until": at(dt.date(9999, 12, 30), dt.time(0, 0)), "created_at": as_of,
        } for task in open_tasks])
    session.add(Audit(at=as_of, actor=actor[:100], action="watch_period.cancelled", object_type="watch_period",
                      object_id=str(period_id), detail={"waived": list(open_tasks)}))
    return len(open_tasks)


def find_period(session: Session, rt: Runtime, ref: str | None, as_of: dt.datetime, *, rules: WatchRules) -> PeriodView:
    """A period by id or key; without one, the current or next period."""
    sync_calendar(session, rt, as_of, HORIZON, rules=rules)
    if ref:
        ref = ref.strip()
        cond = P.c.id == int(ref) if ref.isdigit() else P.c.key == ref
        row = session.execute(sa.select(P).where(cond)).first()
        if row is None:
            raise WatchError(t("watch.err.period", ref=ref))
        if row.cancelled_at is not None:
            raise WatchError(t("watch.err.cancelled", name=row.name))
        return _view(row)
    upcoming = periods(session, since=as_of.date())
    if not upcoming:
        raise WatchError(t("watch.err.no_period", day=as_of.date()))
    return upcoming[0]


# --------------------------------------------------------------------------- database: planning

@dataclass
class WatchResult:
    as_of: dt.datetime
    new_periods: int = 0
    planned: int = 0
    linked: int = 0  # days reported by an incident registered for the unit
    reminders: int = 0
    escalations: int = 0
    in_hours: bool = True
    unreachable: list[int] = field(default_factory=list)


def duties_of(rt: Runtime, rules: WatchRules) -> tuple[DutySpec, DutySpec]:
    return rt.catalog.duty(rules.roster.duty), rt.catalog.duty(rules.daily_report.duty)


def units_of(org: Org, duty: DutySpec) -> list[int]:
    return [unit_id for unit_id, _ in org.subjects(duty.carrier)]


def plan(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> WatchResult:
    """Record new calendar periods, create the open roster and report tasks, link incidents."""
    rules = rules or load_rules(rt)
    roster_duty, report_duty = duties_of(rt, rules)
    result = WatchResult(as_of)
    result.new_periods = sync_calendar(session, rt, as_of, roster_duty.window.opens_before + dt.timedelta(days=1), rules=rules)
    today = as_of.date()
    found = periods(session, since=today - LOOKBACK, until=today + roster_duty.window.opens_before + dt.timedelta(days=1))
    rows = slot_rows(found, units_of(org, report_duty), roster_duty, report_duty, rules, rt.calendar, as_of,
                     roster_units=units_of(org, roster_duty))
    # Skip the slots whose tasks all exist (every earlier day of the look-back, usually): one
    # grouped count instead of re-inserting units × days rows every hour.
    wanted = Counter((r["duty_key"], r["period_key"]) for r in rows)
    if wanted:
        have = {(k, p): n for k, p, n in session.execute(
            sa.select(O.c.duty_key, O.c.period_key, sa.func.count()).where(
                O.c.duty_key.in_({k for k, _ in wanted}), O.c.period_key.in_({p for _, p in wanted}))
            .group_by(O.c.duty_key, O.c.period_key))}
        rows = [r for r in rows if have.get((r["duty_key"], r["period_key"]), 0) < wanted[(r["duty_key"], r["period_key"])]]
    result.planned = len(insert_ignore(session, O, rows, ["duty_key", "unit_id", "person_key", "period_key"]))
    result.linked = link_incidents(session, rt, org, found, as_of, rules=rules)
    return result


def link_incidents(session: Session, rt: Runtime, org: Org, found: list[PeriodView], as_of: dt.datetime, *,
                   rules: WatchRules) -> int:
    """An incident registered for a unit on a day of watch is that unit's report of the day."""
    today = as_of.date()
    watched = [d for d in watch_days(found) if today - LOOKBACK <= d <= today]
    if not watched:
        return 0
    report_duty = rt.catalog.duty(rules.daily_report.duty)
    units = set(units_of(org, report_duty))
    I = Incident.__table__
    start, end = at(min(watched), dt.time(0, 0)), at(max(watched) + dt.timedelta(days=1), dt.time(0, 0))
    rows = []
    for inc in session.execute(sa.select(I.c.id, I.c.unit_id, I.c.occurred_at, I.c.registered_by, I.c.registered_at).where(
            I.c.occurred_at >= start, I.c.occurred_at < end, I.c.registered_at <= as_of).order_by(I.c.id)):
        day = local(inc.occurred_at).date()
        if day in watched and inc.unit_id in units:
            rows.append({"unit_id": inc.unit_id, "day": day, "status": "incident", "incident_id": inc.id, "note": None,
                         "filed_by": inc.registered_by, "filed_at": inc.registered_at})
    rows = list({(r["unit_id"], r["day"]): r for r in reversed(rows)}.values())  # the first incident of the day
    inserted = insert_ignore(session, REP, rows, ["unit_id", "day"], returning=("unit_id", "day", "filed_at"))
    for r in inserted:
        _close(session, report_duty.key, r.unit_id, r.day.isoformat(), r.filed_at)
    return len(inserted)


def _close(session: Session, duty_key: str, unit_id: int, key: str, when: dt.datetime) -> None:
    session.execute(sa.update(O).where(
        O.c.duty_key == duty_key, O.c.unit_id == unit_id, O.c.person_key == 0, O.c.period_key == key,
        O.c.review != "accepted",
    ).values(review="accepted", closed_at=when))


def remind(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> tuple[int, list[int]]:
    rules = rules or load_rules(rt)
    queued, unreachable = 0, []
    for duty in duties_of(rt, rules):
        if duty.enabled:
            n, lost = queue_reminders(session, rt, duty, org, as_of)
            queued, unreachable = queued + n, unreachable + lost
    return queued, unreachable


def escalate(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> int:
    rules = rules or load_rules(rt)
    return sum(queue_escalations(session, rt, duty, org, as_of) for duty in duties_of(rt, rules) if duty.enabled)


# --------------------------------------------------------------------------- database: filing

def _unit(org: Org, code: str, duty: DutySpec):
    unit = next((u for u in org.units.values() if u.code == (code or "").strip()), None)
    if unit is None:
        raise WatchError(t("watch.err.unit", code=code))
    if not org.matches(duty.carrier, unit):
        raise WatchError(t("watch.err.carrier", code=unit.code, name=unit.name, duty=pick(duty.name, duty.name_en)))
    return unit


@dataclass(frozen=True)
class Filed:
    id: int
    created: bool
    period: PeriodView | None = None
    day: dt.date | None = None
    status: str | None = None
    incident_id: int | None = None
    late: bool = False


def file_roster(session: Session, rt: Runtime, org: Org, *, unit: str, entries: list[RosterEntry], as_of: dt.datetime,
                actor: str, period: str | None = None) -> Filed:
    """File (or replace) a unit's duty roster for a period; the first filing's time is what counts."""
    rules = load_rules(rt)
    roster_duty = rt.catalog.duty(rules.roster.duty)
    u = _unit(org, unit, roster_duty)
    p = find_period(session, rt, period, as_of, rules=rules)
    check_roster(entries, p)
    stored = [e.as_dict() for e in entries]
    upsert(session, R, [{"period_id": p.id, "unit_id": u.id, "entries": stored, "filed_by": actor[:100],
                         "filed_at": as_of, "updated_at": as_of}], ["period_id", "unit_id"], ["entries", "filed_by", "updated_at"])
    row = session.execute(sa.select(R.c.id, R.c.filed_at).where(R.c.period_id == p.id, R.c.unit_id == u.id)).one()
    created = row.filed_at == as_of
    d = roster_deadline(p, roster_duty, rules.roster, rt.calendar)
    insert_ignore(session, O, [slot_row(roster_duty, u.id, p.key, p.starts_on, p.ends_on, d, as_of)],
                  ["duty_key", "unit_id", "person_key", "period_key"], returning=())
    _close(session, roster_duty.key, u.id, p.key, row.filed_at)
    session.add(Audit(at=as_of, actor=actor[:100], action="watch.roster_filed", object_type="watch_roster",
                      object_id=str(row.id), detail={"unit": u.code, "period": p.key, "entries": stored}))
    return Filed(row.id, created, period=p, late=row.filed_at > d.due_at)


MAX_NOTE = 1000


def file_report(
    session: Session, rt: Runtime, org: Org, *, unit: str, day: dt.date, as_of: dt.datetime, actor: str,
    note: str | None = None, incident_id: int | None = None, incident: incidents.IncidentRequest | None = None,
) -> Filed:
    """File a unit's report for a day of watch: 平安无事, or an incident (an existing one, or one
    registered here, which starts its clock). A later incident report replaces a zero report
    of the same day; anything else filed twice keeps the first."""
    rules = load_rules(rt)
    report_duty = rt.catalog.duty(rules.daily_report.duty)
    u = _unit(org, unit, report_duty)
    sync_calendar(session, rt, as_of, HORIZON, rules=rules)
    if day > as_of.date():
        raise WatchError(t("watch.err.future", day=day))
    covering = watch_days(periods(session, since=day, until=day))
    if day not in covering:
        raise WatchError(t("watch.err.day", day=day))
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise WatchError(t("watch.err.note", n=MAX_NOTE))
    if incident is not None:
        incident_id = incidents.register(session, rt, org, incident, as_of, actor=actor).id
    if incident_id is not None:
        I = Incident.__table__
        if session.scalar(sa.select(I.c.id).where(I.c.id == incident_id, I.c.unit_id == u.id)) is None:
            raise WatchError(t("watch.err.incident", code=u.code, id=incident_id))
    status = "incident" if incident_id is not None else "ok"
    d = report_deadline(day, report_duty, rules.daily_report)
    insert_ignore(session, O, [slot_row(report_duty, u.id, day.isoformat(), day, day, d, as_of)],
                  ["duty_key", "unit_id", "person_key", "period_key"], returning=())
    inserted = insert_ignore(session, REP, [{
        "unit_id": u.id, "day": day, "status": status, "incident_id": incident_id, "note": note,
        "filed_by": actor[:100], "filed_at": as_of,
    }], ["unit_id", "day"])
    created = bool(inserted)
    if not created:
        old = session.execute(sa.select(REP).where(REP.c.unit_id == u.id, REP.c.day == day)).one()
        if status == "incident" and old.status == "ok":
            session.execute(sa.update(REP).where(REP.c.id == old.id).values(status="incident", incident_id=incident_id,
                                                                          note=note or old.note))
            created = True
        elif status == "ok" or old.incident_id == incident_id:
            return Filed(old.id, False, day=day, status=old.status, incident_id=old.incident_id, late=old.filed_at > d.due_at)
        else:
            raise WatchError(t("watch.err.reported", unit=u.name, day=day, id=old.incident_id))
        report_id, filed_at = old.id, old.filed_at
    else:
        report_id, filed_at = inserted[0].id, as_of
    _close(session, report_duty.key, u.id, day.isoformat(), filed_at)
    session.add(Audit(at=as_of, actor=actor[:100], action="watch.report_filed", object_type="watch_report",
                      object_id=str(report_id), detail={"unit": u.code, "day": day.isoformat(), "status": status,
                                                        "incident": incident_id, "note": note}))
    return Filed(report_id, created, day=day, status=status, incident_id=incident_id, late=filed_at > d.due_at)
