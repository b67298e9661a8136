"""The incident clock's data functions: register an incident, record its reports, evaluate the clock.

An incident is registered with its unit, time of occurrence, category and severity. Its two
reports become two occurrences of the incident duty (``catalog/flows/incident.yaml`` names it:
the Dehui list, 七（十）), due at the deadlines of the unit's jurisdiction; from then on the one
escalation engine (``pingan.duties.cycle.queue_escalations``, policy ``immediate``) escalates a missing
report at once and the outbox sends each notice exactly once, day and night.

Every function takes a session and never commits: the caller's ``session_scope`` does (the
CLI, the web page, and the steps of ``pingan.incidents.workflow.CLOCK``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Escalation, Incident, Occurrence
from pingan.core.clock import local
from pingan.core.db import insert_ignore
from pingan.core.i18n import pick, t
from pingan.duties.cycle import queue_escalations
from pingan.duties.rules import escalation_schedule
from pingan.duties.runtime import Runtime
from pingan.incidents.rules import (
    REPORTS,
    IncidentError,
    IncidentRules,
    choose,
    deadlines_for,
    follow_up_times,
    load_rules,
    report_key,
)
from pingan.org.snapshot import Org

I, O, E = Incident.__table__, Occurrence.__table__, Escalation.__table__


# --------------------------------------------------------------------------- registration

@dataclass(frozen=True)
class IncidentRequest:
    unit: str  # unit code
    occurred_at: dt.datetime
    category: str  # key, or Chinese or English name
    severity: str
    summary: str | None = None
    # Registered after the fact (the school phoned on time, the operator types it in later): the
    # reports that came in are recorded with the incident, so the clock never escalates them.
    phoned_at: dt.datetime | None = None
    written_at: dt.datetime | None = None


@dataclass(frozen=True)
class Registered:
    id: int
    created: bool
    phone_due_at: dt.datetime
    written_due_at: dt.datetime
    follow_ups: tuple[dt.datetime, ...]


MAX_SUMMARY = 2000


def register(
    session: Session, rt: Runtime, org: Org, req: IncidentRequest, as_of: dt.datetime, *, actor: str,
    rules: IncidentRules | None = None,
) -> Registered:
    """Record the incident and its two report tasks (idempotent on unit, time and category)."""
    rules = rules or load_rules(rt)
    unit = next((u for u in org.units.values() if u.code == req.unit.strip()), None)
    if unit is None:
        raise IncidentError(t("inc.err.unit", code=req.unit))
    deadlines = deadlines_for(rules, org, unit.id)
    duty = rt.catalog.duty(deadlines.duty_key)
    if not org.matches(duty.carrier, unit):
        raise IncidentError(t("inc.err.carrier", code=unit.code, name=unit.name, duty=pick(duty.name, duty.name_en)))
    occurred = local(req.occurred_at).replace(microsecond=0)
    if occurred > as_of:
        raise IncidentError(t("inc.err.future", at=f"{occurred:%Y-%m-%d %H:%M}"))
    category = choose(req.category, rules.categories, "--category")
    severity = choose(req.severity, rules.severities, "--severity")
    summary = (req.summary or "").strip() or None
    if summary and len(summary) > MAX_SUMMARY:
        raise IncidentError(t("inc.err.summary", n=MAX_SUMMARY))
    reports = {"phone": req.phoned_at, "written": req.written_at}
    for report, at in reports.items():
        if at is not None:
            _check_report_time(local(at), occurred, as_of, f"--{'phoned' if report == 'phone' else 'written'}-at")

    phone_due, written_due = occurred + deadlines.phone, occurred + deadlines.written
    follow_ups = tuple(follow_up_times([phone_due, written_due], duty.escalation))
    inserted = insert_ignore(session, I, [{
        "unit_id": unit.id, "occurred_at": occurred, "category": category, "severity": severity,
        "summary": summary, "duty_key": duty.key, "jurisdiction": deadlines.jurisdiction,
        "phone_due_at": phone_due, "written_due_at": written_due, "registered_by": actor[:100],
        "registered_at": as_of,
    }], ["unit_id", "occurred_at", "category"])
    if not inserted:
        found = session.execute(sa.select(I.c.id, I.c.phone_due_at, I.c.written_due_at).where(
            I.c.unit_id == unit.id, I.c.occurred_at == occurred, I.c.category == category)).one()
        return Registered(found.id, False, found.phone_due_at, found.written_due_at, follow_ups)

    incident_id = inserted[0].id
    rows = [{
        "duty_key": duty.key, "unit_id": unit.id, "person_id": None, "person_key": 0,
        "period_key": report_key(incident_id, report), "period_start": occurred.date(), "period_end": occurred.date(),
        "opens_at": occurred, "due_at": due, "escalate_at": due + duty.escalation.grace, "created_at": as_of,
    } for report, due in (("phone", phone_due), ("written", written_due))]
    tasks = {r.period_key: r.id for r in insert_ignore(
        session, O, rows, ["duty_key", "unit_id", "person_key", "period_key"], returning=("id", "period_key"))}
    session.execute(sa.update(I).where(I.c.id == incident_id).values(
        phone_occurrence_id=tasks.get(report_key(incident_id, "phone")),
        written_occurrence_id=tasks.get(report_key(incident_id, "written")),
    ))
    session.add(Audit(at=as_of, actor=actor[:100], action="incident.registered", object_type="incident",
                      object_id=str(incident_id), detail={
                          "unit": unit.code, "occurred_at": occurred.isoformat(), "category": category,
                          "severity": severity, "duty": duty.key, "jurisdiction": deadlines.jurisdiction,
                          "phone_due": phone_due.isoformat(), "written_due": written_due.isoformat(),
                      }))
    for report, at in reports.items():
        if at is not None:
            record_report(session, incident_id, report, at, as_of, actor=actor)
    return Registered(incident_id, True, phone_due, written_due, follow_ups)


def _check_report_time(at: dt.datetime, occurred: dt.datetime, as_of: dt.datetime, option: str = "--at") -> None:
    if at < occurred:
        raise IncidentError(t("inc.err.before", option=option, at=f"{at:%Y-%m-%d %H:%M}", occurred=f"{occurred:%Y-%m-%d %H:%M}"))
    if at > as_of:
        raise IncidentError(t("inc.err.after", option=option, at=f"{at:%Y-%m-%d %H:%M}"))


def record_report(
    session: Session, incident_id: int, report: str, at: dt.datetime, as_of: dt.datetime, *, actor: str,
) -> tuple[bool, dt.datetime]:
    """Record that the phone or written report came in at ``at``; the first record stands.

    Returns (recorded now, the time on record). The report's task is accepted, so its
    escalation stops; escalations already fired stay in the timeline.
    """
    if report not in REPORTS:
        raise ValueError(f"report must be one of {REPORTS}")
    row = session.execute(sa.select(I).where(I.c.id == incident_id)).first()
    if row is None:
        raise IncidentError(t("inc.err.none", id=incident_id))
    at = local(at).replace(microsecond=0)
    _check_report_time(at, row.occurred_at, as_of)
    at_col, by_col = I.c[f"{report}_at"], I.c[f"{report}_by"]
    done = session.execute(
        sa.update(I).where(I.c.id == incident_id, at_col.is_(None)).values({at_col: at, by_col: actor[:100]})
        .returning(I.c.id)
    ).first()
    if done is None:
        return False, session.scalar(sa.select(at_col).where(I.c.id == incident_id))
    task = getattr(row, f"{report}_occurrence_id")
    if task is not None:
        session.execute(sa.update(O).where(O.c.id == task, O.c.review != "accepted").values(review="accepted", closed_at=at))
    session.add(Audit(at=as_of, actor=actor[:100], action=f"incident.{report}_reported", object_type="incident",
                      object_id=str(incident_id), detail={"at": at.isoformat(), "due": getattr(row, f"{report}_due_at").isoformat()}))
    return True, at


# --------------------------------------------------------------------------- the clock

def evaluate(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: IncidentRules | None = None) -> list[int]:
    """Fire every escalation of a missing report that is due at ``as_of``; return the incidents concerned.

    Runs at any hour: an incident does not wait for working time.
    """
    rules = rules or load_rules(rt)
    fired = 0
    for key in rules.duty_keys:
        fired += queue_escalations(session, rt, rt.catalog.duty(key), org, as_of)
    if not fired:
        return []
    query = (
        sa.select(I.c.id).distinct()
        .join(E, sa.or_(E.c.occurrence_id == I.c.phone_occurrence_id, E.c.occurrence_id == I.c.written_occurrence_id))
        .where(E.c.fired_at == as_of).order_by(I.c.id)
    )
    return list(session.scalars(query))


def open_incident_ids(session: Session) -> list[int]:
    """Incidents with a report still missing (or rejected on the evidence page)."""
    waiting = sa.select(O.c.id).where(O.c.review.in_(("none", "rejected")))
    query = sa.select(I.c.id).where(sa.or_(
        I.c.phone_occurrence_id.in_(waiting), I.c.written_occurrence_id.in_(waiting),
    )).order_by(I.c.id)
    return list(session.scalars(query))


def next_escalation(session: Session, rt: Runtime, *, rules: IncidentRules | None = None) -> dt.datetime | None:
    """The earliest escalation still to come of a missing report: for every report task still
    waiting, the first event of its policy after the last one that fired; None when there is none.
    A run of the clock before it fires nothing (``pingan replay`` skips the sweeps before it)."""
    rules = rules or load_rules(rt)
    waiting = session.execute(sa.select(O.c.id, O.c.duty_key, O.c.escalate_at).where(
        O.c.duty_key.in_(rules.duty_keys), O.c.review.in_(("none", "rejected")))).all()
    if not waiting:
        return None
    latest = dict(session.execute(sa.select(E.c.occurrence_id, sa.func.max(E.c.due_at)).where(
        E.c.occurrence_id.in_([w.id for w in waiting])).group_by(E.c.occurrence_id)).all())
    out = []
    for w in waiting:
        after = latest.get(w.id)
        after = local(after) if after is not None else None
        event = next((e for e in escalation_schedule(rt.catalog.duty(w.duty_key).escalation, local(w.escalate_at))
                      if after is None or e.at > after), None)
        if event is not None:
            out.append(event.at)
    return min(out, default=None)


def exists(session: Session, incident_id: int) -> bool:
    return session.scalar(sa.select(I.c.id).where(I.c.id == incident_id)) is not None


# --------------------------------------------------------------------------- follow-up runs

def follow_ups(session: Session, rt: Runtime, incident_id: int) -> list[dt.datetime]:
    """Every escalation time of the incident's two deadlines: when its clock must run again."""
    row = session.execute(sa.select(I.c.duty_key, I.c.phone_due_at, I.c.written_due_at).where(I.c.id == incident_id)).one()
    return follow_up_times([row.phone_due_at, row.written_due_at], rt.catalog.duty(row.duty_key).escalation)


def record_follow_ups(session: Session, incident_id: int, scheduled: Sequence[dt.datetime], as_of: dt.datetime) -> None:
    """Audit the follow-up runs scheduled for an incident."""
    session.add(Audit(at=as_of, actor="system", action="incident.follow_ups_scheduled", object_type="incident",
                      object_id=str(incident_id), detail={"times": [w.isoformat() for w in scheduled]}))
