"""The one dispatcher: composes every released notice into one message per person and sends it.

Scheduled at the digest slots (09:00 and 15:00) and every few minutes as a sweep (retries,
messages a crash left behind, urgent notices whose immediate start failed); started at once by
any flow that queued something urgent. One run at a time: the deployment's concurrency limit
is 1, and two runs that met anyway could not send a message twice (the outbox claims it).
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from pingan.core.clock import local, now
from pingan.core.db import get_engine, session_scope
from pingan.delivery.views import failure_rows, summary_markdown
from pingan.duties.runtime import get_runtime
from tasks.delivery import dispatch
from tasks.names import DISPATCH_DEPLOYMENT_NAME, DISPATCH_FLOW
from tasks.steps import RETRY


def run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    return f"{DISPATCH_DEPLOYMENT_NAME} {as_of or now().strftime('%Y-%m-%d %H:%M')}"


@task(name="publish", timeout_seconds=120, **RETRY)
def publish(as_of: dt.datetime, sent: dict, province: str | None = None) -> None:
    rt = get_runtime(province)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        failures = failure_rows(session, as_of - dt.timedelta(days=1))
    create_markdown_artifact(summary_markdown(as_of, sent), key="outbox-summary",
                             description="发件箱：本次发送 / this dispatch")
    create_table_artifact(failures or [{"消息 message": "—", "错误 error": "无 / none"}], key="outbox-failures",
                          description="发送失败的消息（近一天）/ messages that failed (last day)")


@flow(name=DISPATCH_FLOW, flow_run_name=run_name, log_prints=True, timeout_seconds=1800)
def outbox_dispatch(as_of: dt.datetime | None = None, province: str | None = None) -> dict:
    """Compose the notices released by ``as_of`` (default now) and send every message that is due
    (of ``province``'s shard, on a national installation)."""
    as_of = local(as_of) if as_of else now()
    get_runtime(province)  # an unknown province fails before any task runs
    sent = dispatch(as_of, province)
    publish(as_of, sent, province)
    return sent
