"""What a hand-in link grants: the task and the person, checked against the database."""

from __future__ import annotations

import logging

from sqlmodel import Session

from models import Person
from pingan.core.links import LinkError, LinkGrant, verify
from pingan.evidence import service as ev
from pingan.org import links
from pingan.web.site import Web

log = logging.getLogger("pingan.web")


def link_grant(web: Web, token: str) -> LinkGrant | None:
    try:
        return verify(token, web.settings.signing_keys, web.clock())
    except LinkError as exc:
        log.info("hand-in link refused: %s", exc)
        return None


def task_and_person(web: Web, token: str) -> tuple[ev.Task, Person] | None:
    """The task and the person a hand-in link grants, or None (forged, expired, not theirs)."""
    grant = link_grant(web, token)
    if grant is None:
        return None
    with Session(web.engine, expire_on_commit=False) as session:
        task = ev.load_task(session, web.runtime, grant.occurrence_id)
        if task is None or task.duty is None:
            log.info("hand-in link refused: task %s unknown", grant.occurrence_id)
            return None
        person = ev.may_hand_in(session, web.runtime, task, grant.person_id)
        if person is None:
            log.info("hand-in link refused: person %s may not hand in task %s", grant.person_id, task.id)
            return None
        session.expunge(person)
        return task, person


def home_of(web: Web, session: Session, person_id: int) -> str:
    """The path of the person's own page (``/m/…``), for a link back to it from every page."""
    page, _feed = links.urls(session, person_id, "", web.settings.signing_key)
    return page
