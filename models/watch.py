"""The holiday watch (节假日值班与零报告): watch periods, duty rosters and daily reports.

A watch period is a public holiday of the calendar or a period the operator adds. Every unit
files one roster per period (who leads and who is on day and night duty, with phones) and one
report per day ("平安无事", or an incident). The deadlines and escalations live on occurrences
of the two catalog duties, so the one escalation engine and the outbox handle them.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class WatchPeriod(SQLModel, table=True):
    __tablename__ = "watch_period"
    __table_args__ = (sa.UniqueConstraint("key", name="uq_watch_period_key"),)

    id: int | None = Field(default=None, primary_key=True)
    # "<first day>-<name>", e.g. "2026-10-01-国庆节": also the period key of its roster tasks.
    key: str = Field(max_length=64)
    name: str = Field(max_length=120)
    starts_on: dt.date
    ends_on: dt.date  # inclusive
    source: str = Field(max_length=16)  # calendar | operator
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    cancelled_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)


class WatchRoster(SQLModel, table=True):
    """A unit's duty roster for one period; filing again replaces the entries (each filing is audited)."""

    __tablename__ = "watch_roster"
    __table_args__ = (sa.UniqueConstraint("period_id", "unit_id", name="uq_watch_roster_period_unit"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="watch_period.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    # [{"day": "2026-10-01" | null (every day), "role": "leader" | "staff", "name": …, "phone": …}]
    entries: list = Field(default_factory=list, sa_type=JSON)
    filed_by: str = Field(max_length=100)
    filed_at: dt.datetime = Field(sa_type=AwareDateTime)  # first filing: what the deadline is judged by
    updated_at: dt.datetime = Field(sa_type=AwareDateTime)


class WatchReport(SQLModel, table=True):
    """A unit's report for one day of watch: "ok" (平安无事, the zero report) or an incident."""

    __tablename__ = "watch_report"
    __table_args__ = (sa.UniqueConstraint("unit_id", "day", name="uq_watch_report_unit_day"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    day: dt.date = Field(index=True)
    status: str = Field(max_length=16)  # ok | incident
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    note: str | None = Field(default=None, sa_type=sa.Text)
    filed_by: str = Field(max_length=100)
    filed_at: dt.datetime = Field(sa_type=AwareDateTime)
