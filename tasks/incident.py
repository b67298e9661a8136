"""Prefect side of the incident clock beyond its workflow step: the artifacts the operator reads,
and the scheduling of follow-up runs of the ``incident-clock`` deployment."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.names import INCIDENT_CLOCK_DEPLOYMENT
from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime
from pingan.incidents import service as incidents
from pingan.incidents import views
from tasks.steps import RETRY

log = logging.getLogger("pingan.incidents")

Runner = Callable[..., object]


@task(name="publish-timeline", **RETRY)
def publish_timeline(incident_id: int, as_of: dt.datetime) -> dict:
    """The incident's timeline (occurred, reports, escalations) as a markdown and a table artifact."""
    rt = get_runtime()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        found = views.load_views(session, rt, [incident_id])
    if not found:
        raise ValueError(f"no incident #{incident_id}")
    view = found[0]
    create_markdown_artifact(views.timeline_markdown(rt, view, as_of), key=f"incident-{incident_id}-timeline",
                             description=f"事故 #{incident_id} {view.unit} 报告时间线 / report timeline")
    create_table_artifact([e.row() for e in views.timeline(view, as_of)], key=f"incident-{incident_id}-events",
                          description=f"事故 #{incident_id} 事件 / events")
    return {"incident": incident_id, "phone": view.phone.state(as_of), "written": view.written.state(as_of),
            "level": view.level(), "open": view.is_open()}


@task(name="publish-incidents", **RETRY)
def publish_open(as_of: dt.datetime) -> dict:
    """The table of incidents still missing a report."""
    rt = get_runtime()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        found = views.load_views(session, rt, incidents.open_incident_ids(session))
    create_table_artifact(views.open_table(found, as_of), key="incidents-open",
                          description="未结事故（电话或书面报告未到）/ incidents with a report missing")
    return {"open": [v.id for v in found]}


def prefect_configured() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))


def schedule_follow_ups(incident_id: int, times: Sequence[dt.datetime], as_of: dt.datetime, *,
                        runner: Runner | None = None) -> list[dt.datetime]:
    """Schedule a run of the incident-clock deployment at each future ``times``; return those scheduled.

    The scheduler ``pingan.incidents.workflow.follow_up`` takes. Without a Prefect API (and no
    ``runner``) nothing is scheduled: the sweep deployment, or ``pingan incident sweep``,
    evaluates the clock instead. Failures are logged, not raised: the incident is registered
    either way and the sweep catches up.
    """
    future = [when for when in times if when > as_of]
    if not future:
        return []
    if runner is None:
        if not prefect_configured():
            return []
        from prefect.deployments import run_deployment

        def runner(name, **kwargs):
            return run_deployment(name, as_subflow=False, **kwargs)

    done = []
    for when in future:
        try:
            runner(INCIDENT_CLOCK_DEPLOYMENT, parameters={"incident_id": incident_id}, scheduled_time=when, timeout=0,
                   idempotency_key=f"incident-{incident_id}-{when.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S}")
            done.append(when)
        except Exception as exc:  # noqa: BLE001 — the sweep covers a follow-up that could not be scheduled
            log.warning("incident %s: could not schedule the follow-up at %s (%s); the sweep will evaluate it",
                        incident_id, when.isoformat(), type(exc).__name__)
    return done
