"""What is owed to whom (notices), what was sent (messages) and how (deliveries).

A notice is unique on (person, dedupe_key): a reminder step or an escalation level of one
task reaches one person at most once, however often or concurrently the flows run. It waits
until its ``release_at`` (the morning digest, the afternoon one, or at once when urgent); the
dispatcher then groups every released notice of a person into one message. A message is
claimed with a conditional update and its claim renewed while it is being sent; every call
to a channel (every SMS number) is a ``delivery`` row written before the call and completed
as soon as it returns, so a crash can repeat only what was in flight.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class NoticeKind(str, enum.Enum):
    reminder = "reminder"
    escalation = "escalation"
    announcement = "announcement"
    review = "review"


class Notice(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("person_id", "dedupe_key", name="uq_notice_dedupe"),
        # The dispatcher's question: which notices wait (no message yet), person by person, and
        # are released by now? Also every lookup by message. (By person: ``uq_notice_dedupe``.)
        sa.Index("ix_notice_waiting", "message_id", "person_id", "release_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    dedupe_key: str = Field(max_length=160)
    kind: NoticeKind = Field(sa_type=sa.String(16))
    occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id", index=True)
    duty_key: str | None = Field(default=None, max_length=80, index=True)
    step: str = Field(max_length=32)
    level: int | None = None
    urgent: bool = False
    payload: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    # When it may be sent: the next digest slot for routine notices, at once for urgent ones.
    release_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    # Set by the dispatcher that claimed the notice, in the transaction that makes its message.
    batch: str | None = Field(default=None, max_length=32)
    message_id: int | None = Field(default=None, foreign_key="message.id")


class MessageStatus(str, enum.Enum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Message(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_message_status", "status", "next_attempt_at"),
        # A claim's messages (compose links its notices to them, the sender finds its batch):
        # without it each claim reads every message ever sent.
        sa.Index("ix_message_claim", "claim_token", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    # What a channel that cannot take the body gets instead: counts and a link, never a cut.
    summary: str | None = Field(default=None, sa_type=sa.Text)
    status: MessageStatus = Field(default=MessageStatus.pending, sa_type=sa.String(16))
    urgent: bool = False
    attempts: int = 0
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    next_attempt_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    claim_token: str | None = Field(default=None, max_length=36)
    # Renewed every few seconds by the dispatcher holding the claim (a lease, not a start time).
    claimed_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    # A dispatcher died while one of its channel calls was in flight: the next send may repeat it.
    possible_repeat: bool = False
    sent_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    error: str | None = Field(default=None, sa_type=sa.Text)


class Delivery(SQLModel, table=True):
    """One call to one channel (one SMS number) for one message, written before the call.

    ``ok`` is NULL while the call is in flight; a dispatcher that finds such a row of a dead
    claim marks it ``interrupted``: whether that message reached the person is unknown, and the
    message is sent again as a possible repeat. ``destination`` identifies the endpoint (a hash
    of the URL and the part), so a group bot shared by several persons is paced as one.
    """

    __table_args__ = (sa.Index("ix_delivery_destination", "destination", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    part: str | None = Field(default=None, max_length=64)  # a masked SMS number; NULL: the whole channel
    destination: str | None = Field(default=None, max_length=32)
    claim_token: str | None = Field(default=None, max_length=36)
    at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)  # when the call started
    finished_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    ok: bool | None = None
    permanent: bool = False
    interrupted: bool = False
    possible_repeat: bool = False
    error: str | None = Field(default=None, sa_type=sa.Text)


class Escalation(SQLModel, table=True):
    """One escalation event: level ``level`` of a task's policy, ``seq`` 0 then its repeats."""

    __table_args__ = (sa.UniqueConstraint("occurrence_id", "level", "seq", name="uq_escalation_step"),)

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    level: int
    seq: int = 0
    reason: str = Field(max_length=16)  # missing | rejected
    recipients: list = Field(default_factory=list, sa_type=JSON)
    due_at: dt.datetime = Field(sa_type=AwareDateTime)
    fired_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime, index=True)
