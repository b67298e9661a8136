"""The steps of a duty cycle as Prefect tasks.

Each task is one bulk database step whatever the number of schools, so a flow run is five
task runs for 10 units or 20,000. No caching: every step is idempotent and cheap to repeat,
and hashing an organisation's worth of inputs would cost more than the step.
"""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from pingan.duties import service
from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime
from pingan.duties.status import failed_messages, tally, task_rows
from pingan.duties.views import artifact_key, status_table, summary_markdown

RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)


@task(name="plan", **RETRY)
def plan(duty: str, as_of: dt.datetime) -> dict:
    created, periods = service.plan_step(get_runtime(), duty, as_of)
    get_run_logger().info("planned %s new task(s) for %s", created, ", ".join(periods) or "no open period")
    return {"created": created, "periods": periods}


@task(name="remind", **RETRY)
def remind(duty: str, as_of: dt.datetime) -> dict:
    rt = get_runtime()
    if not service.in_working_time(rt, as_of):
        get_run_logger().info("outside working time: reminders wait for the next run in working hours")
        return {"queued": 0, "unreachable": [], "working_time": False}
    queued, unreachable = service.remind_step(rt, duty, as_of)
    if unreachable:
        get_run_logger().warning("%s task(s) have nobody to remind: check roles in the organisation", len(unreachable))
    return {"queued": queued, "unreachable": unreachable, "working_time": True}


@task(name="escalate", **RETRY)
def escalate(duty: str, as_of: dt.datetime) -> dict:
    fired = service.escalate_step(get_runtime(), duty, as_of)
    get_run_logger().info("fired %s escalation event(s)", fired)
    return {"fired": fired}


@task(name="dispatch", **RETRY)
def dispatch(as_of: dt.datetime, key: str = "outbox") -> dict:
    """Send what is waiting in the outbox, showing progress as a Prefect artifact."""
    progress_id = create_progress_artifact(0.0, key=f"{key}-progress", description="发送进度 / sending progress")

    def progress(done: int, total: int) -> None:
        update_progress_artifact(progress_id, 100.0 * done / total)

    report = service.dispatch(get_runtime(), as_of, progress=progress)
    update_progress_artifact(progress_id, 100.0)
    log = get_run_logger()
    log.info("sent %s, retrying %s, failed %s (recovered %s)", report.sent, report.retrying, report.failed, report.recovered)
    if report.failed:
        log.warning("%s message(s) failed permanently: see the failures table", report.failed)
    return {"sent": report.sent, "retrying": report.retrying, "failed": report.failed,
            "recovered": report.recovered, "fallbacks": report.fallbacks, "failures": report.failures[:50]}


@task(name="publish", **RETRY)
def publish(duty: str, as_of: dt.datetime, planned: dict, reminded: dict, escalated: dict, sent: dict) -> dict:
    rt = get_runtime()
    spec = rt.catalog.duty(duty)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        rows = task_rows(session, duty, as_of, planned["periods"] or None)
        failures = failed_messages(session, as_of - dt.timedelta(days=1))
    counts = tally(rows)
    create_table_artifact(status_table(rows), key=artifact_key(duty, "status"),
                          description=f"{spec.name}：各单位任务状态 / state per unit")
    create_markdown_artifact(
        summary_markdown(rt, spec, as_of, planned, reminded, escalated, sent, counts, failures),
        key=artifact_key(duty, "summary"), description=f"{spec.name}（{spec.source.clause}）",
    )
    return counts
