"""The duty domain's data functions every caller shares: the catalog in the database, counts,
starting a sensitive period."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Escalation, Message, Notice, NoticeKind, Occurrence
from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.core.i18n import both, register
from pingan.delivery import notices
from pingan.duties.cycle import sync_catalog
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import load_org


_SYNCED: set[tuple[str, int]] = set()


def ensure_catalog(rt: Runtime) -> None:
    """Write the catalog into the ``duty`` table once per process and database (tasks refer to it)."""
    mark = (rt.settings.db_url, id(rt.catalog))
    if mark not in _SYNCED:
        with session_scope(get_engine(rt.settings.db_url)) as session:
            sync_catalog(session, rt.catalog)
        _SYNCED.add(mark)


def counts(session: Session, duty_key: str | None = None) -> dict[str, int]:
    """Row counts of the cycle's tables (optionally for one duty), for summaries and tests."""
    O, N, E, M = Occurrence.__table__, Notice.__table__, Escalation.__table__, Message.__table__
    o_where = [O.c.duty_key == duty_key] if duty_key else []
    n_where = [N.c.duty_key == duty_key] if duty_key else []
    out = {
        "tasks": session.scalar(sa.select(sa.func.count()).select_from(O).where(*o_where)),
        "reminders": session.scalar(sa.select(sa.func.count()).select_from(N).where(N.c.kind == "reminder", *n_where)),
        "escalation_notices": session.scalar(sa.select(sa.func.count()).select_from(N).where(N.c.kind == "escalation", *n_where)),
        "escalations": session.scalar(
            sa.select(sa.func.count()).select_from(E.join(O, O.c.id == E.c.occurrence_id)).where(*o_where)),
    }
    out.update(Counter(dict(session.execute(sa.select(M.c.status, sa.func.count()).group_by(M.c.status)).all())))
    return out


def start_sensitive_period(rt: Runtime, req, as_of: dt.datetime, *, actor: str) -> dict:
    """Record a sensitive period, plan its tighter tasks now and queue its announcement (released
    at once: the caller starts the dispatcher)."""
    from pingan.duties import sensitive

    as_of = local(as_of)
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        period_id, created = sensitive.start(session, rt, req, actor=actor)
        org = load_org(session)
        planned = {}
        if req.starts_on <= as_of.date() <= req.ends_on:
            for key in session.execute(sa.select(sensitive.S.c.duties).where(sensitive.S.c.id == period_id)).scalar_one():
                planned[key] = sensitive.plan_tighter(session, rt, rt.catalog.duty(key), org, as_of)
        announced = sensitive.announce(session, rt, period_id, org, as_of)
    return {"id": period_id, "created": created, "planned": planned, "announced": announced}


register({"alert.text": {
    "zh-CN": "【系统告警】职责流程运行{what}：{name}（{state}）。请在 Prefect 界面查看日志并重新运行。",
    "en": "[Alert] duty run {name} ended {state}: see its logs in the Prefect UI and run it again.",
}, "alert.crashed": {"zh-CN": "崩溃", "en": "crashed"}, "alert.failed": {"zh-CN": "失败", "en": "failed"}})


def alert_operators(rt: Runtime, *, flow_run_id: str, name: str, state: str, as_of: dt.datetime) -> dict:
    """Tell the safety desk that a run failed, crashed or timed out: an urgent notice each (once
    per run), and an audit row. Returns {"queued", "recipients", "text"}."""
    what = both("alert.crashed" if state == "Crashed" else "alert.failed")
    zh, en = both("alert.text", what=what[0], name=name or flow_run_id, state=state)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        people = load_org(session).safety_desk()
        queued = notices.queue(session, [
            notices.notice(pid, f"alert:{flow_run_id}", NoticeKind.announcement, "alert", {"text": zh, "text_en": en},
                           as_of, urgent=True) for pid in people])
        session.add(Audit(at=as_of, actor="system", action="run.alerted", object_type="flow_run",
                          object_id=flow_run_id[:64], detail={"state": state, "name": name, "recipients": people}))
    return {"queued": queued, "recipients": people, "text": zh}
