"""What is owed to whom (notices), what was sent (messages) and how (deliveries).

A notice is unique on (person, dedupe_key): a reminder step or an escalation level of one
task reaches one person at most once, however often or concurrently the flows run. Notices
are grouped into messages (one per person per dispatch when digests are on); a message is
claimed with a conditional update before it is sent, and each channel tried is a delivery.
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
    __table_args__ = (sa.UniqueConstraint("person_id", "dedupe_key", name="uq_notice_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    dedupe_key: str = Field(max_length=160)
    kind: NoticeKind = Field(sa_type=sa.String(16))
    occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id", index=True)
    duty_key: str | None = Field(default=None, max_length=80, index=True)
    step: str = Field(max_length=32)
    level: int | None = None
    urgent: bool = False
    payload: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    # Set by the dispatcher that claimed the notice, in the transaction that makes its message.
    batch: str | None = Field(default=None, max_length=32, index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)


class MessageStatus(str, enum.Enum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Message(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_message_status", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    status: MessageStatus = Field(default=MessageStatus.pending, sa_type=sa.String(16))
    urgent: bool = False
    attempts: int = 0
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    next_attempt_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    claim_token: str | None = Field(default=None, max_length=36)
    claimed_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    error: str | None = Field(default=None, sa_type=sa.Text)


class Delivery(SQLModel, table=True):
    """One try of one channel for one message: Apprise's result for that service."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    ok: bool
    permanent: bool = False
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
    fired_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
