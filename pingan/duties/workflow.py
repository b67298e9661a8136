"""The duty cycle as a workflow — plan → remind → escalate — and the replay of a date range.

Each step is one transaction of its own, read with the process's organisation snapshot
(``pingan.org.snapshot.load_org``: read once while the organisation is unchanged) and written
in bulk. The Prefect flow ``duty-cycle`` runs these steps as task runs; ``pingan run --local``,
``pingan replay``, the tests and the bench run them with ``CYCLE.run`` — the same functions,
the same transactions. Sending is the dispatcher's job (``pingan.delivery.workflow``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.core.schedule import Job
from pingan.core.schedule import replay as walk
from pingan.core.workflow import Step, Workflow
from pingan.duties.cycle import CycleResult, plan_tasks, queue_escalations, queue_reminders
from pingan.duties.rules import is_working_time
from pingan.duties.runtime import Runtime
from pingan.duties.service import ensure_catalog
from pingan.org.snapshot import load_org


def in_working_time(rt: Runtime, as_of: dt.datetime) -> bool:
    s = rt.settings
    return is_working_time(local(as_of), rt.calendar, s.work_start, s.work_end)


def off_time(rt: Runtime, as_of: dt.datetime) -> str | None:
    """Why reminders and escalations wait at ``as_of``: ``day_off`` (a weekend or public holiday,
    make-up working days counted as working), ``off_hours``, or None in working time."""
    if in_working_time(rt, as_of):
        return None
    return "off_hours" if rt.calendar.is_workday(local(as_of).date()) else "day_off"


# Each step's summary says why a count is zero (``why``; None when it is not): what the operator
# reads in ``pingan run``, the run's artifact and ``pingan replay`` (texts: pingan.duties.views).

def plan(rt: Runtime, duty: str, as_of: dt.datetime) -> dict:
    """Create the duty's task of every unit and person for every open period (catching up missed ones)."""
    spec = rt.catalog.duty(duty)
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        created, periods = plan_tasks(session, rt, spec, load_org(session), local(as_of))
    why = None if created else ("planned_before" if periods else "no_period")
    return {"created": created, "periods": periods, "why": why}


def remind(rt: Runtime, duty: str, as_of: dt.datetime) -> dict:
    """Queue the reminder step due for every open task (working time only)."""
    off = off_time(rt, as_of)
    if off:
        return {"queued": 0, "unreachable": [], "working_time": False, "why": off}
    spec = rt.catalog.duty(duty)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        queued, unreachable = queue_reminders(session, rt, spec, load_org(session), local(as_of))
    why = None if queued else ("unreachable" if unreachable else "nothing_due")
    return {"queued": queued, "unreachable": unreachable, "working_time": True, "why": why}


def escalate(rt: Runtime, duty: str, as_of: dt.datetime) -> dict:
    """Fire the escalation events that are due (working time only)."""
    off = off_time(rt, as_of)
    if off:
        return {"fired": 0, "working_time": False, "why": off}
    spec = rt.catalog.duty(duty)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        fired = queue_escalations(session, rt, spec, load_org(session), local(as_of))
    return {"fired": fired, "working_time": True, "why": None if fired else "nothing_due"}


CYCLE = Workflow("duty-cycle", (Step("plan", plan), Step("remind", remind), Step("escalate", escalate)))


def result_of(duty: str, as_of: dt.datetime, steps: dict[str, dict]) -> CycleResult:
    """The step summaries of one run of ``CYCLE`` as a :class:`CycleResult`."""
    p, r, e = steps["plan"], steps["remind"], steps["escalate"]
    return CycleResult(duty_key=duty, as_of=as_of, periods=p["periods"], planned=p["created"], reminders=r["queued"],
                       escalations=e["fired"], working_time=r["working_time"], unreachable=r["unreachable"],
                       why={"planned": p.get("why"), "reminders": r.get("why"), "escalations": e.get("why")})


def cycle(rt: Runtime, duty: str, as_of: dt.datetime) -> CycleResult:
    """One run of the duty cycle in this process (the steps of the Prefect flow, in order)."""
    as_of = local(as_of)
    return result_of(duty, as_of, CYCLE.run(rt, duty=duty, as_of=as_of))


@dataclass
class ReplaySummary:
    start: dt.date
    end: dt.date
    runs: int = 0
    by_duty: dict[str, CycleResult] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0

    def totals(self) -> dict[str, int]:
        return {
            "planned": sum(r.planned for r in self.by_duty.values()),
            "reminders": sum(r.reminders for r in self.by_duty.values()),
            "escalations": sum(r.escalations for r in self.by_duty.values()),
            "sent": self.sent, "failed": self.failed,
        }


def replay(
    rt: Runtime, start: dt.date, end: dt.date, *, times: tuple[dt.time, ...] = (dt.time(9, 0), dt.time(15, 0)),
    duties: list[str] | None = None, send_messages: bool = True,
    on_step: Callable[[dt.datetime], None] | None = None,
) -> ReplaySummary:
    """The duty cycles alone, at ``times`` of each day in [start, end], each moment followed by the
    dispatcher (the tests' quarter). ``pingan replay`` runs every scheduled flow at its
    deployment's schedule instead (``pingan.cli.replay``); both walk with ``pingan.core.schedule``."""
    from pingan.delivery.workflow import DISPATCH

    crons = tuple(f"{moment.minute} {moment.hour} * * *" for moment in times)
    jobs = [Job(key, "duty-cycle", crons, lambda as_of, key=key: CYCLE.run(rt, duty=key, as_of=as_of))
            for key in duties or [d.key for d in rt.catalog.planned]]
    if send_messages:
        jobs.append(Job("dispatch", "outbox-dispatch", crons, lambda as_of: DISPATCH.run(rt, as_of=as_of)))
    summary = ReplaySummary(start=start, end=end)
    last = jobs[-1].name if jobs else None

    def done(job: Job, as_of: dt.datetime, steps: dict) -> None:
        if job.flow == "duty-cycle":
            summary.by_duty.setdefault(job.name, CycleResult(duty_key=job.name, as_of=as_of)).merge(
                result_of(job.name, as_of, steps))
        else:
            summary.sent += steps["deliver"]["sent"]
            summary.failed += steps["deliver"]["failed"]
        if job.name == last:
            summary.runs += 1
            if on_step:
                on_step(as_of)

    walk(jobs, start, end, on_run=done)
    return summary
