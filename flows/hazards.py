"""The daily hazard watch (双重预防): the hazard closed loop and the risk-point checks.

For an instant ``as_of`` (default now) it runs the steps of ``pingan.hazards.workflow.WATCH``:
advance — take platform upload references from the half-monthly check evidence, plan the
risk-point checks whose periods are open, mark hazards that passed their deadline — then, in
working time, remind (rectifiers before the deadline, risk-point owners, checks not yet uploaded
to the supervision platform) and escalate (overdue hazards, missed checks) up the chain. Its
notices wait for the dispatcher's digest, but for a major hazard's, which start it at once. It
publishes open hazards by level and age per unit, risk checks per unit and level, risk points in
warning, platform uploads. A handful of Prefect task runs, whatever the number of schools.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.params import as_of_param
from pingan.core.clock import local, now
from pingan.hazards.workflow import WATCH
from tasks.delivery import dispatch_released
from tasks.hazard import publish
from tasks.steps import run_steps


def run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    if isinstance(as_of, str):
        as_of = dt.datetime.fromisoformat(as_of)
    return f"隐患排查治理 {(local(as_of) if as_of else now()):%Y-%m-%d}"


@flow(name="hazard-watch", flow_run_name=run_name, log_prints=True, retries=0, timeout_seconds=1800)
def hazard_watch(as_of: dt.datetime | None = as_of_param("按此时刻检查隐患期限与风险点巡查（北京时间）；留空＝现在")) -> dict:
    """Advance deadlines, remind, escalate and publish the hazard loop at ``as_of`` (default: now)."""
    as_of = local(as_of) if as_of else now()
    steps = run_steps(WATCH, as_of=as_of)
    advanced, reminded, escalated = steps["advance"], steps["remind"], steps["escalate"]
    log = get_run_logger()
    log.info("uploads synced %(uploads_synced)s, risk checks planned %(checks_planned)s, newly overdue %(overdue_marked)s",
             advanced)
    if reminded["working_time"]:
        log.info("queued: hazards %(hazard_reminders)s, risk checks %(check_reminders)s, uploads %(upload_reminders)s", reminded)
        log.info("fired: hazards %(hazard_escalations)s, risk checks %(check_escalations)s", escalated)
    else:
        log.info("outside working time: reminders wait for the next run in working hours")
    started = dispatch_released(as_of, "hazard-watch")
    run = {**advanced, **reminded, **escalated, "released": started["released"]}
    published = publish(as_of, run)
    return {
        "as_of": as_of.isoformat(), "checks": advanced["checks_planned"], "overdue": advanced["overdue_marked"],
        "reminders": reminded["hazard_reminders"] + reminded["check_reminders"],
        "uploads": reminded["upload_reminders"],
        "escalations": escalated["hazard_escalations"] + escalated["check_escalations"],
        "released_now": started["released"], **published,
    }
