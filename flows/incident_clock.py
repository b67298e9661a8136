"""The incident-report clock: 30 minutes to the phone report, 2 hours to the written one.

``incident-clock`` evaluates the clock for one incident at ``as_of`` (default now): it fires
every escalation that is due, sends, and publishes the incident's timeline. Registering an
incident schedules a run of it at each escalation time; nothing waits in a process.
``incident-sweep`` runs every few minutes and evaluates every open incident, so an incident
whose follow-up runs could not be scheduled is escalated all the same. Both run the one step
of ``pingan.incidents.workflow.CLOCK`` as a task run.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flows.params import as_of_param, ui
from pingan.core.clock import local, now
from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime
from pingan.incidents import service as incidents
from pingan.incidents.workflow import CLOCK
from tasks.delivery import dispatch_released
from tasks.incident import publish_open, publish_timeline
from tasks.names import INCIDENT_CLOCK_FLOW
from tasks.steps import run_steps


def clock_run_name() -> str:
    params = flow_run.parameters or {}
    return f"事故报告时限 #{params.get('incident_id', '?')}"


def sweep_run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    return f"事故报告巡检 {as_of or now().strftime('%Y-%m-%d %H:%M')}"


def log_escalated(escalated: list[int]) -> None:
    get_run_logger().info("escalated incident(s): %s", ", ".join(f"#{i}" for i in escalated) or "none")


@flow(name=INCIDENT_CLOCK_FLOW, flow_run_name=clock_run_name, log_prints=True, timeout_seconds=300)
def incident_clock(
    incident_id: Annotated[int, Field(ge=1)] = ui(..., "事故编号", "pingan incident list 中的编号"),
    as_of: dt.datetime | None = as_of_param("按此时刻检查报告时限（北京时间）；留空＝现在"),
) -> dict:
    """Escalate the missing reports of incident ``incident_id`` (and any other that is due), start
    the dispatcher for them at once, and publish its timeline."""
    as_of = local(as_of) if as_of else now()
    with session_scope(get_engine(get_runtime().settings.db_url)) as session:
        found = incidents.exists(session, incident_id)
    if not found:  # fail before any task (and its retries) runs
        raise ValueError(f"no incident #{incident_id}")
    escalated = run_steps(CLOCK, as_of=as_of)["escalate"]["incidents"]
    log_escalated(escalated)
    started = dispatch_released(as_of, f"incident-{incident_id}")
    state = publish_timeline(incident_id, as_of)
    return {"incident": incident_id, "as_of": as_of.isoformat(), "escalated": escalated,
            "released": started["released"], **state}


@flow(name="incident-sweep", flow_run_name=sweep_run_name, log_prints=True, timeout_seconds=240)
def incident_sweep(as_of: dt.datetime | None = as_of_param("按此时刻检查全部未结事故（北京时间）；留空＝现在")) -> dict:
    """Evaluate every open incident: escalate what is due (the dispatcher sends it at once), publish
    the open incidents and the timelines of those escalated now."""
    as_of = local(as_of) if as_of else now()
    escalated = run_steps(CLOCK, as_of=as_of)["escalate"]["incidents"]
    log_escalated(escalated)
    started = dispatch_released(as_of, "incident-sweep")
    for incident_id in escalated:
        publish_timeline(incident_id, as_of)
    still = publish_open(as_of)
    return {"as_of": as_of.isoformat(), "escalated": escalated, "open": still["open"], "released": started["released"]}
