"""What the operator reads of the outbox: a dispatch's summary, the messages that failed, and
the notices a run queued with where each of them stands (waiting, composed, sent, failed)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session

from models import Message, Notice, Person
from pingan.core.i18n import register, t

M, N, P = Message.__table__, Notice.__table__, Person.__table__

register({f"outbox.state.{k}": {"zh-CN": zh, "en": en} for k, (zh, en) in {
    "waiting": ("待发（等待汇总时间）", "waiting for its digest slot"), "pending": ("待发送", "to send"),
    "sending": ("发送中", "sending"), "sent": ("已发送", "sent"), "failed": ("发送失败", "failed"),
}.items()})


def failure_rows(session: Session, since: dt.datetime, limit: int = 50) -> list[dict]:
    """Messages that could not be delivered (secret-free errors), newest first."""
    query = (sa.select(M.c.id, M.c.error, M.c.attempts, P.c.name).join(P, P.c.id == M.c.person_id)
             .where(M.c.status == "failed", M.c.created_at >= since).order_by(M.c.id.desc()).limit(limit))
    return [{"消息 message": r.id, "收件人 person": r.name, "尝试 attempts": r.attempts, "错误 error": r.error or ""}
            for r in session.execute(query)]


def notice_rows(session: Session, duty_key: str, queued_at: dt.datetime, limit: int = 1000) -> list[dict]:
    """The notices of ``duty_key`` queued at ``queued_at`` (one run) and where each stands now."""
    query = (sa.select(N.c.id, N.c.kind, N.c.step, N.c.release_at, N.c.payload, P.c.name, M.c.status, M.c.sent_at)
             .join(P, P.c.id == N.c.person_id).outerjoin(M, M.c.id == N.c.message_id)
             .where(N.c.duty_key == duty_key, N.c.created_at == queued_at).order_by(N.c.id).limit(limit))
    out = []
    for r in session.execute(query):
        state = r.status or "waiting"
        out.append({
            "收件人 person": r.name, "单位 unit": (r.payload or {}).get("unit", ""), "类型 kind": r.kind,
            "步骤 step": r.step, "发送时间 release": f"{r.release_at:%Y-%m-%d %H:%M}",
            "状态 state": f"{t('outbox.state.' + state)} {state}",
            "已发送 sent": f"{r.sent_at:%H:%M:%S}" if r.sent_at else "",
        })
    return out


def summary_markdown(as_of: dt.datetime, sent: dict) -> str:
    lines = [
        f"# 发送待发消息 · {as_of:%Y-%m-%d %H:%M}",
        "",
        f"合成消息 composed **{sent.get('composed', 0)}**，已发送 sent **{sent['sent']}**，"
        f"等待限速时段 deferred (pacing) **{sent['deferred']}**，重试中 retrying **{sent['retrying']}**，"
        f"失败 failed **{sent['failed']}**；改用备用渠道 fallbacks **{sent['fallbacks']}**。",
    ]
    if sent.get("recovered"):
        lines.append(f"\n接管中断的发送 recovered **{sent['recovered']}**（其中可能重复 possible repeats "
                     f"**{sent['possible_repeats']}**：发送中途进程终止，对方可能已收到一次）。")
    return "\n".join(lines)
