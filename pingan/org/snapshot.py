"""Who carries a duty and who answers for it: pure functions over an organisation snapshot.

The snapshot is read once per flow run (a few queries, whatever the number of schools) and
everything after — the subjects of a duty, the persons to remind, the leader to escalate to —
is computed in memory, so it can be tested without a database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from models import OrgVersion, Person, Role, RoleKind, Unit, UnitKind
from pingan.core.cadence import Spec

# Whom an escalation level reaches, relative to the unit of the task.
# ``nobody``: a level that is recorded (the task shows as escalated) but told to no one — for the
# duties of the bureau principal, above whom pingan knows nobody.
EscalationTarget = Literal["unit_principal", "unit_leader", "bureau_principal", "safety_lead", "safety_section", "nobody"]


class Carrier(Spec):
    """Who carries the duty.

    ``scope: unit`` — one task per matching unit, reminding the persons holding ``roles`` there;
    ``scope: person`` — one task per person holding one of ``roles`` at a matching unit.
    """

    scope: Literal["unit", "person"] = "unit"
    unit_kinds: tuple[UnitKind, ...] = Field(min_length=1)
    unit_functions: tuple[str, ...] = ()
    roles: tuple[RoleKind, ...] = (RoleKind.principal,)
    require: Mapping[Literal["has_school_bus", "has_dormitory", "has_canteen"], bool] = Field(default_factory=dict)

    @field_validator("require", mode="after")
    @classmethod
    def _freeze(cls, value):
        return dict(value)



@dataclass(frozen=True)
class UnitInfo:
    id: int
    code: str
    name: str
    kind: UnitKind
    parent_id: int | None
    function: str | None
    has_school_bus: bool = False
    has_dormitory: bool = False
    has_canteen: bool = False


@dataclass(frozen=True)
class PersonInfo:
    id: int
    code: str
    name: str
    unit_id: int


@dataclass
class Org:
    units: dict[int, UnitInfo]
    persons: dict[int, PersonInfo]
    roles: list[tuple[int, int, RoleKind]]  # (person_id, unit_id, role)
    version: int | None = None  # the org_version token it was read at (None: read without one)
    _by_unit: dict[tuple[int, RoleKind], list[int]] = field(default_factory=dict, init=False, repr=False)
    _bureau: UnitInfo | None = field(default=None, init=False, repr=False)
    _sections: dict[int | None, UnitInfo] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        by_unit: dict[tuple[int, RoleKind], list[int]] = defaultdict(list)
        for person_id, unit_id, role in sorted(self.roles):
            if person_id in self.persons and unit_id in self.units:
                by_unit[(unit_id, RoleKind(role))].append(person_id)
        self._by_unit = dict(by_unit)
        # The bureau and its safety section are asked for at every escalation: index them once
        # (scanning every unit per escalation made a level-3 pass quadratic in the schools).
        for unit in sorted(self.units.values(), key=lambda u: u.id):
            if unit.kind == UnitKind.bureau and self._bureau is None:
                self._bureau = unit
            if unit.kind == UnitKind.department and unit.function == "safety":
                self._sections.setdefault(unit.parent_id, unit)
                self._sections.setdefault(None, unit)

    # -- lookups
    def holders(self, unit_id: int, *roles: RoleKind) -> list[int]:
        """Persons holding any of ``roles`` at the unit, in a stable order, without repeats."""
        out: list[int] = []
        for role in roles:
            for pid in self._by_unit.get((unit_id, role), ()):
                if pid not in out:
                    out.append(pid)
        return out

    @property
    def bureau(self) -> UnitInfo | None:
        return self._bureau

    def bureau_of(self, unit_id: int) -> UnitInfo | None:
        seen = set()
        unit = self.units.get(unit_id)
        while unit is not None and unit.id not in seen:
            if unit.kind == UnitKind.bureau:
                return unit
            seen.add(unit.id)
            unit = self.units.get(unit.parent_id) if unit.parent_id else None
        return self.bureau

    def safety_desk(self) -> list[int]:
        """Who runs the safety work day to day: the safety section's head and staff, or the
        bureau's safety lead when the section has nobody — the operator alerts and the daily
        summary go to them."""
        bureau = self.bureau
        section = self.safety_section(bureau.id if bureau else None)
        people = self.holders(section.id, RoleKind.principal, RoleKind.staff) if section else []
        if not people and bureau is not None:
            people = self.holders(bureau.id, RoleKind.safety_lead)
        return people

    def safety_section(self, bureau_id: int | None) -> UnitInfo | None:
        """The bureau's safety section (the lowest id if several); any bureau's for ``None``."""
        return self._sections.get(bureau_id)

    # -- duties
    def matches(self, carrier: Carrier, unit: UnitInfo) -> bool:
        if unit.kind not in carrier.unit_kinds:
            return False
        if carrier.unit_functions and unit.function not in carrier.unit_functions:
            return False
        return all(getattr(unit, fact) == wanted for fact, wanted in carrier.require.items())

    def subjects(self, carrier: Carrier) -> list[tuple[int, int | None]]:
        """(unit_id, person_id) pairs that each get a task: one per unit, or one per role holder."""
        out: list[tuple[int, int | None]] = []
        for unit in sorted(self.units.values(), key=lambda u: u.id):
            if not self.matches(carrier, unit):
                continue
            if carrier.scope == "unit":
                out.append((unit.id, None))
            else:
                out.extend((unit.id, pid) for pid in self.holders(unit.id, *carrier.roles))
        return out

    def assignees(self, carrier: Carrier, unit_id: int, person_id: int | None) -> list[int]:
        """Who is reminded of a task: its person, or the unit's role holders (its principal failing those)."""
        if person_id is not None:
            return [person_id] if person_id in self.persons else []
        return self.holders(unit_id, *carrier.roles) or self.holders(unit_id, RoleKind.principal)

    def escalation_targets(self, targets: tuple[EscalationTarget, ...], unit_id: int) -> list[int]:
        """The persons a level of an escalation policy reaches for a task of ``unit_id``."""
        unit = self.units.get(unit_id)
        bureau = self.bureau_of(unit_id)
        out: list[int] = []
        for target in targets:
            if target == "unit_principal" and unit is not None:
                found = self.holders(unit.id, RoleKind.principal)
            elif target == "unit_leader" and unit is not None:
                # 包保 for a school, 分管 for a department; a bureau has nobody above but its principal.
                found = self.holders(unit.id, RoleKind.patron, RoleKind.in_charge)
            elif target == "bureau_principal" and bureau is not None:
                found = self.holders(bureau.id, RoleKind.principal)
            elif target == "safety_lead" and bureau is not None:
                found = self.holders(bureau.id, RoleKind.safety_lead)
            elif target == "safety_section":
                section = self.safety_section(bureau.id if bureau else None)
                found = self.holders(section.id, RoleKind.principal) if section else []
            else:
                found = []
            out.extend(pid for pid in found if pid not in out)
        return out

    def escalation_recipients(self, targets: tuple[EscalationTarget, ...], unit_id: int, owners: list[int]) -> list[int]:
        """Whom a level reaches for a task: its targets less the task's own assignees (``owners``) —
        an escalation never goes back to the person who missed the duty."""
        return [p for p in self.escalation_targets(targets, unit_id) if p not in owners]


_SNAPSHOTS: dict[tuple[str, int], Org] = {}


def load_org(session: Session) -> Org:
    """The active organisation: read in three queries, then kept for as long as the database's
    ``org_version`` token stays the same (triggers change it on every write to unit, person or
    role), so a morning of duty runs reads the organisation once, not three times per run."""
    token = session.scalar(sa.select(OrgVersion.version).where(OrgVersion.id == 1))
    key = (str(session.get_bind().engine.url), token)
    if token is not None and key in _SNAPSHOTS:
        return _SNAPSHOTS[key]
    org = read_org(session)
    org.version = token
    if token is not None:
        if len(_SNAPSHOTS) >= 8:
            _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
        _SNAPSHOTS[key] = org
    return org


def read_org(session: Session) -> Org:
    """Read the active organisation in three queries (no cache)."""
    units = {
        row.id: UnitInfo(
            id=row.id, code=row.code, name=row.name, kind=UnitKind(row.kind), parent_id=row.parent_id,
            function=row.function, has_school_bus=row.has_school_bus, has_dormitory=row.has_dormitory,
            has_canteen=row.has_canteen,
        )
        for row in session.execute(sa.select(Unit.__table__).where(Unit.active.is_(True)))
    }
    persons = {
        row.id: PersonInfo(id=row.id, code=row.code, name=row.name, unit_id=row.unit_id)
        for row in session.execute(
            sa.select(Person.id, Person.code, Person.name, Person.unit_id).where(Person.active.is_(True))
        )
    }
    roles = [(r.person_id, r.unit_id, RoleKind(r.role)) for r in session.execute(sa.select(Role.__table__))]
    return Org(units=units, persons=persons, roles=roles)
