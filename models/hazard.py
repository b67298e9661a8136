"""Dual prevention (双重预防): the risk-point register, its checks, and the hazard closed loop.

A risk point's level sets how often it is checked; each check is a slot like an occurrence,
storing its deadlines (``due_at``, ``escalate_at``) and the last escalation step it fired.
A hazard stores its state and deadline; every change of state, reminder step and escalation
level is a ``HazardEvent`` row, unique on (hazard, step) where the step is a system step, so
repeated runs never record one twice.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSON, AwareDateTime
from pingan.core.clock import now


class RiskCategory(str, enum.Enum):
    """人、物、管、环."""

    people = "people"
    things = "things"
    management = "management"
    environment = "environment"


class RiskLevel(str, enum.Enum):
    """重大 / 较大 / 一般 / 低 — red / orange / yellow / blue."""

    major = "major"
    high = "high"
    general = "general"
    low = "low"


class HazardLevel(str, enum.Enum):
    """一般隐患 / 重大隐患."""

    general = "general"
    major = "major"


class HazardState(str, enum.Enum):
    reported = "reported"
    rectifying = "rectifying"
    rectified = "rectified"
    verified = "verified"
    closed = "closed"  # 销号


class HazardSource(str, enum.Enum):
    half_monthly = "half_monthly"  # the half-monthly self-check
    patrol = "patrol"  # daily patrol
    inspection = "inspection"  # a leader's or the bureau's inspection
    risk_check = "risk_check"  # a risk point's check
    ad_hoc = "ad_hoc"


class RiskPoint(SQLModel, table=True):
    __tablename__ = "risk_point"
    __table_args__ = (sa.UniqueConstraint("unit_id", "code", name="uq_risk_point_unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    code: str = Field(max_length=64)  # the unit's own number for the point, unique within the unit
    category: RiskCategory = Field(sa_type=sa.String(16))
    place: str = Field(max_length=200)
    description: str = Field(sa_type=sa.Text)
    measures: str = Field(sa_type=sa.Text)
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    level: RiskLevel = Field(sa_type=sa.String(16), index=True)
    active: bool = True
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    updated_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class Hazard(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("client_key", name="uq_hazard_client_key"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    place: str = Field(max_length=200)
    description: str = Field(sa_type=sa.Text)
    level: HazardLevel = Field(sa_type=sa.String(16))
    source: HazardSource = Field(sa_type=sa.String(16))
    state: HazardState = Field(default=HazardState.reported, sa_type=sa.String(16), index=True)
    # Where it was found: a half-monthly check task, a risk point.
    occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id", index=True)
    risk_point_id: int | None = Field(default=None, foreign_key="risk_point.id", index=True)
    reporter_id: int | None = Field(default=None, foreign_key="person.id")
    reported_by: str = Field(max_length=100)  # actor: "person:<code>", "operator:<name>"
    rectifier_id: int = Field(foreign_key="person.id", index=True)
    found_at: dt.datetime = Field(sa_type=AwareDateTime)
    deadline: dt.datetime = Field(sa_type=AwareDateTime)
    round: int = 1  # 1, then +1 each time it is re-opened
    rectified_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    rectified_by_id: int | None = Field(default=None, foreign_key="person.id")
    verified_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    verified_by_id: int | None = Field(default=None, foreign_key="person.id")
    closed_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    closed_by: str | None = Field(default=None, max_length=100)
    # A caller's idempotency key (the page's form token): the same report twice is one hazard.
    client_key: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    updated_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class HazardEvent(SQLModel, table=True):
    """The history of a hazard. ``step`` names a system step (``r2:e1.0``, ``r1:due-2d``);
    NULL for what people do, which may happen any number of times."""

    __tablename__ = "hazard_event"
    __table_args__ = (sa.UniqueConstraint("hazard_id", "step", name="uq_hazard_event_step"),)

    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str | None = Field(default=None, max_length=16)
    round: int = 1
    step: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, sa_type=sa.Text)
    detail: dict = Field(default_factory=dict, sa_type=JSON)


class HazardFile(SQLModel, table=True):
    """A photo of the hazard or evidence of its rectification, stored content-addressed."""

    __tablename__ = "hazard_file"

    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    event_id: int = Field(foreign_key="hazard_event.id", index=True)
    role: str = Field(max_length=16)  # photo | rectification | verification
    sha256: str = Field(max_length=64, index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int


class RiskCheck(SQLModel, table=True):
    """One check of one risk point for one period of its level's cadence."""

    __tablename__ = "risk_check"
    __table_args__ = (
        sa.UniqueConstraint("risk_point_id", "period_key", name="uq_risk_check_slot"),
        sa.Index("ix_risk_check_open", "checked_at", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    risk_point_id: int = Field(foreign_key="risk_point.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    level: RiskLevel = Field(sa_type=sa.String(16))  # the point's level when the check was planned
    period_key: str = Field(max_length=64)
    period_start: dt.date
    period_end: dt.date
    opens_at: dt.datetime = Field(sa_type=AwareDateTime)
    due_at: dt.datetime = Field(sa_type=AwareDateTime)
    escalate_at: dt.datetime = Field(sa_type=AwareDateTime)
    checked_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    checker_id: int | None = Field(default=None, foreign_key="person.id")
    checked_by: str | None = Field(default=None, max_length=100)
    result: str | None = Field(default=None, max_length=16)  # ok | hazard
    note: str | None = Field(default=None, sa_type=sa.Text)
    hazard_id: int | None = Field(default=None, foreign_key="hazard.id")
    # The last escalation step fired (0, 0: none); advanced by a conditional update.
    escalation_level: int = 0
    escalation_seq: int = 0
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class PlatformUpload(SQLModel, table=True):
    """A half-monthly check's upload to the supervision platform (the system of record)."""

    __tablename__ = "platform_upload"
    __table_args__ = (sa.UniqueConstraint("occurrence_id", name="uq_platform_upload_occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id")
    reference: str = Field(max_length=100)
    uploaded_on: dt.date
    recorded_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    recorded_by: str = Field(max_length=100)
    source: str = Field(max_length=16)  # evidence | cli | page
