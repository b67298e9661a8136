"""The outbox: released notices become one message per person; messages are claimed, sent
through Apprise and every call is recorded as it happens.

After healthchecks' ``sendalerts``, with one difference: a message a crash left behind is sent
again rather than dropped (a reminder must not be lost), and only what was in flight at the
crash can reach a person twice.

1. ``compose`` reads a batch of persons' released notices and renders their messages outside
   any write, then claims exactly those notices with a conditional update (``batch IS NULL``)
   and writes one message per person in the same transaction: two dispatchers never take the
   same notice, and a batch that changed meanwhile is read again.
2. ``send`` claims due messages (``UPDATE … WHERE status = 'pending' RETURNING``) and commits
   before anything leaves. While it runs, a heartbeat renews the claim (``claimed_at``) every
   few seconds; ``recover`` takes back only claims nobody renewed for ``send_lease_seconds``
   (60): a live dispatcher, however slow, never loses its messages.
3. Each call to a channel — each SMS number — is a ``delivery`` row inserted *before* the call,
   only while the message is still claimed by this run's token (a dispatcher that lost its
   claim sends nothing more), and completed as soon as the call returns, in the transaction
   that marks the message sent. After a crash, the calls whose row is still open were in
   flight: ``recover`` marks them interrupted and the message a possible repeat; parts already
   delivered (an SMS number that got it) are never called again.
4. Channels are tried in priority order; transient failures are retried with backoff, then the
   next channel is tried; a message that no channel took is retried later with a growing
   delay, up to ``max_send_attempts``.
5. Each destination is paced at its documented rate (``pingan.delivery.limits``); a message
   beyond it waits for its slot — the run lingers for slots due within ``send_linger`` seconds,
   later ones go to the next run — it is never failed or dropped for it.
6. ``deliver`` composes in one thread while the senders send each batch as it is committed.
   ``deliver_all``: when many persons have something waiting, several processes do so at
   once, each the persons of its lane (person id modulo the count) at its share of every
   paced destination's rate (``Limit.share``): together they keep within each rate.

Why this module is long: it is the one place where sending, its durability and its pacing
meet, and each of those steps only makes sense beside the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Channel, Delivery, Message, MessageStatus, Notice, Person, PersonLink
from pingan.core.clock import now
from pingan.core.db import GroupCommit, WriterTurn, get_engine, insert_ids
from pingan.core.links import hand_in_url, page_url
from pingan.core.settings import Settings
from pingan.delivery import transports
from pingan.delivery.limits import fit, limit_for
from pingan.delivery.messages import Describe, DutyText, render_item, render_message, render_summary
from pingan.delivery.pacing import Pacer, destination

N, M, D, A, C = Notice.__table__, Message.__table__, Delivery.__table__, Audit.__table__, Channel.__table__
INTERRUPTED = "interrupted: the dispatcher stopped during the call"
# A sending thread waits this long at most for its destination's slot (a per-second limit);
# a later slot defers the message, and the run lingers for it (``send_linger``).
MAX_SLEEP = 1.0


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    deferred: int = 0  # waiting for their destination's next slot (pacing)
    failed: int = 0
    recovered: int = 0
    possible_repeats: int = 0
    fallbacks: int = 0  # messages delivered by a channel other than the first
    failures: list[dict] = field(default_factory=list)  # secret-free, for artifacts
    processes: int = 1  # the processes that composed and sent (``deliver_all``'s lanes)
    composed: int = 0  # messages made from the notices released


# --------------------------------------------------------------------------- compose

def _released(as_of: dt.datetime) -> sa.ColumnElement[bool]:
    """Notices released by ``as_of`` and not yet in a message."""
    return sa.and_(N.c.message_id.is_(None), N.c.release_at <= as_of)


class _Changed(Exception):
    """The notices of a batch changed between its read and its claim: the claim is rolled back."""


# Optimistic batches tried before one is composed inside its write transaction (``compose``).
_OPTIMISTIC_TRIES = 3


def compose(engine: sa.Engine, settings: Settings, as_of: dt.datetime, *, describe: Describe,
            persons: int = 2_000, lane: int = 0, lanes: int = 1) -> int:
    """One message per person for the notices released by ``as_of``, for up to ``persons``
    persons (all their waiting notices: a person's notices are never split across two messages
    by a batch boundary) of ``lane`` (person id modulo ``lanes``); return messages made. Call
    again until it returns 0.

    The batch is read and rendered outside any write, so the dispatcher's other writers (its
    senders, another lane's composer) are not held up while Python renders: the write claims
    the notices read (``batch IS NULL``) and goes on only if it claimed exactly those — a notice
    released meanwhile or taken by another dispatcher rolls it back, and the batch is read
    again. After ``_OPTIMISTIC_TRIES`` such rollbacks the batch is claimed first and rendered
    inside its transaction, as two dispatchers never take the same notice either way.
    """
    batch = _Batch(settings, as_of, describe, persons, lane, lanes)
    turn = WriterTurn.of(engine)
    try:
        for _ in range(_OPTIMISTIC_TRIES):
            with engine.connect() as conn:
                found = batch.read(conn)
            if found is None:
                return 0
            rows = batch.render(found)
            try:
                with turn, engine.begin() as conn:
                    batch.claim(conn, found)
                    return batch.write(conn, found, rows)
            except _Changed:
                continue
        with turn, engine.begin() as conn:  # claimed first: nobody can change it while it renders
            found = batch.read(conn, claim=True)
            return 0 if found is None else batch.write(conn, found, batch.render(found))
    finally:
        turn.close()


@dataclass
class _Found:
    """A batch as read: its persons' range, their waiting notices, names and link versions."""

    first: int
    last: int
    notices: list
    people: dict[int, str]
    versions: dict[int, int]


@dataclass
class _Batch:
    settings: Settings
    as_of: dt.datetime
    describe: Describe
    persons: int
    lane: int
    lanes: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    texts: dict[str, DutyText | None] = field(default_factory=dict)  # describe() once per duty

    def _waiting(self) -> sa.ColumnElement[bool]:
        released = _released(self.as_of)
        return sa.and_(released, N.c.person_id % self.lanes == self.lane) if self.lanes > 1 else released

    def _open(self, first: int, last: int) -> sa.ColumnElement[bool]:
        """The waiting notices of this lane's persons from ``first`` to ``last`` that no batch holds."""
        return sa.and_(N.c.person_id.between(first, last), self._waiting(), N.c.batch.is_(None))

    def read(self, conn: sa.Connection, *, claim: bool = False) -> _Found | None:
        # Read from ``ix_notice_waiting`` alone, in person order: a batch reads its own persons'
        # notices, never the whole queue (``batch`` is set with ``message_id``, in one transaction).
        who = conn.scalars(sa.select(N.c.person_id).where(self._waiting()).group_by(N.c.person_id)
                           .order_by(N.c.person_id).limit(self.persons)).all()
        if not who:
            return None
        # The batch is the waiting notices of the persons from the first to the last of ``who``:
        # being the first persons in id order with a waiting notice, no other person between
        # them has one. A range, not a subquery or a list: right after a morning's inserts
        # PostgreSQL's statistics still say the table is empty, and it ran the subquery once per
        # notice (minutes at 20,000 schools) or matched every notice against the whole list.
        mine = self._open(who[0], who[-1])
        columns = (N.c.id, N.c.person_id, N.c.kind, N.c.occurrence_id, N.c.payload, N.c.urgent)
        if claim:
            notices = conn.execute(sa.update(N).where(mine).values(batch=self.token).returning(*columns)).all()
        else:
            notices = conn.execute(sa.select(*columns).where(mine)).all()
        if not notices:
            return None
        ids = {n.person_id for n in notices}
        people = dict(conn.execute(sa.select(Person.id, Person.name).where(Person.id.in_(ids))).tuples().all())
        versions = dict(conn.execute(  # each person's link version: their page link in every message
            sa.select(PersonLink.person_id, PersonLink.version).where(PersonLink.person_id.in_(ids))).tuples().all())
        return _Found(who[0], who[-1], notices, people, versions)

    def claim(self, conn: sa.Connection, found: _Found) -> None:
        """Claim the notices read, or raise ``_Changed`` (the caller's transaction rolls back)."""
        claimed = conn.execute(sa.update(N).where(self._open(found.first, found.last))
                               .values(batch=self.token).returning(N.c.id)).scalars().all()
        if set(claimed) != {n.id for n in found.notices}:
            raise _Changed

    def render(self, found: _Found) -> list[tuple[list, dict]]:
        """Each message of the batch with the notices it carries: [(notices, message row)]."""
        settings, as_of, key = self.settings, self.as_of, self.settings.signing_key
        groups: dict[tuple, list] = defaultdict(list)
        for notice in sorted(found.notices, key=lambda n: n.id):
            groups[(notice.person_id,) if settings.digest else (notice.person_id, notice.id)].append(notice)
        out, expiry = [], {}  # a link expires link_ttl_days after its deadline; a few dozen deadlines a batch
        for group, notices in groups.items():
            person_id, name = group[0], found.people.get(group[0], "")
            items = []
            for i, n in enumerate(one_per_task(notices)):
                if i >= settings.digest_max_items:
                    # Beyond the items the message lists only the count is used: a leader
                    # escalated for thousands of schools costs a dozen paragraphs, not thousands.
                    items.append((n.kind, ""))
                    continue
                link = None
                if n.occurrence_id is not None:
                    due = n.payload["due"]
                    if due not in expiry:
                        expiry[due] = dt.datetime.fromisoformat(due) + dt.timedelta(days=settings.link_ttl_days)
                    link = hand_in_url(settings.base_url, n.occurrence_id, person_id, expiry[due], key)
                duty = n.payload.get("duty", "")
                if duty not in self.texts:
                    self.texts[duty] = self.describe(duty)
                items.append((n.kind, render_item(n.kind, n.payload, self.texts[duty], link, as_of=as_of)))
            page = page_url(settings.base_url, person_id, found.versions.get(person_id, 0), key)
            lead = f"{page}/lead" if any(n.kind == "escalation" for n in notices) else None
            title, body = render_message(name, items, max_items=settings.digest_max_items, page=page, lead=lead)
            out.append((notices, {
                "person_id": person_id, "title": title[:300], "body": body,
                "summary": render_summary(name, items, page),
                "status": MessageStatus.pending.value, "urgent": any(n.urgent for n in notices), "attempts": 0,
                "created_at": as_of, "claim_token": self.token,
            }))
        return out

    def write(self, conn: sa.Connection, found: _Found, rendered: list[tuple[list, dict]]) -> int:
        """Insert the messages of the claimed batch and link each notice to its message."""
        token = self.token
        ids = insert_ids(conn, M, [row for _, row in rendered])
        # Each notice to its message; no statement here reads the history of messages. A digest
        # is one message per person: one UPDATE finds the batch's notices by the person range of
        # ``ix_notice_waiting`` and each one's message by (claim, person) in ``ix_message_claim``
        # (a correlated subquery: as a join, SQLite walked the claim's messages by the person
        # range for every notice). Without the digest, each notice by primary key. (An UPDATE …
        # FROM (VALUES …) of 5,000 notices a statement was tried on PostgreSQL: slower than the
        # executemany, 49 s against 38 s.)
        if self.settings.digest:
            message = sa.select(M.c.id).where(M.c.claim_token == token, M.c.person_id == N.c.person_id).scalar_subquery()
            conn.execute(
                sa.update(N).where(N.c.message_id.is_(None), N.c.person_id.between(found.first, found.last),
                                   N.c.batch == token).values(message_id=message))
        else:
            conn.execute(
                sa.update(N).where(N.c.id == sa.bindparam("nid")).values(message_id=sa.bindparam("mid")),
                [{"nid": n.id, "mid": mid} for mid, (notices, _) in zip(ids, rendered) for n in notices])
        conn.execute(sa.update(M).where(M.c.claim_token == token).values(claim_token=None))
        return len(ids)


def one_per_task(notices: list) -> list:
    """A person's notices with one item per task and kind, the strongest kept (every notice still
    belongs to the message). Escalation events of one task that fall due together — after a
    holiday, a level and the repeat of it that came due meanwhile; two levels that reach the same
    leader — would otherwise list the same task twice; so would two reminder steps queued by runs
    before one digest slot. Kept: the highest level and repeat, else the latest notice."""
    best: dict[tuple[int, str], object] = {}
    rest = []
    for n in notices:
        if n.occurrence_id is None:
            rest.append(n)
            continue
        key = (n.occurrence_id, n.kind)
        if key not in best or _strength(n) > _strength(best[key]):
            best[key] = n
    return sorted([*rest, *best.values()], key=lambda n: n.id)


def _strength(notice) -> tuple[int, int, int]:
    payload = notice.payload or {}
    return (payload.get("level") or 0, payload.get("seq") or 0, notice.id)


def next_release(session: Session, as_of: dt.datetime) -> dt.datetime | None:
    """When a dispatch run next has work: ``as_of`` while a message waits to be sent (its retry
    time is the wall clock's), else the earliest release of a notice not yet composed; None
    when nothing waits. ``pingan replay`` skips the dispatcher's sweeps before it."""
    if session.scalar(sa.select(M.c.id).where(
            M.c.status.in_((MessageStatus.pending.value, MessageStatus.sending.value))).limit(1)) is not None:
        return as_of
    return session.scalar(sa.select(sa.func.min(N.c.release_at)).where(N.c.message_id.is_(None)))


def waiting(session: Session, as_of: dt.datetime) -> int:
    """Notices released by ``as_of`` and not yet in a message: what a dispatch run would compose now."""
    return session.scalar(sa.select(sa.func.count()).select_from(N).where(_released(as_of))) or 0


# --------------------------------------------------------------------------- recovery

def recover(session: Session, lease_seconds: int, *, wall: dt.datetime | None = None) -> tuple[int, int]:
    """Take back the claims nobody renewed for ``lease_seconds``: (messages, possible repeats).

    Their calls still open were in flight when the holder stopped: marked interrupted, and
    the message becomes a possible repeat; it goes back to ``pending`` to be sent again.
    """
    wall = wall or now()
    stale = wall - dt.timedelta(seconds=lease_seconds)
    rows = session.execute(
        sa.update(M).where(M.c.status == MessageStatus.sending.value, M.c.claimed_at < stale)
        .values(status=MessageStatus.pending.value, claim_token=None, next_attempt_at=None).returning(M.c.id)
    ).scalars().all()
    if not rows:
        return 0, 0
    open_calls = session.execute(
        sa.update(D).where(D.c.message_id.in_(rows), D.c.ok.is_(None))
        .values(ok=False, interrupted=True, finished_at=wall, error=INTERRUPTED).returning(D.c.message_id)
    ).scalars().all()
    repeats = sorted(set(open_calls))
    if repeats:
        session.execute(sa.update(M).where(M.c.id.in_(repeats)).values(possible_repeat=True))
    session.execute(sa.insert(A), [
        {"at": wall, "actor": "system", "action": "message.recovered", "object_type": "message",
         "object_id": str(mid), "detail": {"in_flight": mid in repeats}} for mid in rows
    ])
    return len(rows), len(repeats)


# --------------------------------------------------------------------------- sending

@dataclass(frozen=True)
class _Part:
    label: str | None  # the masked SMS number, None for a whole channel
    url: str
    destination: str


@dataclass(frozen=True)
class _Job:
    message_id: int
    title: str
    body: str
    summary: str | None
    attempts: int
    possible_repeat: bool
    channels: tuple[tuple[int, str], ...]  # (channel id, url) by priority
    delivered: frozenset[tuple[int, str | None]] = frozenset()  # (channel, part) already delivered


@dataclass
class _Outcome:
    status: str  # sent | retrying | deferred | failed | lost
    channel_id: int | None = None
    error: str | None = None
    wait: float = 0.0  # deferred: seconds until the destination's slot


# The statements of a send, built once: a statement object keeps its compiled form, so the
# thousands of calls of a morning pay for binding values only.
_OURS = sa.update(M).where(
    M.c.id.in_(sa.bindparam("mids", expanding=True)), M.c.claim_token == sa.bindparam("token"),
    M.c.status == MessageStatus.sending.value,
)
_CHECK = _OURS.values(claimed_at=M.c.claimed_at).returning(M.c.id)  # a write that changes nothing
_START = sa.insert(D).returning(D.c.id, sort_by_parameter_order=True)
_FINISH = sa.update(D).where(D.c.id == sa.bindparam("attempt")).values(
    ok=sa.bindparam("ok"), permanent=sa.bindparam("permanent"), error=sa.bindparam("error"),
    finished_at=sa.bindparam("stamp"))
_SENT = _OURS.values(status=MessageStatus.sent.value, error=None, claim_token=None).returning(M.c.id)
_SENT_HOW = sa.update(M).where(M.c.id == sa.bindparam("mid")).values(
    sent_at=sa.bindparam("stamp"), channel_id=sa.bindparam("channel"))
_AUDIT = sa.insert(A)


@dataclass(frozen=True)
class _Finish:
    attempt_id: int
    outcome: transports.Outcome
    stamp: dt.datetime
    sent: tuple[_Job, int] | None  # the call completed this channel: (message, channel)


class Store:
    """The database side of sending: every call recorded before and after, guarded by the claim.

    The sending threads' writes go through one ``GroupCommit``: the calls that start (or end)
    while the writer commits are written together — one statement for all of them — and each
    thread still waits for its own row to be committed before it calls or goes on.
    """

    def __init__(self, write: GroupCommit, token: str, max_attempts: int):
        self.write, self.token, self.max_attempts = write, token, max_attempts
        self.mine = sa.and_(M.c.id == sa.bindparam("mid"), M.c.claim_token == token,
                            M.c.status == MessageStatus.sending.value)

    def start(self, job: _Job, channel_id: int, part: _Part) -> int | None:
        """The attempt row of one call, inserted only while the message is still ours."""
        return self.write.many(self._start_all, {
            "message_id": job.message_id, "channel_id": channel_id, "part": part.label,
            "destination": part.destination, "claim_token": self.token, "at": now(),
            "possible_repeat": job.possible_repeat, "permanent": False, "interrupted": False})

    def _start_all(self, conn: sa.Connection, rows: list[dict]) -> list[int | None]:
        # The claim is checked by a write: it locks the messages (PostgreSQL) or the file
        # (SQLite) until the rows are committed, so no recovery can take one back in between.
        ours = set(conn.execute(_CHECK,
                                {"mids": [r["message_id"] for r in rows], "token": self.token}).scalars())
        kept = [r for r in rows if r["message_id"] in ours]
        ids = iter(conn.execute(_START, kept).scalars().all() if kept else ())
        return [next(ids) if r["message_id"] in ours else None for r in rows]

    def finish(self, attempt_id: int, outcome: transports.Outcome, *, sent: tuple[_Job, int] | None = None) -> bool:
        """Complete the call's row as soon as it returned — and, for the call that completes a
        channel, mark the message sent in the same transaction. False: the claim was lost."""
        return self.write.many(self._finish_all, _Finish(attempt_id, outcome, now(), sent))

    def _finish_all(self, conn: sa.Connection, items: list[_Finish]) -> list[bool]:
        conn.execute(_FINISH, [{"attempt": i.attempt_id, "ok": i.outcome.ok, "permanent": i.outcome.permanent,
                                "error": i.outcome.error, "stamp": i.stamp} for i in items])
        done = self._mark_sent(conn, [(i.sent[0], i.sent[1], i.stamp) for i in items if i.sent])
        return [i.sent is None or i.sent[0].message_id in done for i in items]

    def _mark_sent(self, conn: sa.Connection, sent: list[tuple[_Job, int, dt.datetime]]) -> set[int]:
        """Mark these messages sent, those still ours; return their ids."""
        if not sent:
            return set()
        done = set(conn.execute(_SENT, {"mids": [job.message_id for job, _, _ in sent], "token": self.token}).scalars())
        mine = [(job, channel, stamp) for job, channel, stamp in sent if job.message_id in done]
        if mine:
            conn.execute(_SENT_HOW, [{"mid": job.message_id, "stamp": stamp, "channel": channel}
                                     for job, channel, stamp in mine])
            conn.execute(_AUDIT, [_audit(job, "message.sent", stamp, channel=channel) for job, channel, stamp in mine])
        return done

    def sent_before(self, job: _Job, channel_id: int) -> bool:
        """Every part of the channel got it before a crash: the message is sent, with no call."""
        return bool(self.write(lambda conn: self._mark_sent(conn, [(job, channel_id, now())])))

    def settle(self, job: _Job, outcome: _Outcome) -> None:
        """A message no channel took now: retried later, deferred to its slot, or failed for good."""
        stamp = now()
        if outcome.status == "deferred":
            values = {"status": MessageStatus.pending.value, "next_attempt_at": stamp + dt.timedelta(seconds=outcome.wait),
                      "attempts": M.c.attempts - 1}  # waiting for a slot is not a try
        elif outcome.status == "retrying":
            delay = dt.timedelta(minutes=2 ** job.attempts)
            values = {"status": MessageStatus.pending.value, "next_attempt_at": stamp + delay, "error": outcome.error}
        else:
            values = {"status": MessageStatus.failed.value, "error": outcome.error}

        def work(conn: sa.Connection) -> None:
            done = conn.execute(sa.update(M).where(self.mine).values(claim_token=None, **values).returning(M.c.id),
                                {"mid": job.message_id}).first()
            if done is not None and outcome.status != "deferred":
                conn.execute(sa.insert(A), [_audit(job, f"message.{outcome.status}", stamp, error=outcome.error)])

        self.write(work)

    def renew(self) -> None:
        self.write(lambda conn: conn.execute(
            sa.update(M).where(M.c.claim_token == self.token, M.c.status == MessageStatus.sending.value)
            .values(claimed_at=now())))


def _audit(job: _Job, action: str, stamp: dt.datetime, **detail) -> dict:
    if job.possible_repeat:
        detail["possible_repeat"] = True
    return {"at": stamp, "actor": "system", "action": action, "object_type": "message",
            "object_id": str(job.message_id), "detail": detail}


@contextmanager
def _heartbeat(store: Store, every: float) -> Iterator[None]:
    """Renew this run's claims every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                store.renew()
            except sa.exc.SQLAlchemyError:  # a locked file or a failover: the next beat tries again
                continue

    thread = threading.Thread(target=beat, name="pingan-outbox-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _Sender:
    """Sends one message through its person's channels, part by part, recording each call."""

    def __init__(self, store: Store, pacer: Pacer, settings: Settings, clock: Callable[[], float], lanes: int = 1):
        self.store, self.pacer, self.settings, self.clock = store, pacer, settings, clock
        self.lanes = lanes  # senders in other processes: this one keeps to its share of each rate

    def __call__(self, job: _Job) -> _Outcome:
        if not job.channels:
            return _Outcome("failed", error="no active channel")
        transient, last_error = False, None
        for channel_id, url in job.channels:
            parts = [p for p in _parts(url) if (channel_id, p.label) not in job.delivered]
            if not parts:  # every part got it before a crash: the channel is done
                return _Outcome("sent", channel_id=channel_id) if self.store.sent_before(job, channel_id) else _Outcome("lost")
            title, text = fit(job.title, job.body, job.summary, url)
            for index, part in enumerate(parts):
                result = self._call(job, channel_id, part, title, text, last=index == len(parts) - 1)
                if result.status in ("lost", "deferred"):
                    return result
                if result.status != "sent_part":
                    transient = transient or result.status == "transient"
                    last_error = result.error
                    break
            else:
                return _Outcome("sent", channel_id=channel_id)
        status = "retrying" if transient and job.attempts < self.settings.max_send_attempts else "failed"
        return _Outcome(status, error=last_error)

    def _call(self, job: _Job, channel_id: int, part: _Part, title: str, text: str, *, last: bool) -> _Outcome:
        settings, limit = self.settings, limit_for(part.url).share(self.lanes)
        for attempt in range(settings.send_retries + 1):
            booked = self.clock()
            wait = self.pacer.reserve(part.destination, limit, booked)
            if wait > MAX_SLEEP:  # a slot this far off: give the thread to other destinations
                self.pacer.release(part.destination, booked + wait)
                return _Outcome("deferred", wait=wait)
            if wait:
                time.sleep(wait)
            attempt_id = self.store.start(job, channel_id, part)
            if attempt_id is None:
                return _Outcome("lost")
            outcome = transports.deliver(part.url, title, text, timeout=settings.send_timeout)
            if not self.store.finish(attempt_id, outcome, sent=(job, channel_id) if outcome.ok and last else None):
                return _Outcome("lost")
            if outcome.ok:
                return _Outcome("sent_part")
            if outcome.permanent:
                return _Outcome("permanent", error=outcome.error)
            if attempt < settings.send_retries:
                time.sleep(settings.send_backoff * 2**attempt)
        return _Outcome("transient", error=outcome.error)


def _parts(url: str) -> list[_Part]:
    return [_Part(label, part_url, destination(part_url)) for label, part_url in transports.parts(url)]


def _due(wall: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(M.c.status == MessageStatus.pending.value,
                   sa.or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= wall))


def _claim(session: Session, token: str, wall: dt.datetime, limit: int, lane: int = 0, lanes: int = 1) -> list[_Job]:
    due = sa.select(M.c.id).where(_due(wall)).order_by(M.c.urgent.desc(), M.c.id).limit(limit)
    if lanes > 1:
        due = due.where(M.c.person_id % lanes == lane)
    claimed = session.execute(
        sa.update(M).where(M.c.id.in_(due), M.c.status == MessageStatus.pending.value)
        .values(status=MessageStatus.sending.value, claim_token=token, claimed_at=wall, attempts=M.c.attempts + 1)
        .returning(M.c.id, M.c.person_id, M.c.title, M.c.body, M.c.summary, M.c.attempts, M.c.possible_repeat)
    ).all()
    if not claimed:
        return []
    channels: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in session.execute(
            sa.select(C.c.id, C.c.person_id, C.c.url)
            .where(C.c.person_id.in_({c.person_id for c in claimed}), C.c.active.is_(True))
            .order_by(C.c.person_id, C.c.priority)):
        channels[row.person_id].append((row.id, row.url))
    delivered: dict[int, set] = defaultdict(set)
    again = [c.id for c in claimed if c.attempts > 1 or c.possible_repeat]
    if again:  # parts a person already has: never called twice
        for row in session.execute(sa.select(D.c.message_id, D.c.channel_id, D.c.part)
                                   .where(D.c.message_id.in_(again), D.c.ok.is_(True))):
            delivered[row.message_id].add((row.channel_id, row.part))
    return [_Job(c.id, c.title, c.body, c.summary, c.attempts, c.possible_repeat,
                 tuple(channels.get(c.person_id, ())), frozenset(delivered[c.id])) for c in sorted(claimed, key=lambda c: c.id)]


def _seed(pacer: Pacer, session: Session, jobs: list[_Job], wall: dt.datetime, clock: Callable[[], float]) -> None:
    """The calls of the last minute to the paced destinations of ``jobs``, from ``delivery``."""
    keys = {p.destination for j in jobs for _, url in j.channels if limit_for(url).per_minute for p in _parts(url)}
    if not keys:
        return
    t0 = clock()
    since = wall - dt.timedelta(seconds=60)
    for key, at in session.execute(sa.select(D.c.destination, D.c.at).where(D.c.destination.in_(keys), D.c.at >= since)):
        pacer.seed(key, [t0 - (wall - at).total_seconds()])


def send(
    session_factory: Callable[[], Session], settings: Settings, as_of: dt.datetime, *,
    limit: int = 50_000, chunk: int = 2_000, progress: Callable[[int, int], None] | None = None,
    lane: int = 0, lanes: int = 1, composer: _Composer | None = None,
) -> SendReport:
    """Recover dead claims, then claim and send due messages chunk by chunk until none is due
    (lingering for paced slots due within ``send_linger``); return what happened. With
    ``lanes`` > 1, only the persons of ``lane`` (person id modulo ``lanes``), at ``1/lanes`` of
    each paced destination's rate: the other lanes are sent by other processes. With a
    ``composer`` running beside it, each batch it commits is sent as it comes, until it is done."""
    report = SendReport()
    pacer, clock = Pacer(), time.monotonic
    with session_factory() as session:
        report.recovered, report.possible_repeats = recover(session, settings.send_lease_seconds)
        session.commit()
    engine = None
    seen: set[int] = set()
    slots: list[float] = []  # when the messages this run deferred for pacing may go (monotonic clock)
    pool = _pool(settings.send_concurrency)
    while report.claimed < limit:
        # The monotonic clock before the wall clock: a slot that has come by ``looked`` is a
        # message due by ``wall`` (its retry time was set before its slot), so this claim takes it.
        looked = clock()
        token, wall = uuid.uuid4().hex, now()
        composed = composer.batches if composer else 0  # read before the claim: a later batch wakes us
        with session_factory() as session:
            jobs = _claim(session, token, wall, min(chunk, limit - report.claimed), lane, lanes)
            _seed(pacer, session, [j for j in jobs if j.message_id not in seen], wall, clock)
            session.commit()  # the claim is durable before anything leaves
            engine = engine or session.get_bind()
        slots[:] = [at for at in slots if at > looked]
        if not jobs:
            if composer is not None and composer.wait_after(composed):
                continue  # a batch was composed since the claim looked
            if _linger(slots, settings.send_linger, clock):
                continue  # paced slots of this run are still ahead (composing, if any, has ended)
            break
        seen.update(j.message_id for j in jobs)
        report.claimed += len(jobs)
        with GroupCommit(engine, name="pingan-send-writer") as write:
            store = Store(write, token, settings.max_send_attempts)
            sender = _Sender(store, pacer, settings, clock, lanes)
            with _heartbeat(store, max(1.0, settings.send_lease_seconds / 4)):
                for done, (job, outcome) in enumerate(zip(jobs, _each(pool, sender, jobs)), 1):
                    _count(report, job, outcome)
                    if outcome.status not in ("sent", "lost"):
                        store.settle(job, outcome)
                    if outcome.status == "deferred":
                        slots.append(clock() + outcome.wait)
                    if progress and (done % 200 == 0 or done == len(jobs)):
                        progress(done, len(jobs))
        # Composing goes on while its batches are sent: the run ends once it has finished and
        # nothing it committed since this claim is left (``finished`` is set after the last batch).
        composing_ended = composer is None or (composer.finished and composer.batches == composed)
        if len(jobs) < chunk and composing_ended and not _linger(slots, settings.send_linger, clock):
            break
    return report


class _Composer(threading.Thread):
    """Composes one lane's messages batch after batch (``compose``) while its senders send
    them: a dispatch's rendering and its sending share the machine's cores instead of taking
    turns. ``send`` waits for the next batch with ``wait_after``. Batches of ``persons``
    persons: small enough that sending starts soon, large enough that a batch's statements
    cost little per message."""

    persons = 500

    def __init__(self, engine: sa.Engine, settings: Settings, as_of: dt.datetime, describe: Describe,
                 lane: int = 0, lanes: int = 1):
        super().__init__(name=f"pingan-compose-{lane}", daemon=True)
        self.engine, self.settings, self.as_of, self.describe = engine, settings, as_of, describe
        self.lane, self.lanes = lane, lanes
        self.made = self.batches = 0
        self.finished = False
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._changed = threading.Condition()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                made = compose(self.engine, self.settings, self.as_of, describe=self.describe,
                               persons=self.persons, lane=self.lane, lanes=self.lanes)
                if not made:
                    break
                with self._changed:
                    self.made += made
                    self.batches += 1
                    self._changed.notify_all()
        except BaseException as exc:  # noqa: BLE001 — raised again by ``result`` in the dispatcher's thread
            self.error = exc
        finally:
            with self._changed:
                self.finished = True
                self._changed.notify_all()

    def wait_after(self, batches: int) -> bool:
        """Wait until a batch after the ``batches``-th is committed (True) or composing ends (False)."""
        with self._changed:
            self._changed.wait_for(lambda: self.batches > batches or self.finished)
            return self.batches > batches

    def halt(self) -> None:
        """Stop after the batch in hand and wait for it."""
        self._halt.set()
        self.join()

    def result(self) -> int:
        """The messages made, once composing has ended, or the error that stopped it."""
        self.halt()
        if self.error is not None:
            raise self.error
        return self.made


def deliver(settings: Settings, as_of: dt.datetime, describe: Describe, *, lane: int = 0, lanes: int = 1) -> SendReport:
    """Compose the notices released by ``as_of`` into messages and send every message due — of
    ``lane``'s persons when ``lanes`` > 1 — composing in one thread while the senders send what
    it has committed. Every composed batch is committed before it is sent, so a crash at any
    point leaves notices to compose or messages to send, never a message half made."""
    engine = get_engine(settings.db_url)
    composer = _Composer(engine, settings, as_of, describe, lane, lanes)
    composer.start()
    try:
        report = send(lambda: Session(engine, expire_on_commit=False), settings, as_of,
                      lane=lane, lanes=lanes, composer=composer)
    except BaseException:
        composer.halt()
        raise
    report.composed = composer.result()
    return report


def deliver_all(settings: Settings, as_of: dt.datetime, describe: Describe) -> SendReport:
    """``deliver`` from this process — or, when ``send_fanout_at`` or more persons have notices
    waiting or messages due, from ``send_processes`` processes at once, a lane each: one
    Python process renders and sends from one core, whatever its threads. On SQLite the lanes'
    writers take turns through a lock file (``pingan.core.db.WriterTurn``): without it they
    queued on SQLite's busy handler and two processes were slower than one
    (docs/PERFORMANCE.md). ``describe`` goes to the lanes pickled: a function of a module or
    a method of a picklable object (the duty runtime's is)."""
    engine = get_engine(settings.db_url)
    lanes = settings.send_processes
    if lanes > 1:
        lanes = lanes if _work(engine, as_of, settings.send_fanout_at) >= settings.send_fanout_at else 1
    if lanes == 1:
        return deliver(settings, as_of, describe)
    # spawn, not fork: the caller (a Prefect task run) has threads of its own.
    with ProcessPoolExecutor(lanes, mp_context=multiprocessing.get_context("spawn")) as processes:
        reports = list(processes.map(_deliver_lane, [settings] * lanes, [as_of] * lanes, [describe] * lanes,
                                     range(lanes), [lanes] * lanes))
    return _merged(reports)


def _work(engine: sa.Engine, as_of: dt.datetime, enough: int) -> int:
    """Persons with notices to compose plus messages due, counted up to ``enough`` of each."""
    with engine.connect() as conn:
        persons = conn.scalar(sa.select(sa.func.count()).select_from(
            sa.select(N.c.person_id).where(_released(as_of)).group_by(N.c.person_id).limit(enough).subquery()))
        due = conn.scalar(sa.select(sa.func.count()).select_from(
            sa.select(M.c.id).where(_due(now())).limit(enough).subquery()))
    return persons + due


def _deliver_lane(settings: Settings, as_of: dt.datetime, describe: Describe, lane: int, lanes: int) -> SendReport:
    """One lane of ``deliver_all``, in a process of its own."""
    engine = get_engine(settings.db_url)
    try:
        return deliver(settings, as_of, describe, lane=lane, lanes=lanes)
    finally:
        engine.dispose()


def _merged(reports: list[SendReport]) -> SendReport:
    total = SendReport(processes=0)
    for report in reports:
        for name, value in dataclasses.asdict(report).items():
            setattr(total, name, getattr(total, name) + value)
    return total


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The sending threads of this process, kept between runs: each keeps its HTTP connections and
    Apprise plugin objects alive (``pingan.delivery.capture.session``) from one batch to the next."""
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pingan-send")
        return _POOLS[workers]


def _each(pool: ThreadPoolExecutor, sender: Callable[[_Job], _Outcome], jobs: list[_Job]) -> Iterator[_Outcome]:
    """``pool.map``, except that when the caller stops (an error, an interrupt) no call of this
    batch is left running behind it: calls not started are cancelled, started ones awaited."""
    futures = [pool.submit(sender, job) for job in jobs]
    try:
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()
        wait(futures)


def _count(report: SendReport, job: _Job, outcome: _Outcome) -> None:
    if outcome.status == "sent":
        report.sent += 1
        report.fallbacks += bool(job.channels) and outcome.channel_id != job.channels[0][0]
    elif outcome.status == "retrying":
        report.retrying += 1
    elif outcome.status == "deferred":
        report.deferred += 1
    elif outcome.status == "failed":
        report.failed += 1
        report.failures.append({"message": job.message_id, "error": outcome.error})


def _linger(slots: list[float], linger: float, clock: Callable[[], float]) -> bool:
    """Wait for the earliest paced slot of this run that no claim has taken yet, if it comes
    within ``linger`` seconds (at once when it has come meanwhile); False: none to wait for."""
    if not slots:
        return False
    wait = min(slots) - clock()
    if wait > linger:
        return False
    if wait > 0:
        time.sleep(wait)
    return True
