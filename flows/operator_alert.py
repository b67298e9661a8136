"""Tell the safety section when a duty run fails or crashes (triggered by a Prefect automation)."""

from __future__ import annotations

import datetime as dt

from prefect import flow

from models import NoticeKind, RoleKind
from pingan.delivery.workflow import dispatch
from pingan.core.clock import now
from pingan.delivery import transports
from pingan.core.db import insert_ignore, session_scope
from pingan.org.snapshot import load_org
from pingan.core.clock import local
from pingan.duties.runtime import get_runtime
from models import Audit, Notice


@flow(name="operator-alert", flow_run_name="运行失败告警 {flow_run_name}", log_prints=True)
def operator_alert(flow_run_id: str, flow_run_name: str = "", state: str = "Failed",
                   as_of: dt.datetime | None = None) -> dict:
    """Notify the safety section (the operator's desk) through the outbox, and the operator's
    own channel (``PINGAN_OPERATOR_CHANNEL``) directly when one is set."""
    rt = get_runtime()
    stamp = local(as_of) if as_of else now()
    with session_scope() as session:
        org = load_org(session)
        bureau = org.bureau
        section = org.safety_section(bureau.id if bureau else None)
        people = org.holders(section.id, RoleKind.principal, RoleKind.staff) if section else []
        text = (f"【系统告警】职责流程运行{('崩溃' if state == 'Crashed' else '失败')}：{flow_run_name or flow_run_id}"
                f"（{state}）。请在 Prefect 界面查看日志并重新运行。")
        rows = [{
            "person_id": pid, "dedupe_key": f"alert:{flow_run_id}", "kind": NoticeKind.announcement.value,
            "occurrence_id": None, "duty_key": None, "step": "alert", "level": None, "urgent": True,
            "payload": {"text": text, "text_en": f"[Alert] duty run {flow_run_name or flow_run_id} ended {state}."},
            "created_at": stamp,
        } for pid in people]
        queued = len(insert_ignore(session, Notice.__table__, rows, ["person_id", "dedupe_key"]))
        session.add(Audit(actor="system", action="run.alerted", object_type="flow_run", object_id=flow_run_id[:64],
                          detail={"state": state, "name": flow_run_name, "recipients": people}))
    report = dispatch(rt, stamp)
    direct = None
    if rt.settings.operator_channel and (queued or not people):
        outcome = transports.deliver(rt.settings.operator_channel, "pingan 告警 / alert", text,
                                     timeout=rt.settings.send_timeout)
        direct = outcome.ok
        print(f"operator channel {transports.mask(rt.settings.operator_channel)}: "
              f"{'sent' if outcome.ok else 'failed: ' + (outcome.error or '')}")
    print(f"alert for {flow_run_name or flow_run_id} ({state}): queued {queued}, sent {report.sent}")
    return {"queued": queued, "sent": report.sent, "operator_channel": direct}
