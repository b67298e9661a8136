"""The incident clock's steps as Prefect tasks: one bulk step each, whatever the number of incidents."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from pingan.incidents import service as incidents
from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime

RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)


@task(name="escalate-incidents", **RETRY)
def escalate(as_of: dt.datetime) -> dict:
    """Fire every due escalation of a missing report (all open incidents: one query each way)."""
    escalated = incidents.clock(get_runtime(), as_of)
    get_run_logger().info("escalated incident(s): %s", ", ".join(f"#{i}" for i in escalated) or "none")
    return {"incidents": escalated}


@task(name="publish-timeline", **RETRY)
def publish_timeline(incident_id: int, as_of: dt.datetime) -> dict:
    """The incident's timeline (occurred, reports, escalations) as a markdown and a table artifact."""
    rt = get_runtime()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        views = incidents.load_views(session, rt, [incident_id])
    if not views:
        raise ValueError(f"no incident #{incident_id}")
    view = views[0]
    create_markdown_artifact(incidents.timeline_markdown(rt, view, as_of), key=f"incident-{incident_id}-timeline",
                             description=f"事故 #{incident_id} {view.unit} 报告时间线 / report timeline")
    create_table_artifact([e.row() for e in incidents.timeline(view, as_of)], key=f"incident-{incident_id}-events",
                          description=f"事故 #{incident_id} 事件 / events")
    return {"incident": incident_id, "phone": view.phone.state(as_of), "written": view.written.state(as_of),
            "level": view.level(), "open": view.is_open()}


@task(name="publish-incidents", **RETRY)
def publish_open(as_of: dt.datetime) -> dict:
    """The table of incidents still missing a report."""
    rt = get_runtime()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        views = incidents.load_views(session, rt, incidents.open_incident_ids(session))
    create_table_artifact(incidents.open_table(views, as_of), key="incidents-open",
                          description="未结事故（电话或书面报告未到）/ incidents with a report missing")
    return {"open": [v.id for v in views]}
