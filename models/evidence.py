"""Evidence handed in for an occurrence; files are content-addressed and never overwritten."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.duty import Review
from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class Evidence(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("occurrence_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    version: int = 1
    kind: str = Field(max_length=64)
    fields: dict = Field(default_factory=dict, sa_type=JSON)
    note: str | None = Field(default=None, sa_type=sa.Text)
    submitted_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    status: Review = Field(default=Review.submitted, sa_type=sa.String(16))
    reviewed_by: str | None = Field(default=None, max_length=100)
    reviewed_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    review_reason: str | None = Field(default=None, sa_type=sa.Text)


class EvidenceFile(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    evidence_id: int = Field(foreign_key="evidence.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int
