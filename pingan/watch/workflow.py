"""The holiday watch as a workflow — plan → remind → escalate.

Each step is one transaction of its own, read with the process's organisation snapshot and
written in bulk. Planning runs at any hour (the calendar's periods, the roster and report tasks,
the incidents that count as a day's report); reminders and escalations wait for the watch's
sending hours, every day of the year. The Prefect flow ``holiday-watch`` runs these steps as
task runs; ``pingan watch run`` and the tests run them with ``WATCH.run`` — the same functions,
the same transactions. Sending is the dispatcher's job (``pingan.delivery.workflow``).
"""

from __future__ import annotations

import datetime as dt

from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.core.workflow import Step, Workflow
from pingan.duties.runtime import Runtime
from pingan.duties.service import ensure_catalog
from pingan.org.snapshot import load_org
from pingan.watch import service
from pingan.watch.rules import load_rules


def plan(rt: Runtime, as_of: dt.datetime) -> dict:
    """Record the calendar's holiday periods, create open roster and report tasks, link incidents."""
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        result = service.plan(session, rt, load_org(session), local(as_of))
    return {"new_periods": result.new_periods, "planned": result.planned, "linked": result.linked}


def remind(rt: Runtime, as_of: dt.datetime) -> dict:
    """Queue the reminders that are due of every open roster and report (sending hours only)."""
    rules = load_rules(rt)
    if not rules.contains(as_of):
        return {"queued": 0, "unreachable": [], "in_hours": False}
    with session_scope(get_engine(rt.settings.db_url)) as session:
        queued, unreachable = service.remind(session, rt, load_org(session), local(as_of), rules=rules)
    return {"queued": queued, "unreachable": unreachable, "in_hours": True}


def escalate(rt: Runtime, as_of: dt.datetime) -> dict:
    """Fire the escalation events that are due: a dead man's switch per unit and day (sending hours only)."""
    rules = load_rules(rt)
    if not rules.contains(as_of):
        return {"fired": 0, "in_hours": False}
    with session_scope(get_engine(rt.settings.db_url)) as session:
        fired = service.escalate(session, rt, load_org(session), local(as_of), rules=rules)
    return {"fired": fired, "in_hours": True}


WATCH = Workflow("holiday-watch", (Step("plan", plan), Step("remind", remind), Step("escalate", escalate)))


def result_of(as_of: dt.datetime, steps: dict[str, dict]) -> service.WatchResult:
    """The step summaries of one run of ``WATCH`` as a :class:`~pingan.watch.service.WatchResult`."""
    p, r, e = steps["plan"], steps["remind"], steps["escalate"]
    return service.WatchResult(as_of=local(as_of), new_periods=p["new_periods"], planned=p["planned"], linked=p["linked"],
                               reminders=r["queued"], escalations=e["fired"], in_hours=r["in_hours"],
                               unreachable=r["unreachable"])
