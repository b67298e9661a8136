"""One duty cycle against the database: plan → remind → escalate, in bulk and idempotently.

Each step reads what it needs in a few queries, asks ``pingan.duties.rules`` what is due, and writes
with ``INSERT … ON CONFLICT DO NOTHING`` on the natural keys (task slot, notice dedupe key,
escalation step). Running it again, or twice at once, converges to the same rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Duty, Escalation, NoticeKind, Occurrence, PlanMark, Waiver
from pingan.core.db import insert_ignore, insert_new, upsert
from pingan.duties.catalog import Catalog, DutySpec
from pingan.delivery import notices
from pingan.org.snapshot import Org
from pingan.duties.rules import TaskView, escalations_due, next_look, next_reminder, open_periods, plan, reminder_due
from pingan.duties.runtime import Runtime
from pingan.duties.sensitive import plan_tighter
from pingan.core.periods import condition_holds

O, PM = Occurrence.__table__, PlanMark.__table__


@dataclass
class CycleResult:
    duty_key: str
    as_of: dt.datetime
    periods: list[str] = field(default_factory=list)
    planned: int = 0  # tasks created by this run
    reminders: int = 0  # notices queued by this run
    escalations: int = 0  # escalation events fired by this run
    working_time: bool = True
    unreachable: list[int] = field(default_factory=list)  # tasks nobody could be reminded of
    # why a count is zero, by count name (planned, reminders, escalations): pingan.duties.workflow's codes
    why: dict[str, str | None] = field(default_factory=dict)

    def merge(self, other: CycleResult) -> None:
        self.planned += other.planned
        self.reminders += other.reminders
        self.escalations += other.escalations


def sync_catalog(session: Session, catalog: Catalog) -> int:
    """Write the catalog's duties into ``duty`` (upsert by key); deactivate removed ones."""
    rows = [
        {
            "key": d.key, "name": d.name, "name_en": d.name_en, "document": d.source.document,
            "clause": d.source.clause, "cadence": d.cadence.every, "spec": d.model_dump(mode="json"),
            "spec_hash": d.spec_hash(), "active": True,
        }
        for d in catalog.duties.values()
    ]
    table = Duty.__table__
    before = {r.key: (r.spec_hash, r.active) for r in session.execute(sa.select(table.c.key, table.c.spec_hash, table.c.active))}
    # Changed: new, edited, or back in the catalog after it had been removed (same spec, inactive).
    edited = [r["key"] for r in rows if before.get(r["key"]) != (r["spec_hash"], True)]
    changed = len(edited)
    if changed:
        upsert(session, table, rows, ["key"], ["name", "name_en", "document", "clause", "cadence", "spec", "spec_hash", "active"])
        # An edited escalation policy may bring an event forward: look at every waiting task again.
        session.execute(sa.update(O).where(O.c.duty_key.in_(edited), O.c.review.in_(("none", "rejected")))
                        .values(next_reminder_at=O.c.opens_at, next_escalation_at=O.c.escalate_at))
    gone = {key for key, (_, active) in before.items() if active} - set(catalog.duties)
    if gone:
        session.execute(sa.update(table).where(table.c.key.in_(gone)).values(active=False))
    if changed or gone:
        session.add(Audit(actor="system", action="catalog.synced", object_type="catalog", object_id="duties",
                          detail={"changed": changed, "deactivated": sorted(gone)}))
    return changed


# --------------------------------------------------------------------------- plan

def plan_tasks(
    session: Session, rt: Runtime, duty: DutySpec, org: Org, as_of: dt.datetime, *,
    sensitive_period_id: int | None = None, **kwargs,
) -> tuple[int, list[str]]:
    """Create the tasks of every open period for every subject; return (created, period keys).

    A period already planned for this organisation and this version of the duty (``plan_mark``)
    is skipped without a write; the others are planned and marked in the same transaction.
    """
    marking = org.version is not None and sensitive_period_id is None and not kwargs
    fingerprint = hashlib.sha256(f"{duty.spec_hash()}:{org.version}".encode()).hexdigest() if marking else ""
    keys = sorted({period.key for period, *_ in open_periods(duty, as_of, rt.ctx, **kwargs)}) if duty.planned else []
    done = set(session.scalars(sa.select(PM.c.period_key).where(
        PM.c.duty_key == duty.key, PM.c.period_key.in_(keys), PM.c.fingerprint == fingerprint))) if marking and keys else set()
    slots = plan(duty, org, as_of, rt.ctx, skip=done, **kwargs)
    rows = [s.row(created_at=as_of, sensitive_period_id=sensitive_period_id) for s in slots]
    inserted = insert_new(session, O, rows, ["duty_key", "unit_id", "person_key", "period_key"])
    if marking and len(done) < len(keys):
        upsert(session, PM, [{"duty_key": duty.key, "period_key": key, "fingerprint": fingerprint, "planned_at": as_of}
                             for key in keys if key not in done], ["duty_key", "period_key"], ["fingerprint", "planned_at"])
    tighter = plan_tighter(session, rt, duty, org, as_of)
    settle_when_condition_ends(session, rt, duty, as_of)
    return inserted + tighter, keys


# How long a task whose condition has ended stays waived: beyond any escalation it could still reach.
SETTLED_FOR = dt.timedelta(days=400)


def settle_when_condition_ends(session: Session, rt: Runtime, duty: DutySpec, as_of: dt.datetime) -> int:
    """Waive the open tasks of a duty planned only while a condition holds, once it no longer does
    (next year's holidays imported, say): nothing is left to check, so nobody is reminded or
    escalated to about the days before. Returns how many tasks were waived."""
    if duty.cadence.only_while is None or condition_holds(duty.cadence, as_of.date(), rt.calendar):
        return 0
    active = sa.select(Waiver.occurrence_id).where(Waiver.revoked_at.is_(None), Waiver.until > as_of)
    open_ids = list(session.scalars(sa.select(O.c.id).where(
        O.c.duty_key == duty.key, O.c.review.in_(("none", "rejected")), O.c.id.not_in(active))))
    if not open_ids:
        return 0
    reason = f"条件已结束 / condition ended: {duty.cadence.only_while}"
    session.execute(sa.insert(Waiver.__table__), [
        {"occurrence_id": i, "granted_by": "system", "reason": reason, "until": as_of + SETTLED_FOR, "created_at": as_of}
        for i in open_ids])
    session.execute(sa.update(O).where(O.c.id.in_(open_ids)).values(next_reminder_at=None, next_escalation_at=None))
    session.add(Audit(actor="system", action="tasks.settled", object_type="duty", object_id=duty.key,
                      detail={"tasks": len(open_ids), "condition": duty.cadence.only_while}))
    return len(open_ids)


# --------------------------------------------------------------------------- read tasks

def _tasks(session: Session, duty_key: str, where: sa.ColumnElement) -> list[TaskView]:
    waived = (
        sa.select(sa.func.max(Waiver.until))
        .where(Waiver.occurrence_id == O.c.id, Waiver.revoked_at.is_(None))
        .scalar_subquery()
    )
    query = sa.select(
        O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.opens_at, O.c.due_at,
        O.c.escalate_at, O.c.review, waived.label("waived_until"),
    ).where(O.c.duty_key == duty_key, O.c.review.in_(("none", "rejected")), where)
    return [TaskView(*row) for row in session.execute(query)]  # columns in TaskView's field order


# --------------------------------------------------------------------------- remind

def queue_reminders(session: Session, rt: Runtime, duty: DutySpec, org: Org, as_of: dt.datetime) -> tuple[int, list[int]]:
    """Queue the due reminder step of every open task to its assignees; return (queued, unreachable).

    Reads only the tasks whose ``next_reminder_at`` has come (an index range) and moves it on to
    their next step: a second run at the same instant reads nothing.
    """
    if not duty.reminders:
        return 0, []
    tasks = _tasks(session, duty.key, sa.and_(O.c.next_reminder_at <= as_of, O.c.opens_at <= as_of,
                                              O.c.escalate_at > as_of))
    _move(session, [{"task_id": task.id, "next_reminder_at": next_reminder(duty.reminders, task, as_of)} for task in tasks])
    rows, unreachable = [], []
    for task in tasks:
        step = reminder_due(duty.reminders, task, as_of)
        if step is None:
            continue
        people = org.assignees(duty.carrier, task.unit_id, task.person_id)
        if not people:
            unreachable.append(task.id)
            continue
        payload = _payload(rt, duty, org, task)
        release = release_for(rt, duty, as_of, task.due_at)
        for pid in people:
            rows.append(notices.notice(pid, f"r:{task.id}:{step.key}", NoticeKind.reminder, step.key,
                                       {**payload, "step": step.key}, as_of, occurrence_id=task.id, duty_key=duty.key,
                                       release_at=release))
    return notices.queue(session, rows), unreachable


# Duties whose notices cannot wait for a digest slot: the incident clock keeps no office hours,
# and a holiday watch runs on days without a working morning.
CLOCK_FLOWS = ("incident", "holiday")


def release_for(rt: Runtime, duty: DutySpec, as_of: dt.datetime, due_at: dt.datetime) -> dt.datetime:
    """When a notice of ``duty`` queued at ``as_of`` may go: at once for the clock-driven duties,
    else at its digest slot."""
    return rt.release_at(as_of, due_at=due_at, urgent=duty.flow in CLOCK_FLOWS)


def _payload(rt: Runtime, duty: DutySpec, org: Org, task: TaskView) -> dict:
    unit = org.units.get(task.unit_id)
    person = org.persons.get(task.person_id) if task.person_id else None
    return {
        "duty": duty.key, "unit": unit.name if unit else str(task.unit_id),
        "person": person.name if person else None, "period": task.period_key,
        "due": task.due_at.isoformat(),
    }


def _move(session: Session, moves: list[dict]) -> None:
    """Set when the engines look at each task again (``next_reminder_at`` / ``next_escalation_at``,
    keyed by ``task_id``): one executemany."""
    if moves:
        columns = [c for c in moves[0] if c != "task_id"]
        session.execute(sa.update(O).where(O.c.id == sa.bindparam("task_id"))
                        .values({c: sa.bindparam(f"new_{c}") for c in columns}),
                        [{"task_id": m["task_id"], **{f"new_{c}": m[c] for c in columns}} for m in moves])


# --------------------------------------------------------------------------- escalate

def queue_escalations(session: Session, rt: Runtime, duty: DutySpec, org: Org, as_of: dt.datetime) -> int:
    """Fire the escalation events that are due; each reaches its level's leaders once.

    Reads only the tasks whose ``next_escalation_at`` has come (an index range), and moves it on
    to their next event: the cost follows what is due, not the history behind it.
    """
    looking = sa.and_(O.c.next_escalation_at <= as_of, O.c.next_escalation_at.is_not(None))
    tasks = _tasks(session, duty.key, looking)
    if not tasks:
        return 0
    E = Escalation.__table__
    fired: dict[int, set[tuple[int, int]]] = defaultdict(set)
    selected = sa.select(O.c.id).where(O.c.duty_key == duty.key, O.c.review.in_(("none", "rejected")), looking)
    for row in session.execute(sa.select(E.c.occurrence_id, E.c.level, E.c.seq).where(E.c.occurrence_id.in_(selected))):
        fired[row.occurrence_id].add((row.level, row.seq))
    # past escalate_at no reminder is left: the reminder engine need not look at them again
    _move(session, [{"task_id": task.id, "next_escalation_at": next_look(duty.escalation, task, as_of),
                     "next_reminder_at": None} for task in tasks])

    rows, by_key = [], {}
    for task in tasks:
        for event in escalations_due(duty.escalation, task, as_of, fired[task.id]):
            assignees = set(org.assignees(duty.carrier, task.unit_id, task.person_id))
            recipients = org.escalation_recipients(event.targets, task.unit_id, list(assignees))
            reason = "rejected" if task.review == "rejected" else "missing"
            rows.append({
                "occurrence_id": task.id, "level": event.level, "seq": event.seq, "reason": reason,
                "recipients": recipients, "due_at": event.at, "fired_at": as_of,
            })
            by_key[(task.id, event.level, event.seq)] = (task, event, recipients, reason, sorted(assignees))
    inserted = insert_ignore(session, E, rows, ["occurrence_id", "level", "seq"], returning=("id", "occurrence_id", "level", "seq"))
    queued, audits = [], []
    for row in inserted:
        task, event, recipients, reason, assignees = by_key[(row.occurrence_id, row.level, row.seq)]
        payload = {
            **_payload(rt, duty, org, task), "level": event.level, "seq": event.seq, "reason": reason,
            "assignees": [org.persons[p].name for p in assignees if p in org.persons],
        }
        step = f"L{event.level}" + (f"R{event.seq}" if event.seq else "")
        queued += [notices.notice(pid, f"e:{task.id}:{event.level}:{event.seq}", NoticeKind.escalation, step, payload,
                                  as_of, occurrence_id=task.id, duty_key=duty.key, level=event.level,
                                  urgent=duty.flow in CLOCK_FLOWS, release_at=release_for(rt, duty, as_of, task.due_at))
                   for pid in recipients]
        audits.append({
            "at": as_of, "actor": "system", "action": "escalation.fired", "object_type": "occurrence",
            "object_id": str(task.id),
            "detail": {"duty": duty.key, "level": event.level, "seq": event.seq, "reason": reason,
                       "recipients": recipients, "due": event.at.isoformat()},
        })
    notices.queue(session, queued)
    if audits:
        session.execute(sa.insert(Audit.__table__), audits)
    return len(inserted)


# --------------------------------------------------------------------------- the cycle
