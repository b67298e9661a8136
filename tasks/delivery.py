"""Prefect side of the dispatcher: its steps as task runs, and the urgent start of a dispatch run.

Only the dispatch deployment sends (``flows/dispatch.py``, one run at a time: its deployment's
concurrency limit is 1). Every other flow queues notices; a flow that queued something urgent
— or released at once — starts a dispatch run right away with ``trigger_dispatch``, so it goes
out within a minute, and the scheduled sweeps catch whatever a failed trigger left.
"""

from __future__ import annotations

import datetime as dt
import logging

from prefect import get_run_logger, task

from pingan.core.db import get_engine, session_scope
from pingan.delivery.outbox import waiting
from pingan.delivery.workflow import DISPATCH
from pingan.duties.runtime import get_runtime
from tasks.names import DISPATCH_DEPLOYMENT
from tasks.steps import RETRY, run_steps

log = logging.getLogger("pingan.dispatch")


def dispatch(as_of: dt.datetime, province: str | None = None) -> dict:
    """Inside the dispatch flow: compose and send what is released (one task run); its summary."""
    sent = run_steps(DISPATCH, province=province, as_of=as_of)["deliver"]
    logger = get_run_logger()
    logger.info("composed %s message(s); sent %s, deferred %s, retrying %s, failed %s (recovered %s, possible repeats %s)",
                sent["composed"], sent["sent"], sent["deferred"], sent["retrying"], sent["failed"],
                sent["recovered"], sent["possible_repeats"])
    if sent["failed"]:
        logger.warning("%s message(s) failed permanently: see the failures table", sent["failed"])
    return {**sent, "failures": sent["failures"][:50]}


@task(name="start-dispatch", timeout_seconds=60, **RETRY)
def dispatch_released(as_of: dt.datetime, reason: str) -> dict:
    """After a flow queued notices: start the dispatcher at once when some are released now
    (urgent ones, a holiday watch's, an alert); routine ones wait for their digest slot."""
    rt = get_runtime()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        released = waiting(session, as_of)
    run = trigger_dispatch(as_of, reason=reason) if released else None
    return {"released": released, "dispatch_run": run}


def trigger_dispatch(as_of: dt.datetime, *, reason: str) -> str | None:
    """Start a dispatch run now (idempotent per ``reason`` and minute); the run id, or None when
    it could not be started (the next sweep sends the notices instead)."""
    from prefect.deployments import run_deployment

    key = f"urgent-{reason}-{as_of.astimezone(dt.timezone.utc):%Y%m%dT%H%M}"[:200]
    try:
        run = run_deployment(DISPATCH_DEPLOYMENT, parameters={}, timeout=0, as_subflow=False, idempotency_key=key)
    except Exception as exc:  # noqa: BLE001 — a missing deployment or a busy server: the sweep covers it
        log.warning("could not start the dispatcher (%s): the next sweep sends instead", type(exc).__name__)
        return None
    return str(run.id)
