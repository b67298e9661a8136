"""The outbox: notices become messages, messages are claimed, sent through Apprise, recorded.

Exactly once in effect, after healthchecks' ``sendalerts``:

1. ``compose`` claims unsent notices with a conditional update (``batch IS NULL``) and writes
   one message per person (a digest) in the same transaction — two dispatchers never take the
   same notice;
2. ``send`` recovers messages a crashed run left ``sending`` past their lease, then claims
   ``pending`` ones (``UPDATE … WHERE status='pending' RETURNING``) and commits *before*
   sending, so a message is recorded before it leaves;
3. each message goes through its person's channels in priority order — transient failures are
   retried with backoff, then the next channel is tried — and the outcome is written back
   only by the run holding the claim, with one delivery row per channel tried.

A run killed after step 2 leaves rows ``sending``; the next run past the lease sends them
(at least once rather than never: a reminder must not be lost).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Channel, Delivery, Message, MessageStatus, Notice, Person
from pingan.core.clock import now
from pingan.delivery import transports
from pingan.core.links import hand_in_url
from pingan.core.settings import Settings
from pingan.delivery.messages import Describe, render_item, render_message

N, M = Notice.__table__, Message.__table__


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0
    fallbacks: int = 0  # messages delivered by a channel other than the first
    failures: list[dict] = field(default_factory=list)  # secret-free, for artifacts


def compose(session: Session, settings: Settings, as_of: dt.datetime, *, describe: Describe,
            limit: int = 50_000) -> int:
    """Turn unsent notices into messages (one per person with digests on); return messages made."""
    token = uuid.uuid4().hex
    candidates = sa.select(N.c.id).where(N.c.message_id.is_(None), N.c.batch.is_(None)).order_by(N.c.id).limit(limit)
    claimed = session.execute(
        sa.update(N).where(N.c.id.in_(candidates), N.c.batch.is_(None)).values(batch=token)
        .returning(N.c.id, N.c.person_id, N.c.kind, N.c.occurrence_id, N.c.payload, N.c.urgent)
    ).all()
    if not claimed:
        return 0
    people = {
        r.id: r.name for r in session.execute(
            sa.select(Person.id, Person.name).where(Person.id.in_({c.person_id for c in claimed}))
        )
    }
    key = settings.signing_key
    groups: dict[tuple, list] = defaultdict(list)
    for notice in sorted(claimed, key=lambda n: n.id):
        group = (notice.person_id,) if settings.digest else (notice.person_id, notice.id)
        groups[group].append(notice)

    rows, members = [], []
    for group, notices in groups.items():
        person_id = group[0]
        items = []
        for n in notices:
            link = None
            if n.occurrence_id is not None:
                expires = dt.datetime.fromisoformat(n.payload["due"]) + dt.timedelta(days=settings.link_ttl_days)
                link = hand_in_url(settings.base_url, n.occurrence_id, person_id, expires, key)
            items.append((n.kind, render_item(n.kind, n.payload, describe(n.payload.get("duty", "")), link)))
        title, body = render_message(people.get(person_id, ""), items, max_items=settings.digest_max_items)
        rows.append({
            "person_id": person_id, "title": title[:300], "body": body, "status": MessageStatus.pending.value,
            "urgent": any(n.urgent for n in notices), "attempts": 0, "created_at": as_of, "claim_token": token,
        })
        members.append([n.id for n in notices])
    ids = [r.id for r in session.execute(sa.insert(M).returning(M.c.id, sort_by_parameter_order=True), rows)]
    session.execute(
        sa.update(N).where(N.c.id == sa.bindparam("nid")).values(message_id=sa.bindparam("mid")).execution_options(synchronize_session=False),
        [{"nid": nid, "mid": mid} for mid, group in zip(ids, members) for nid in group],
    )
    session.execute(sa.update(M).where(M.c.claim_token == token).values(claim_token=None))
    return len(ids)


# --------------------------------------------------------------------------- sending

@dataclass(frozen=True)
class _Job:
    message_id: int
    title: str
    body: str
    channels: tuple[tuple[int, str], ...]  # (channel id, url) by priority


@dataclass
class _Result:
    message_id: int
    ok: bool = False
    permanent: bool = True
    channel_id: int | None = None
    error: str | None = None
    deliveries: list[dict] = field(default_factory=list)


def _send_one(job: _Job, retries: int, backoff: float, timeout: float) -> _Result:
    result = _Result(job.message_id)
    if not job.channels:
        result.error = "no active channel"
        return result
    any_transient = False
    for channel_id, url in job.channels:
        for attempt in range(retries + 1):
            outcome = transports.deliver(url, job.title, job.body, timeout=timeout)
            result.deliveries.append({
                "message_id": job.message_id, "channel_id": channel_id, "at": now(), "ok": outcome.ok,
                "permanent": outcome.permanent, "error": outcome.error,
            })
            if outcome.ok:
                result.ok, result.permanent, result.channel_id, result.error = True, False, channel_id, None
                return result
            result.error = outcome.error
            if outcome.permanent:
                break
            if attempt < retries:
                time.sleep(backoff * (2**attempt))
        else:
            any_transient = True
    result.permanent = not any_transient
    return result


def recover(session: Session, lease_seconds: int) -> int:
    """Put back messages a crashed run left ``sending`` longer than the lease."""
    stale = now() - dt.timedelta(seconds=lease_seconds)
    rows = session.execute(
        sa.update(M).where(M.c.status == MessageStatus.sending.value, M.c.claimed_at < stale)
        .values(status=MessageStatus.pending.value, claim_token=None).returning(M.c.id)
    ).all()
    if rows:
        session.execute(sa.insert(Audit.__table__), [
            {"at": now(), "actor": "system", "action": "message.recovered", "object_type": "message",
             "object_id": str(r.id), "detail": {}} for r in rows
        ])
    return len(rows)


def send(
    session_factory: Callable[[], Session], settings: Settings, as_of: dt.datetime, *,
    limit: int = 50_000, progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Claim pending messages, send them concurrently, record the outcome of each."""
    report = SendReport()
    token = uuid.uuid4().hex
    wall = now()
    with session_factory() as session:
        report.recovered = recover(session, settings.send_lease_seconds)
        due = (
            sa.select(M.c.id)
            .where(M.c.status == MessageStatus.pending.value,
                   sa.or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= wall))
            .order_by(M.c.urgent.desc(), M.c.id).limit(limit)
        )
        claimed = session.execute(
            sa.update(M).where(M.c.id.in_(due), M.c.status == MessageStatus.pending.value)
            .values(status=MessageStatus.sending.value, claim_token=token, claimed_at=wall, attempts=M.c.attempts + 1)
            .returning(M.c.id, M.c.person_id, M.c.title, M.c.body, M.c.attempts)
        ).all()
        channels: dict[int, list[tuple[int, str]]] = defaultdict(list)
        if claimed:
            C = Channel.__table__
            query = (
                sa.select(C.c.id, C.c.person_id, C.c.url)
                .where(C.c.person_id.in_({c.person_id for c in claimed}), C.c.active.is_(True))
                .order_by(C.c.person_id, C.c.priority)
            )
            for row in session.execute(query):
                channels[row.person_id].append((row.id, row.url))
        session.commit()  # the claim is durable before anything leaves
    report.claimed = len(claimed)
    if not claimed:
        return report

    attempts = {c.id: c.attempts for c in claimed}
    jobs = [_Job(c.id, c.title, c.body, tuple(channels.get(c.person_id, ()))) for c in claimed]
    results: list[_Result] = []
    with ThreadPoolExecutor(max_workers=min(settings.send_concurrency, len(jobs))) as pool:
        futures = pool.map(lambda j: _send_one(j, settings.send_retries, settings.send_backoff, settings.send_timeout), jobs)
        for done, result in enumerate(futures, 1):
            results.append(result)
            if progress and (done % 200 == 0 or done == len(jobs)):
                progress(done, len(jobs))

    _record(session_factory, results, attempts, token, settings.max_send_attempts, jobs, report)
    return report


def _record(session_factory, results, attempts, token, max_attempts, jobs, report: SendReport) -> None:
    first_channel = {j.message_id: (j.channels[0][0] if j.channels else None) for j in jobs}
    sent, retry, failed, deliveries, audits = [], [], [], [], []
    stamp = now()
    for r in results:
        deliveries.extend(r.deliveries)
        if r.ok:
            sent.append({"mid": r.message_id, "channel": r.channel_id})
            report.fallbacks += r.channel_id != first_channel[r.message_id]
            action = "message.sent"
        elif not r.permanent and attempts[r.message_id] < max_attempts:
            delay = dt.timedelta(minutes=2 ** attempts[r.message_id])
            retry.append({"mid": r.message_id, "next": stamp + delay, "err": r.error})
            action = "message.retrying"
        else:
            failed.append({"mid": r.message_id, "err": r.error})
            report.failures.append({"message": r.message_id, "error": r.error})
            action = "message.failed"
        audits.append({"at": stamp, "actor": "system", "action": action, "object_type": "message",
                       "object_id": str(r.message_id), "detail": {"channel": r.channel_id, "error": r.error,
                                                                    "tries": len(r.deliveries)}})
    mine = sa.and_(M.c.id == sa.bindparam("mid"), M.c.claim_token == token)
    with session_factory() as session:
        if sent:
            session.execute(sa.update(M).where(mine).values(
                status=MessageStatus.sent.value, sent_at=stamp, channel_id=sa.bindparam("channel"), error=None,
                claim_token=None).execution_options(synchronize_session=False), sent)
        if retry:
            session.execute(sa.update(M).where(mine).values(
                status=MessageStatus.pending.value, next_attempt_at=sa.bindparam("next"), error=sa.bindparam("err"),
                claim_token=None).execution_options(synchronize_session=False), retry)
        if failed:
            session.execute(sa.update(M).where(mine).values(
                status=MessageStatus.failed.value, error=sa.bindparam("err"), claim_token=None,
            ).execution_options(synchronize_session=False), failed)
        if deliveries:
            session.execute(sa.insert(Delivery.__table__), deliveries)
        if audits:
            session.execute(sa.insert(Audit.__table__), audits)
        session.commit()
    report.sent, report.retrying, report.failed = len(sent), len(retry), len(failed)
