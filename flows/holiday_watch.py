"""The holiday watch (节假日值班与零报告): duty rosters before each holiday, a report every day of it.

For ``as_of`` (default now) it records the calendar's holiday periods, creates the roster
tasks whose window has opened and the report task of every day of watch so far, counts an
incident registered on a day of watch as that unit's report, and — inside the watch's
sending hours — queues the reminders and escalations that are due (a dead man's switch per
unit and day), sends, and publishes who has reported today. The steps are
``pingan.watch.workflow.WATCH``, one task run each.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.params import as_of_param
from pingan.core.clock import local, now
from pingan.watch.workflow import WATCH
from tasks.delivery import dispatch_released
from tasks.steps import run_steps
from tasks.watch import publish


def run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    return f"节假日值守 {as_of or now().strftime('%Y-%m-%d %H:%M')}"


@flow(name="holiday-watch", flow_run_name=run_name, log_prints=True, timeout_seconds=1800)
def holiday_watch(as_of: dt.datetime | None = as_of_param("按此时刻安排、提醒、督办值班表和零报告（北京时间）；留空＝现在")) -> dict:
    """Plan, remind and escalate the holiday watch at ``as_of`` (default: now) — its notices go out at
    once through the dispatcher, a holiday has no digest morning — and publish who has reported."""
    as_of = local(as_of) if as_of else now()
    steps = run_steps(WATCH, as_of=as_of)
    planned, reminded, escalated = steps["plan"], steps["remind"], steps["escalate"]
    log = get_run_logger()
    log.info("new periods %s, new tasks %s, days reported by an incident %s",
             planned["new_periods"], planned["planned"], planned["linked"])
    if not reminded["in_hours"]:
        log.info("outside the watch's sending hours: reminders and escalations wait for the next run")
    elif reminded["unreachable"]:
        log.warning("%s task(s) have nobody to remind: check roles in the organisation", len(reminded["unreachable"]))
    started = dispatch_released(as_of, "holiday-watch")
    board = publish(as_of)
    return {"as_of": as_of.isoformat(), **planned, "reminders": reminded["queued"], "escalations": escalated["fired"],
            "released": started["released"], "periods": board["periods"], "reports": board["reports"]}
