"""Duties (loaded from the catalog), their occurrences (tasks) and waivers."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class Duty(SQLModel, table=True):
    """A catalog entry as loaded into the database: the catalog file stays the source of truth."""

    key: str = Field(primary_key=True, max_length=80)
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    document: str = Field(max_length=120)
    clause: str = Field(max_length=40)
    cadence: str = Field(max_length=32)
    spec: dict = Field(default_factory=dict, sa_type=JSON)
    spec_hash: str = Field(max_length=64)
    active: bool = True
    loaded_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class Review(str, enum.Enum):
    """What has been handed in for an occurrence; the rest of its state is derived (pingan.state)."""

    none = "none"
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"


def _starts_escalating(context) -> dt.datetime | None:
    """A new task's ``next_escalation_at``: its ``escalate_at`` (whoever inserts it)."""
    return context.get_current_parameters().get("escalate_at")


def _opens(context) -> dt.datetime | None:
    """A new task's ``next_reminder_at``: its ``opens_at`` (whoever inserts it)."""
    return context.get_current_parameters().get("opens_at")


class Occurrence(SQLModel, table=True):
    """One task: one duty, for one unit (and person, for personal duties), for one period.

    Like a healthchecks ``Check``, it stores its deadlines (``due_at``, ``escalate_at``) and
    its review state; whether it is open, overdue, escalated or waived is derived.
    """

    __table_args__ = (
        sa.UniqueConstraint("duty_key", "unit_id", "person_key", "period_key", name="uq_occurrence_slot"),
        sa.Index("ix_occurrence_due_at", "due_at"),  # reports and digests: the tasks due in a period
        # What each duty run reads: the waiting tasks with a reminder step or an escalation
        # event due (both index ranges stay small as history grows), and the open ones (status).
        sa.Index("ix_occurrence_remind", "duty_key", "review", "next_reminder_at"),
        sa.Index("ix_occurrence_escalation", "duty_key", "review", "next_escalation_at"),
        sa.Index("ix_occurrence_open", "duty_key", "escalate_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    duty_key: str = Field(foreign_key="duty.key", max_length=80)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    # Personal duties (each bureau leader's inspections) name the person; unit duties leave it empty.
    person_id: int | None = Field(default=None, foreign_key="person.id")
    # person_id or 0: NULLs are distinct in unique constraints, so the key needs a real value.
    person_key: int = 0
    period_key: str = Field(max_length=64)
    period_start: dt.date
    period_end: dt.date
    opens_at: dt.datetime = Field(sa_type=AwareDateTime)
    due_at: dt.datetime = Field(sa_type=AwareDateTime)
    escalate_at: dt.datetime = Field(sa_type=AwareDateTime)
    # When the reminder engine must look at this task again: opens_at when planned, then the
    # time of its next reminder step after each run, NULL when no step is left.
    next_reminder_at: dt.datetime | None = Field(
        default=None, sa_type=AwareDateTime, sa_column_kwargs={"default": _opens})
    # When the escalation engine must look at this task again: escalate_at when planned, then
    # the next event of its policy after each run, NULL when no event is left. Without it every
    # task ever missed would be re-read by every run (the policies repeat).
    next_escalation_at: dt.datetime | None = Field(
        default=None, sa_type=AwareDateTime, sa_column_kwargs={"default": _starts_escalating})
    review: Review = Field(default=Review.none, sa_type=sa.String(16))
    closed_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    sensitive_period_id: int | None = Field(default=None, foreign_key="sensitive_period.id", index=True)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class PlanMark(SQLModel, table=True):
    """A period of a duty planned for the whole organisation as it was (``fingerprint``: the
    duty's spec and the organisation's version): a later run with the same fingerprint has
    nothing to plan for that period and skips it — the same morning again writes and reads
    next to nothing. A change to the organisation or the duty plans the period again."""

    __tablename__ = "plan_mark"

    duty_key: str = Field(primary_key=True, max_length=80)
    period_key: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=64)
    planned_at: dt.datetime = Field(sa_type=AwareDateTime)


class Waiver(SQLModel, table=True):
    """An approved exemption: reminders and escalation stop until ``until`` (or revocation)."""

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    granted_by: str = Field(max_length=100)
    reason: str = Field(sa_type=sa.Text)
    until: dt.datetime = Field(sa_type=AwareDateTime)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
