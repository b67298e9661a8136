"""The append-only audit trail: every reminder, escalation, submission and review is a row.

Migrations add triggers that refuse UPDATE and DELETE on this table.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class Audit(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_audit_object", "object_type", "object_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime, index=True)
    actor: str = Field(max_length=100)  # "system", "operator:<name>", "person:<code>"
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    detail: dict = Field(default_factory=dict, sa_type=JSON)
