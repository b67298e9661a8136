"""The organisation in the database: stored from ``OrgData`` in bulk, read back, exported.

``store_org`` upserts units, persons, roles and channels by code with a handful of bulk
statements per table, whatever the number of schools, after ``check_org`` has found nothing
wrong: a person row is authoritative for that person (the roles it lists replace the person's
roles, channels it no longer lists are deactivated — never deleted, the outbox refers to them).
Units and persons are never deleted either: ``启用 = 否`` deactivates one, and
``store_org(..., deactivate_missing=True)`` (``pingan import --deactivate-missing``)
deactivates those that a full table of the data leaves out; without it a row left out is kept
as it is, so a file may hold only the rows that change.

``pingan.org.snapshot.load_org`` is the other direction for the duties: the active
organisation as an in-memory snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Channel, Person, Role, RoleKind, Unit, UnitKind
from pingan.core.clock import now
from pingan.core.db import insert_ignore, upsert
from pingan.core.i18n import t
from pingan.delivery.transports import mask
from pingan.org.check import check_org
from pingan.org.data import ChannelRow, OrgData, OrgImportError, PersonRow, Progress, RoleRow, UnitRow
from pingan.org.sheets import write_org_file


# --------------------------------------------------------------------------- storing

@dataclass(frozen=True)
class Counts:
    new: int = 0
    updated: int = 0
    removed: int = 0  # roles deleted; units, persons and channels deactivated (never deleted)
    unchanged: int = 0


@dataclass(frozen=True)
class LoadResult:
    units: Counts
    persons: Counts
    roles: Counts
    channels: Counts
    # Active units/persons of the database that a full table of the data leaves out and that
    # were kept active (no ``deactivate_missing``): worth a word to whoever imported the file.
    left_out: Mapping[str, int] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return sum(c.new for c in self._all())

    @property
    def changed(self) -> bool:
        return any(c.new or c.updated or c.removed for c in self._all())

    def _all(self) -> tuple[Counts, ...]:
        return (self.units, self.persons, self.roles, self.channels)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: vars(c).copy() for name, c in zip(("units", "persons", "roles", "channels"), self._all())}


_UNIT_COLS = ("name", "kind", "parent_id", "function", "has_school_bus", "has_dormitory", "has_canteen", "active")
_PERSON_COLS = ("name", "unit_id", "title", "phone", "email", "active")


def _ids(session: Session, table: sa.Table, codes: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    codes = list(codes)
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        out.update(session.execute(sa.select(table.c.code, table.c.id).where(table.c.code.in_(chunk))).tuples())
    return out


def _delete_ids(session: Session, table: sa.Table, ids: Sequence[int], **values: Any) -> None:
    for start in range(0, len(ids), 5000):
        where = table.c.id.in_(ids[start : start + 5000])
        session.execute(table.update().where(where).values(**values) if values else table.delete().where(where))


def _changed(existing: dict[str, sa.Row], items: Iterable[Any], to_row: Callable[[Any], dict],
             columns: Sequence[str]) -> list[dict]:
    """The rows whose columns differ from what is stored (only those are written)."""
    out = []
    for item in items:
        old = existing.get(item.code)
        if old is None:
            continue
        row = to_row(item)
        if tuple(old)[2:] != tuple(row[c] for c in columns):  # rows were selected as (id, code, *columns)
            out.append(row)
    return out


def _left_out(existing: Mapping[str, sa.Row], listed: Iterable[Any]) -> list[sa.Row]:
    """The active rows of the database that the data does not list, in code order."""
    codes = {item.code for item in listed}
    return sorted((r for code, r in existing.items() if code not in codes and r.active), key=lambda r: r.code)


def store_org(session: Session, data: OrgData, *, actor: str, progress: Progress | None = None,
              deactivate_missing: bool = False) -> LoadResult:
    """Upsert the organisation by code in bulk; idempotent. Checks everything first and raises
    ``OrgImportError`` before any write; writes one audit row when something changed.

    With ``deactivate_missing``, the units and persons that a full table of the data
    (``data.tables``) leaves out are deactivated: never deleted, tasks and the outbox refer
    to them. Without it they are kept as they are and counted in ``LoadResult.left_out``."""
    check_org(data, session=session, deactivate_missing=deactivate_missing)
    step = progress or (lambda *_: None)
    stamp = now()
    unit_t, person_t, role_t, channel_t = Unit.__table__, Person.__table__, Role.__table__, Channel.__table__

    # Units: new ones level by level (a parent before its children: foreign keys are immediate).
    existing = {r.code: r for r in session.execute(sa.select(unit_t.c.id, unit_t.c.code, *(unit_t.c[c] for c in _UNIT_COLS)))}
    unit_ids = {code: r.id for code, r in existing.items()}

    def unit_row(u: UnitRow) -> dict:
        return {"code": u.code, "name": u.name, "kind": u.kind.value,
                "parent_id": unit_ids.get(u.parent_code) if u.parent_code else None, "function": u.function,
                "has_school_bus": u.has_school_bus, "has_dormitory": u.has_dormitory,
                "has_canteen": u.has_canteen, "active": u.active}

    pending = {u.code: u for u in data.units if u.code not in existing}
    units_new = 0
    while pending:
        ready = [u for u in pending.values() if u.parent_code not in pending]
        if not ready:  # check_org refuses cycles; this is the belt to its braces
            raise OrgImportError([t("org.err.cycle", path=" → ".join(sorted(pending)))])
        rows = [unit_row(u) | {"created_at": stamp} for u in ready]
        inserted = insert_ignore(session, unit_t, rows, ["code"], returning=("id", "code"))
        units_new += len(inserted)
        unit_ids.update({r.code: r.id for r in inserted})
        unit_ids.update(_ids(session, unit_t, [u.code for u in ready if u.code not in unit_ids]))
        for u in ready:
            del pending[u.code]
    changed = _changed(existing, data.units, unit_row, _UNIT_COLS)
    upsert(session, unit_t, [r | {"created_at": stamp} for r in changed], ["code"], _UNIT_COLS)
    left_out: dict[str, int] = {}
    deactivated: dict[str, list[str]] = {}
    gone = _left_out(existing, data.units) if "units" in data.tables else []
    if gone and deactivate_missing:
        _delete_ids(session, unit_t, [r.id for r in gone], active=False)
        deactivated["units"] = [r.code for r in gone]
    elif gone:
        left_out["units"] = len(gone)
    units = Counts(new=units_new, updated=len(changed), removed=len(deactivated.get("units", ())),
                   unchanged=len(data.units) - units_new - len(changed))
    step("units", len(data.units), len(data.units))

    # Persons.
    existing = {r.code: r for r in session.execute(sa.select(person_t.c.id, person_t.c.code, *(person_t.c[c] for c in _PERSON_COLS)))}
    person_ids = {code: r.id for code, r in existing.items()}

    def person_row(p: PersonRow) -> dict:
        return {"code": p.code, "name": p.name, "unit_id": unit_ids[p.unit_code], "title": p.title,
                "phone": p.phone, "email": p.email, "active": p.active}

    rows = [person_row(p) | {"created_at": stamp} for p in data.persons if p.code not in existing]
    inserted = insert_ignore(session, person_t, rows, ["code"], returning=("id", "code"))
    person_ids.update({r.code: r.id for r in inserted})
    person_ids.update(_ids(session, person_t, [p.code for p in data.persons if p.code not in person_ids]))
    changed = _changed(existing, data.persons, person_row, _PERSON_COLS)
    upsert(session, person_t, [r | {"created_at": stamp} for r in changed], ["code"], _PERSON_COLS)
    gone = _left_out(existing, data.persons) if "persons" in data.tables else []
    if gone and deactivate_missing:
        _delete_ids(session, person_t, [r.id for r in gone], active=False)
        deactivated["persons"] = [r.code for r in gone]
    elif gone:
        left_out["persons"] = len(gone)
    persons = Counts(new=len(inserted), updated=len(changed), removed=len(deactivated.get("persons", ())),
                     unchanged=len(data.persons) - len(inserted) - len(changed))
    step("persons", len(data.persons), len(data.persons))

    # Roles: a person in the data holds exactly the roles the data gives them.
    synced = {person_ids[p.code] for p in data.persons}
    wanted = {(person_ids[r.person_code], unit_ids[r.unit_code], r.role.value) for r in data.roles}
    have = {(r.person_id, r.unit_id, r.role): r.id for r in session.execute(sa.select(role_t))}
    rows = [{"person_id": p, "unit_id": u, "role": r} for p, u, r in sorted(wanted - have.keys())]
    inserted = insert_ignore(session, role_t, rows, ["person_id", "unit_id", "role"])
    stale = sorted(i for key, i in have.items() if key[0] in synced and key not in wanted)
    _delete_ids(session, role_t, stale)
    roles = Counts(new=len(inserted), removed=len(stale), unchanged=len(wanted) - len(rows))
    step("roles", len(data.roles), len(data.roles))

    # Channels: updated in place; those a person no longer lists are deactivated, not deleted.
    wanted_ch = {(person_ids[c.person_code], c.priority): c for c in data.channels}
    have_ch = {(r.person_id, r.priority): r for r in session.execute(sa.select(channel_t))}
    rows, changed = [], []
    for (pid, priority), c in sorted(wanted_ch.items()):
        row = {"person_id": pid, "priority": priority, "url": c.url, "label": c.label, "active": True}
        old = have_ch.get((pid, priority))
        if old is None:
            rows.append(row)
        elif (old.url, old.label, old.active) != (c.url, c.label, True):
            changed.append(row)
    inserted = insert_ignore(session, channel_t, rows, ["person_id", "priority"])
    upsert(session, channel_t, changed, ["person_id", "priority"], ("url", "label", "active"))
    stale = sorted(r.id for key, r in have_ch.items() if key[0] in synced and key not in wanted_ch and r.active)
    _delete_ids(session, channel_t, stale, active=False)
    channels = Counts(new=len(inserted), updated=len(changed), removed=len(stale),
                      unchanged=len(wanted_ch) - len(rows) - len(changed))
    step("channels", len(data.channels), len(data.channels))

    result = LoadResult(units=units, persons=persons, roles=roles, channels=channels, left_out=left_out)
    if result.changed:  # a load that changes nothing leaves no trace, so a re-run is a true no-op
        detail = {"source": data.source, **result.as_dict()}
        if deactivated:
            detail["deactivated"] = deactivated
        session.add(Audit(actor=actor, action="org.load", object_type="org", object_id=(data.source or "org")[:64],
                          detail=detail))
        session.flush()
    return result


# --------------------------------------------------------------------------- reading back

def missing_from_db(session: Session, data: OrgData) -> OrgData:
    """The part of ``data`` the database lacks: its new units, and its new persons with their
    roles and channels. Rows already stored are left out, so loading the result never undoes
    an operator's edits (``pingan init --demo`` run again after an import, say)."""
    units = set(session.execute(sa.select(Unit.code)).scalars())
    persons = set(session.execute(sa.select(Person.code)).scalars())
    out = OrgData(source=data.source)
    out.units = [u for u in data.units if u.code not in units]
    out.persons = [p for p in data.persons if p.code not in persons]
    new = {p.code for p in out.persons}
    out.roles = [r for r in data.roles if r.person_code in new]
    out.channels = [c for c in data.channels if c.person_code in new]
    return out


def org_from_db(session: Session) -> OrgData:
    """The organisation in the database as OrgData (channel URLs unmasked: handle with care)."""
    data = OrgData(source="database")
    code_of: dict[int, str] = {}
    for r in session.execute(sa.select(Unit.__table__).order_by(Unit.id)):
        code_of[r.id] = r.code
    for r in session.execute(sa.select(Unit.__table__).order_by(Unit.id)):
        data.units.append(UnitRow(code=r.code, name=r.name, kind=UnitKind(r.kind), parent_code=code_of.get(r.parent_id),
                                  function=r.function, has_school_bus=r.has_school_bus, has_dormitory=r.has_dormitory,
                                  has_canteen=r.has_canteen, active=r.active))
    person_code: dict[int, str] = {}
    for r in session.execute(sa.select(Person.__table__).order_by(Person.id)):
        person_code[r.id] = r.code
        data.persons.append(PersonRow(code=r.code, name=r.name, unit_code=code_of[r.unit_id], title=r.title,
                                      phone=r.phone, email=r.email, active=r.active))
    for r in session.execute(sa.select(Role.__table__).order_by(Role.id)):
        data.roles.append(RoleRow(person_code=person_code[r.person_id], unit_code=code_of[r.unit_id], role=RoleKind(r.role)))
    query = sa.select(Channel.__table__).where(Channel.active.is_(True)).order_by(Channel.person_id, Channel.priority)
    for r in session.execute(query):
        data.channels.append(ChannelRow(person_code=person_code[r.person_id], priority=r.priority, url=r.url, label=r.label))
    return data


def export_org(session: Session, path: str | Path, *, with_secrets: bool = False) -> OrgData:
    """Write the organisation in the import format; channel URLs masked unless ``with_secrets``."""
    data = org_from_db(session)
    if not with_secrets:
        for c in data.channels:
            c.url = mask(c.url)
    write_org_file(data, path)
    return data
