"""The outbox sweeper: sends what duty runs left behind (retries due, messages a crash left sending)."""

from __future__ import annotations

import datetime as dt

from prefect import flow

from models import now
from pingan.periods import local
from tasks.duty import dispatch


@flow(name="outbox-dispatch", flow_run_name="发送待发消息 {as_of}", log_prints=True)
def outbox_dispatch(as_of: dt.datetime | None = None) -> dict:
    """Send every message that is due: retries whose backoff has passed and rows left ``sending``."""
    return dispatch(local(as_of) if as_of else now(), key="outbox")
