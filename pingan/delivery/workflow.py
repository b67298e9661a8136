"""The dispatcher as a workflow — compose → send — and what it needs from its caller.

Notices queued by every duty run, watch and clock are composed into one message per person
and sent through Apprise. The delivery layer knows nothing of duties: the caller's runtime
(``pingan.duties.runtime.Runtime``) provides the settings and ``describe(duty_key)``, the texts
a message shows of a duty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Protocol

from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.core.settings import Settings
from pingan.core.workflow import Step, Workflow
from pingan.delivery.messages import DutyText
from pingan.delivery.outbox import SendReport, compose, next_release, send_all


class Context(Protocol):
    settings: Settings

    def describe(self, duty_key: str) -> DutyText | None: ...


def compose_step(rt: Context, as_of: dt.datetime) -> dict:
    """Turn the notices waiting into messages, one per person: a transaction per batch of
    persons, so memory stays bounded whatever the number of notices."""
    engine, composed = get_engine(rt.settings.db_url), 0
    while True:
        with session_scope(engine) as session:
            made = compose(session, rt.settings, local(as_of), describe=rt.describe)
        if not made:
            return {"composed": composed}
        composed += made


def send_step(rt: Context, as_of: dt.datetime) -> dict:
    """Send every message that is due; record the outcome of each."""
    return dataclasses.asdict(send_all(rt.settings, local(as_of)))


DISPATCH = Workflow("dispatch", (Step("compose", compose_step), Step("send", send_step)))


def dispatch(rt: Context, as_of: dt.datetime) -> SendReport:
    """Compose and send in this process (the steps of the dispatch flow, in order)."""
    return SendReport(**DISPATCH.run(rt, as_of=as_of)["send"])


def next_work(rt: Context, as_of: dt.datetime) -> dt.datetime | None:
    """When a dispatch run next has something to compose or send (at or before ``as_of``: now)."""
    with session_scope(get_engine(rt.settings.db_url)) as session:
        found = next_release(session, local(as_of))
    return local(found) if found is not None else None
