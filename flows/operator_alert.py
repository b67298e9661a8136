"""Tell the safety desk when a pingan run fails, crashes or times out (the alert deployment's trigger).

The desk's people get an urgent notice through the outbox, and the dispatcher is started at
once. The operator's own channel (``PINGAN_OPERATOR_CHANNEL``) is called directly as well: it
is the alarm that must get through even when what failed is the dispatcher itself.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, task

from pingan.core.clock import local, now
from pingan.delivery import transports
from pingan.duties.runtime import get_runtime
from pingan.duties.service import alert_operators
from tasks.delivery import trigger_dispatch
from tasks.steps import RETRY


@task(name="alert-desk", timeout_seconds=120, **RETRY)
def alert_desk(flow_run_id: str, name: str, state: str, as_of: dt.datetime) -> dict:
    return alert_operators(get_runtime(), flow_run_id=flow_run_id, name=name, state=state, as_of=as_of)


@flow(name="operator-alert", flow_run_name="运行失败告警 {flow_run_name}", log_prints=True, timeout_seconds=300)
def operator_alert(flow_run_id: str, flow_run_name: str = "", state: str = "Failed",
                   as_of: dt.datetime | None = None) -> dict:
    """Notify the safety desk through the outbox (urgent), and the operator's own channel directly."""
    rt = get_runtime()
    stamp = local(as_of) if as_of else now()
    queued = alert_desk(flow_run_id, flow_run_name, state, stamp)
    if queued["queued"]:
        trigger_dispatch(stamp, reason=f"alert-{flow_run_id}")
    direct = None
    if rt.settings.operator_channel and (queued["queued"] or not queued["recipients"]):
        outcome = transports.deliver(rt.settings.operator_channel, "pingan 告警 / alert", queued["text"],
                                     timeout=rt.settings.send_timeout)
        direct = outcome.ok
        print(f"operator channel {transports.mask(rt.settings.operator_channel)}: "
              f"{'sent' if outcome.ok else 'failed: ' + (outcome.error or '')}")
    print(f"alert for {flow_run_name or flow_run_id} ({state}): queued {queued['queued']}")
    return {"queued": queued["queued"], "operator_channel": direct}
