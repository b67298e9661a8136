"""The incident clock as a workflow — escalate — and the scheduling of its follow-up runs.

Nothing waits in a process. One step evaluates every open incident at ``as_of``: each missing
report whose deadline (or next escalation level) has come is escalated at once, day and night.
The Prefect flows ``incident-clock`` and ``incident-sweep`` run ``CLOCK`` as task runs; the CLI,
the web page and the tests run it with ``CLOCK.run`` — the same function, the same transaction.
Sending is the dispatcher's job (``pingan.delivery.workflow``).

Registering an incident (``service.register`` in the caller's transaction) is followed by
``CLOCK.run`` and a dispatch, so what is already late is escalated at once, and by
:func:`follow_up`: the caller passes in the scheduler that runs the clock again at each
escalation time (``tasks.incident.schedule_follow_ups`` when a Prefect API is configured);
without one, the sweep every few minutes evaluates the clock instead, so a lost schedule costs
minutes, not a report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.core.workflow import Step, Workflow
from pingan.duties.runtime import Runtime
from pingan.duties.service import ensure_catalog
from pingan.incidents import service
from pingan.org.snapshot import load_org

# ``schedule(incident_id, times, as_of) -> the times scheduled``: logs its failures, never raises.
Scheduler = Callable[[int, Sequence[dt.datetime], dt.datetime], list[dt.datetime]]


def escalate(rt: Runtime, as_of: dt.datetime) -> dict:
    """Fire every due escalation of a missing report (all open incidents: one query each way)."""
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return {"incidents": service.evaluate(session, rt, load_org(session), local(as_of))}


CLOCK = Workflow("incident-clock", (Step("escalate", escalate),))


def next_work(rt: Runtime, as_of: dt.datetime) -> dt.datetime | None:
    """When a run of ``CLOCK`` next fires something: the earliest escalation still to come."""
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return service.next_escalation(session, rt)


def follow_up(rt: Runtime, incident_id: int, as_of: dt.datetime, schedule: Scheduler) -> list[dt.datetime]:
    """Have ``schedule`` run the clock again at each escalation time of the incident; audit the
    runs it scheduled (``schedule`` skips the times already past). Return those times."""
    as_of = local(as_of)
    engine = get_engine(rt.settings.db_url)
    with session_scope(engine) as session:
        times = service.follow_ups(session, rt, incident_id)
    scheduled = schedule(incident_id, times, as_of)
    if scheduled:
        with session_scope(engine) as session:
            service.record_follow_ups(session, incident_id, scheduled, as_of)
    return scheduled
