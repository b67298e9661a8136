"""The organisation: units, persons, their channels and the leadership relations."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import AwareDateTime
from pingan.core.clock import now


class UnitKind(str, enum.Enum):
    bureau = "bureau"
    department = "department"
    primary = "primary"
    junior = "junior"
    nine_year = "nine_year"
    senior = "senior"
    vocational = "vocational"
    kindergarten = "kindergarten"
    private_kindergarten = "private_kindergarten"
    training_institution = "training_institution"


SCHOOL_KINDS = frozenset(k for k in UnitKind if k not in (UnitKind.bureau, UnitKind.department))
KINDERGARTEN_KINDS = frozenset({UnitKind.kindergarten, UnitKind.private_kindergarten})


class RoleKind(str, enum.Enum):
    """A person's relation to a unit, as the responsibility lists name them."""

    principal = "principal"  # 主要负责人: 局长 / 科长 / 校(园)长
    safety_lead = "safety_lead"  # 分管安全工作负责人 (bureau) / 主管安全副校长 (school)
    safety_officer = "safety_officer"  # 安全主任 / 安全员
    leader = "leader"  # 班子成员 (a member of a leadership team)
    patron = "patron"  # 包保: the bureau leader who answers for a school
    in_charge = "in_charge"  # 分管: the bureau leader in charge of a department
    staff = "staff"


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    kind: UnitKind = Field(sa_type=sa.String(32), index=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id")
    # For departments: what the department does ("safety" is the 学校安全科).
    function: str | None = Field(default=None, max_length=32, index=True)
    has_school_bus: bool = False
    has_dormitory: bool = False
    has_canteen: bool = False
    active: bool = True
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=100)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    title: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    active: bool = True
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)


class Channel(SQLModel, table=True):
    """One way to reach a person: an Apprise URL. The URL carries tokens: never print it unmasked."""

    __table_args__ = (sa.UniqueConstraint("person_id", "priority"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    priority: int = 1  # 1 is tried first
    url: str = Field(sa_type=sa.Text, repr=False)
    label: str | None = Field(default=None, max_length=64)
    active: bool = True


class Role(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("person_id", "unit_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: RoleKind = Field(sa_type=sa.String(32), index=True)


class OrgVersion(SQLModel, table=True):
    """One row, changed by database triggers on every change to ``unit``, ``person`` or ``role``
    (migration 0005), so a process can keep its organisation snapshot until the token changes —
    whoever changed the organisation: an import, the demo, a test, a hand-written UPDATE."""

    __tablename__ = "org_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_type=sa.BigInteger)  # an opaque token, not a count


class PersonLink(SQLModel, table=True):
    """The version of a person's own links (their page, their calendar feed).

    A link carries the version it was signed with; revoking raises the version, so every link
    issued before stops working and the next messages carry new ones. No row: version 0.
    """

    __tablename__ = "person_link"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    version: int = 0
    changed_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    changed_by: str = Field(max_length=100)
