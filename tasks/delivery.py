"""Prefect side of the dispatcher: its steps as task runs, with the sending progress as an artifact."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger

from pingan.delivery.workflow import DISPATCH
from tasks.steps import run_steps


def dispatch(as_of: dt.datetime) -> dict:
    """Inside a flow: compose and send what is waiting (two task runs); the send summary."""
    sent = run_steps(DISPATCH, as_of=as_of)["send"]
    log = get_run_logger()
    log.info("sent %s, retrying %s, failed %s (recovered %s)", sent["sent"], sent["retrying"], sent["failed"],
             sent["recovered"])
    if sent["failed"]:
        log.warning("%s message(s) failed permanently: see the failures table", sent["failed"])
    return {**sent, "failures": sent["failures"][:50]}
