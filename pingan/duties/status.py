"""The state of a duty's tasks, per unit: what the operator's artifacts and ``pingan status`` show."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Escalation, Message, Notice, Occurrence, Person, Unit, Waiver
from pingan.duties.rules import STATES, TaskView, state

O, E, N, M = Occurrence.__table__, Escalation.__table__, Notice.__table__, Message.__table__


@dataclass(frozen=True)
class TaskRow:
    task: int
    unit: str
    unit_code: str
    person: str | None
    period: str
    due: str
    state: str
    review: str
    level: int  # highest escalation level reached, 0 for none
    reminders: int

    def as_dict(self) -> dict:
        return asdict(self)


def current_periods(session: Session, duty_key: str, as_of: dt.datetime) -> list[str]:
    """Periods of the duty whose tasks are open or most recently due at ``as_of``."""
    open_keys = session.scalars(
        sa.select(O.c.period_key).where(O.c.duty_key == duty_key, O.c.opens_at <= as_of, O.c.escalate_at >= as_of).distinct()
    ).all()
    if open_keys:
        return sorted(open_keys)
    last = session.scalar(sa.select(sa.func.max(O.c.due_at)).where(O.c.duty_key == duty_key, O.c.due_at <= as_of))
    if last is None:
        return []
    return sorted(session.scalars(sa.select(O.c.period_key).where(O.c.duty_key == duty_key, O.c.due_at == last).distinct()).all())


def task_rows(session: Session, duty_key: str, as_of: dt.datetime, periods: list[str] | None = None) -> list[TaskRow]:
    periods = periods if periods is not None else current_periods(session, duty_key, as_of)
    if not periods:
        return []
    level = sa.select(sa.func.coalesce(sa.func.max(E.c.level), 0)).where(E.c.occurrence_id == O.c.id).scalar_subquery()
    reminders = (
        sa.select(sa.func.count(sa.distinct(N.c.step)))
        .where(N.c.occurrence_id == O.c.id, N.c.kind == "reminder").scalar_subquery()
    )
    waived = (
        sa.select(sa.func.max(Waiver.until)).where(Waiver.occurrence_id == O.c.id, Waiver.revoked_at.is_(None))
        .scalar_subquery()
    )
    U, P = Unit.__table__, Person.__table__
    query = (
        sa.select(
            O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.opens_at, O.c.due_at,
            O.c.escalate_at, O.c.review, waived.label("waived_until"), level.label("level"),
            reminders.label("reminders"), U.c.name.label("unit"), U.c.code.label("unit_code"), P.c.name.label("person"),
        )
        .join(U, U.c.id == O.c.unit_id).outerjoin(P, P.c.id == O.c.person_id)
        .where(O.c.duty_key == duty_key, O.c.period_key.in_(periods))
        .order_by(U.c.code, O.c.period_key, O.c.person_key)
    )
    out = []
    for r in session.execute(query):
        view = TaskView(
            id=r.id, duty_key=r.duty_key, unit_id=r.unit_id, person_id=r.person_id, period_key=r.period_key,
            opens_at=r.opens_at, due_at=r.due_at, escalate_at=r.escalate_at, review=r.review, waived_until=r.waived_until,
        )
        out.append(TaskRow(
            task=r.id, unit=r.unit, unit_code=r.unit_code, person=r.person, period=r.period_key,
            due=r.due_at.strftime("%Y-%m-%d %H:%M"), state=state(view, as_of, escalated=r.level > 0),
            review=r.review, level=r.level, reminders=r.reminders,
        ))
    return out


def tally(rows: list[TaskRow]) -> dict[str, int]:
    counts = Counter(r.state for r in rows)
    return {s: counts.get(s, 0) for s in STATES}
