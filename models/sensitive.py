"""Key sensitive periods (重点敏感时期): chosen duties run at a tighter cadence for a while."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class SensitivePeriod(SQLModel, table=True):
    __tablename__ = "sensitive_period"
    __table_args__ = (sa.UniqueConstraint("name", "starts_on", "ends_on", name="uq_sensitive_period_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    starts_on: dt.date
    ends_on: dt.date  # inclusive: the period ends by itself after this day
    # {"kinds": [...], "units": [...]}; both empty means every unit the duty applies to.
    scope: dict = Field(default_factory=dict, sa_type=JSON)
    duties: list = Field(default_factory=list, sa_type=JSON)  # duty keys
    frequency: str | None = Field(default=None, max_length=16)  # None: each duty's catalog default
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    cancelled_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
