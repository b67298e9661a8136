"""A person's own links — their page and their calendar feed — and revoking them.

The links are signed (``pingan.core.links.sign_person``) with the person's link version; a
``person_link`` row holds it once the links were revoked (no row: version 0). Revoking raises
the version: every link issued before is refused, and the next messages carry the new one.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Person, PersonLink
from pingan.core.db import insert_ignore
from pingan.core.i18n import register, t
from pingan.core.links import LinkError, PersonGrant, feed_url, page_url, verify_person

PL = PersonLink.__table__

register({
    "links.err.person": {"zh-CN": "没有人员 {code}", "en": "no person {code}"},
})


class LinkRefused(LinkError):
    """A person link that is forged, of an unknown or inactive person, or revoked."""


def version_of(session: Session, person_id: int) -> int:
    return session.scalar(sa.select(PL.c.version).where(PL.c.person_id == person_id)) or 0


def person_of(session: Session, token: str, keys, purpose: str) -> Person:
    """The active person a page or feed token names, at its current version; else LinkRefused."""
    try:
        grant: PersonGrant = verify_person(token, keys, purpose)
    except LinkError as exc:
        raise LinkRefused(str(exc)) from None
    person = session.get(Person, grant.person_id)
    if person is None or not person.active:
        raise LinkRefused("unknown or inactive person")
    if grant.version != version_of(session, person.id):
        raise LinkRefused("revoked")
    return person


def urls(session: Session, person_id: int, base_url: str, key: bytes) -> tuple[str, str]:
    """(page, feed) of the person, at their current version."""
    version = version_of(session, person_id)
    return page_url(base_url, person_id, version, key), feed_url(base_url, person_id, version, key)


def find_person(session: Session, code: str) -> Person:
    person = session.scalar(sa.select(Person).where(Person.code == (code or "").strip()))
    if person is None:
        raise LookupError(t("links.err.person", code=code))
    return person


def revoke(session: Session, code: str, *, actor: str, as_of: dt.datetime) -> tuple[Person, int]:
    """Revoke the person's links and issue new ones: (person, new version). Audited."""
    person = find_person(session, code)
    insert_ignore(session, PL, [{"person_id": person.id, "version": 0, "changed_at": as_of, "changed_by": actor[:100]}],
                  ["person_id"], returning=())
    version = session.execute(
        sa.update(PL).where(PL.c.person_id == person.id)
        .values(version=PL.c.version + 1, changed_at=as_of, changed_by=actor[:100]).returning(PL.c.version)
    ).scalar_one()
    session.add(Audit(at=as_of, actor=actor[:100], action="person.links_revoked", object_type="person",
                      object_id=str(person.id), detail={"code": person.code, "version": version}))
    return person, version
