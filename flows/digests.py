"""Digests: a weekly one to each bureau leader for the units they answer for (包保 / 分管) and
their own duties, and a summary to the safety section each working-day evening.

Each runs its workflow (``pingan.reports.workflow.WEEKLY`` / ``DAILY``: one announcement notice
per person, deduplicated per ISO week or day, so a re-run queues nothing twice), released at
once, and starts the dispatcher: two Prefect task runs.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.params import as_of_param
from pingan.core.clock import local, now
from pingan.reports.workflow import DAILY, WEEKLY
from tasks.delivery import dispatch_released
from tasks.steps import run_steps


def _as_of() -> dt.datetime:
    as_of = (flow_run.parameters or {}).get("as_of")
    if isinstance(as_of, str):
        as_of = dt.datetime.fromisoformat(as_of)
    return local(as_of) if as_of else now()


def log(result: dict) -> None:
    get_run_logger().info("%s digest %s: queued %s for %s person(s)%s", result["kind"], result["key"], result["queued"],
                          len(result["recipients"]), f" ({result['skipped']})" if result["skipped"] else "")


def weekly_name() -> str:
    iso = _as_of().isocalendar()
    return f"每周安全工作简报 {iso.year}-W{iso.week:02d}"


def daily_name() -> str:
    return f"每日安全工作小结 {_as_of():%Y-%m-%d}"


@flow(name="weekly-digest", flow_run_name=weekly_name, log_prints=True, retries=0, timeout_seconds=1800)
def weekly_digest(as_of: dt.datetime | None = as_of_param("按此时刻编写并发送每周简报（北京时间）；留空＝现在")) -> dict:
    """Queue this week's digest to every leader with something to report, and start the dispatcher."""
    as_of = local(as_of) if as_of else now()
    queued = run_steps(WEEKLY, as_of=as_of)["queue-weekly-digests"]
    log(queued)
    started = dispatch_released(as_of, "weekly-digest")
    return {**queued, "dispatch_run": started["dispatch_run"]}


@flow(name="daily-summary", flow_run_name=daily_name, log_prints=True, retries=0, timeout_seconds=1800)
def daily_summary(as_of: dt.datetime | None = as_of_param("按此时刻编写并发送当日小结（北京时间）；留空＝现在")) -> dict:
    """Queue today's summary to the safety section (skipped on days off), and start the dispatcher."""
    as_of = local(as_of) if as_of else now()
    queued = run_steps(DAILY, as_of=as_of)["queue-daily-summary"]
    log(queued)
    started = dispatch_released(as_of, "daily-summary")
    return {**queued, "dispatch_run": started["dispatch_run"]}
