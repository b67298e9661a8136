"""The holiday watch's steps as Prefect tasks: one bulk step each, whatever the number of schools."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from pingan.watch import service as watch
from pingan.duties.runtime import get_runtime

RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)


@task(name="plan-watch", **RETRY)
def plan(as_of: dt.datetime) -> dict:
    """Record the calendar's holiday periods, create open roster and report tasks, link incidents."""
    result = watch.in_session(get_runtime(), lambda s, org: watch.plan(s, get_runtime(), org, as_of))
    get_run_logger().info("new periods %s, new tasks %s, days reported by an incident %s",
                          result.new_periods, result.planned, result.linked)
    return {"new_periods": result.new_periods, "planned": result.planned, "linked": result.linked}


@task(name="remind-watch", **RETRY)
def remind(as_of: dt.datetime) -> dict:
    rt = get_runtime()
    if not watch.load_rules(rt).contains(as_of):
        get_run_logger().info("outside the watch's sending hours: reminders wait for the next run")
        return {"queued": 0, "unreachable": [], "in_hours": False}
    queued, unreachable = watch.in_session(rt, lambda s, org: watch.remind(s, rt, org, as_of))
    if unreachable:
        get_run_logger().warning("%s task(s) have nobody to remind: check roles in the organisation", len(unreachable))
    return {"queued": queued, "unreachable": unreachable, "in_hours": True}


@task(name="escalate-watch", **RETRY)
def escalate(as_of: dt.datetime) -> dict:
    rt = get_runtime()
    if not watch.load_rules(rt).contains(as_of):
        return {"fired": 0, "in_hours": False}
    fired = watch.in_session(rt, lambda s, org: watch.escalate(s, rt, org, as_of))
    get_run_logger().info("fired %s escalation event(s)", fired)
    return {"fired": fired, "in_hours": True}


@task(name="publish-watch", **RETRY)
def publish(as_of: dt.datetime) -> dict:
    """Who has filed the roster and reported today: a table and a summary, one artifact key per day."""
    rt = get_runtime()
    day = as_of.date()
    periods, rows = watch.in_session(rt, lambda s, org: watch.board(s, rt, org, day, as_of))
    key = f"holiday-watch-{day:%Y-%m-%d}"
    create_table_artifact(watch.board_table(rows), key=key, description=f"{day:%Y-%m-%d} 各单位值班与零报告 / who has reported")
    create_markdown_artifact(watch.board_markdown(day, periods, rows, as_of, watch.source_line(rt)), key=f"{key}-summary",
                             description=f"节假日值守 {day:%Y-%m-%d} / holiday watch")
    return {"periods": [p.key for p in periods], "reports": {r.unit_code: r.report for r in rows}}
