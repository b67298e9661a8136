"""Incidents (学校安全事故) and the times their reports came in.

An incident stores its two deadlines (phone report, written report) as computed from the
jurisdiction's rules when it was registered, like an occurrence stores ``due_at``; each report
is also an occurrence of the incident duty, so the escalation engine and the outbox treat a
missing report like any other missing task.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import AwareDateTime
from pingan.core.clock import now


class Incident(SQLModel, table=True):
    # One incident per unit, time of occurrence and category: registering it again (a repeated
    # CLI call, the web page and the API both used) finds the first one.
    __table_args__ = (sa.UniqueConstraint("unit_id", "occurred_at", "category", name="uq_incident_event"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    occurred_at: dt.datetime = Field(sa_type=AwareDateTime, index=True)
    category: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    summary: str | None = Field(default=None, sa_type=sa.Text)
    duty_key: str = Field(foreign_key="duty.key", max_length=80)
    # The unit code whose rules set the deadlines ("" for the catalog's default).
    jurisdiction: str = Field(default="", max_length=64)
    phone_due_at: dt.datetime = Field(sa_type=AwareDateTime)
    written_due_at: dt.datetime = Field(sa_type=AwareDateTime)
    phone_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    phone_by: str | None = Field(default=None, max_length=100)
    written_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    written_by: str | None = Field(default=None, max_length=100)
    phone_occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id")
    written_occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id")
    registered_by: str = Field(max_length=100)
    registered_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
