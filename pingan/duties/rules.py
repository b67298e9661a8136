"""The pure decisions of a duty cycle: which tasks exist, their state, which reminder step and
which escalation events are due at ``as_of``.

Everything here is a function of (catalog, organisation, tasks, as_of): no database, no
Prefect, no clock. The cycle (``pingan.duties.cycle``) feeds it rows and writes back what it decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from pingan.core.calendar import WorkCalendar
from pingan.core.cadence import Cadence, KeyDate
from pingan.duties.catalog import DutySpec, EscalationPolicy, ReminderStep
from pingan.core.periods import Period, Terms, periods_between, timing
from pingan.core.clock import TZ
from pingan.org.snapshot import Org


@dataclass(frozen=True)
class PlanContext:
    calendar: WorkCalendar
    terms: Terms
    key_dates: dict[str, KeyDate]


@dataclass(frozen=True)
class Slot:
    """A task the plan wants to exist."""

    duty_key: str
    unit_id: int
    person_id: int | None
    period: Period
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime

    def row(self, **extra) -> dict:
        return {
            "duty_key": self.duty_key, "unit_id": self.unit_id, "person_id": self.person_id,
            "person_key": self.person_id or 0, "period_key": self.period.key,
            "period_start": self.period.start, "period_end": self.period.end,
            "opens_at": self.opens_at, "due_at": self.due_at, "escalate_at": self.escalate_at, **extra,
        }


def open_periods(
    duty: DutySpec, as_of: dt.datetime, ctx: PlanContext, *, cadence: Cadence | None = None,
    within: tuple[dt.date, dt.date] | None = None,
) -> list[tuple[Period, dt.datetime, dt.datetime, dt.datetime]]:
    """Periods whose window is open at ``as_of``: opened, and not yet past due + grace.

    That is the current period and any earlier one still inside its grace — a missed run is
    caught up — but never a period whose escalation already began before pingan saw it.
    """
    cadence = cadence or duty.cadence
    grace = duty.escalation.grace
    day = as_of.date()
    # periods ending this far back can still be inside their window (due after the period ends)
    first = day - duty.window.due_after - grace - dt.timedelta(days=2)
    last = day + duty.window.opens_before + dt.timedelta(days=1)
    if within is not None:
        first, last = max(first, within[0]), min(last, within[1])
        if first > last:
            return []
    out = []
    for period in periods_between(cadence, first, last, ctx.terms, ctx.key_dates, ctx.calendar):
        if within is not None and not (within[0] <= period.start and period.end <= within[1]):
            continue
        t = timing(period, duty.window, ctx.calendar)
        escalate_at = t.due_at + grace
        if t.opens_at <= as_of <= escalate_at:
            out.append((period, t.opens_at, t.due_at, escalate_at))
    return out


def plan(duty: DutySpec, org: Org, as_of: dt.datetime, ctx: PlanContext, *, skip: Collection[str] = (),
         **kwargs) -> list[Slot]:
    """Every task of ``duty`` whose window is open at ``as_of``, for every subject (periods in
    ``skip`` left out)."""
    if not duty.planned:
        return []
    periods = [p for p in open_periods(duty, as_of, ctx, **kwargs) if p[0].key not in skip]
    if not periods:
        return []
    subjects = org.subjects(duty.carrier)
    return [
        Slot(duty.key, unit_id, person_id, period, opens_at, due_at, escalate_at)
        for period, opens_at, due_at, escalate_at in periods
        for unit_id, person_id in subjects
    ]


# --------------------------------------------------------------------------- task state

@dataclass(frozen=True)
class TaskView:
    """The columns of an occurrence the decisions need."""

    id: int
    duty_key: str
    unit_id: int
    person_id: int | None
    period_key: str
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime
    review: str  # none | submitted | accepted | rejected
    waived_until: dt.datetime | None = None

    def waived(self, as_of: dt.datetime) -> bool:
        return self.waived_until is not None and as_of < self.waived_until

    def needs_evidence(self, as_of: dt.datetime) -> bool:
        """Evidence is missing or was rejected, and no waiver holds: reminders and escalation apply."""
        return self.review in ("none", "rejected") and not self.waived(as_of)


STATES = ("upcoming", "open", "submitted", "accepted", "overdue", "escalated", "waived")


def state(task: TaskView, as_of: dt.datetime, escalated: bool = False) -> str:
    """The one place a task's state is derived (cf. healthchecks' ``Check.get_status``)."""
    if task.review == "accepted":
        return "accepted"
    if task.waived(as_of):
        return "waived"
    if task.review == "submitted":
        return "submitted"
    if as_of < task.opens_at:
        return "upcoming"
    if as_of <= task.due_at:
        return "open"
    return "escalated" if escalated else "overdue"


# --------------------------------------------------------------------------- reminders

def step_time(step: ReminderStep, task: TaskView) -> dt.datetime:
    return (task.opens_at if step.anchor == "open" else task.due_at) + step.offset


def reminder_due(steps: Iterable[ReminderStep], task: TaskView, as_of: dt.datetime) -> ReminderStep | None:
    """The latest reminder step whose time has come, while the task still needs evidence.

    Earlier steps a stopped scheduler missed are superseded by the latest: one reminder, not a burst.
    After due + grace, reminders stop and escalation takes over.
    """
    if not task.needs_evidence(as_of) or as_of >= task.escalate_at or as_of < task.opens_at:
        return None
    due = [s for s in steps if step_time(s, task) <= as_of]
    return max(due, key=lambda s: step_time(s, task)) if due else None


def is_working_time(as_of: dt.datetime, calendar: WorkCalendar, start: dt.time, end: dt.time) -> bool:
    """Reminders and escalations go out on working days within working hours only."""
    local = as_of.astimezone(TZ)
    return calendar.is_workday(local.date()) and start <= local.time() < end


# --------------------------------------------------------------------------- escalation

@dataclass(frozen=True)
class EscalationEvent:
    level: int
    seq: int  # 0 for the level itself, 1… for repeats of the last level
    at: dt.datetime
    targets: tuple[str, ...]


def escalation_schedule(policy: EscalationPolicy, start: dt.datetime) -> Iterator[EscalationEvent]:
    """Every escalation event of a task whose escalation starts at ``start``, in time order."""
    for lvl in policy.levels:
        yield EscalationEvent(lvl.level, 0, start + lvl.after, lvl.to)
    if policy.repeat is None:
        return
    last = policy.levels[-1]
    at, interval, seq = start + last.after, policy.repeat.every, 1
    while True:
        at += interval
        yield EscalationEvent(last.level, seq, at, last.to)
        interval = min(interval * policy.repeat.backoff, policy.repeat.max_every)
        seq += 1


def escalations_due(
    policy: EscalationPolicy, task: TaskView, as_of: dt.datetime, fired: set[tuple[int, int]]
) -> list[EscalationEvent]:
    """The events to fire now: every level reached and not yet fired, and the latest repeat.

    Levels are never skipped, even after downtime (each reaches a different leader); repeats
    that a stopped scheduler missed collapse into the latest one.
    """
    if not task.needs_evidence(as_of) or as_of < task.escalate_at:
        return []
    levels, latest_repeat = [], None
    for event in escalation_schedule(policy, task.escalate_at):
        if event.at > as_of:
            break
        if event.seq == 0:
            if (event.level, 0) not in fired:
                levels.append(event)
        else:
            latest_repeat = event
    if latest_repeat is not None and (latest_repeat.level, latest_repeat.seq) not in fired:
        levels.append(latest_repeat)
    return levels


def next_reminder(steps: Iterable[ReminderStep], task: TaskView, as_of: dt.datetime) -> dt.datetime | None:
    """When the reminder engine must look at ``task`` again after a run at ``as_of``: its next
    step (the end of its waiver if that comes first); ``None`` when no step is left before
    escalation takes over."""
    upcoming = min((at for step in steps if as_of < (at := step_time(step, task)) < task.escalate_at), default=None)
    if task.waived(as_of):
        return task.waived_until if upcoming is None else min(upcoming, task.waived_until)
    return upcoming


def next_look(policy: EscalationPolicy, task: TaskView, as_of: dt.datetime) -> dt.datetime | None:
    """When the escalation engine must look at ``task`` again after a run at ``as_of``.

    The next event of its policy (the end of its waiver if that comes first); ``None`` when no
    event is left — the task is then never read again unless its review changes.
    """
    upcoming = next((event.at for event in escalation_schedule(policy, task.escalate_at) if event.at > as_of), None)
    if task.waived(as_of):
        return task.waived_until if upcoming is None else min(upcoming, task.waived_until)
    return upcoming
