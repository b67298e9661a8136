"""The outbox sweeper: sends what duty runs left behind (retries due, messages a crash left sending)."""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from pingan.core.clock import now
from pingan.core.clock import local
from tasks.delivery import dispatch


def run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    return f"发送待发消息 {as_of or now().strftime('%Y-%m-%d %H:%M')}"


@flow(name="outbox-dispatch", flow_run_name=run_name, log_prints=True)
def outbox_dispatch(as_of: dt.datetime | None = None) -> dict:
    """Send every message that is due: retries whose backoff has passed and rows left ``sending``."""
    return dispatch(local(as_of) if as_of else now())
