"""The dispatcher as a workflow — compose and send, one step — and what it needs from its caller.

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
from pingan.delivery.outbox import SendReport, deliver_all, next_release


class Context(Protocol):
    settings: Settings

    def describe(self, duty_key: str) -> DutyText | None: ...


def deliver_step(rt: Context, as_of: dt.datetime) -> dict:
    """Compose the notices waiting into messages, one per person, and send every message due;
    record the outcome of each. Composing goes batch by batch — a transaction per batch of
    persons, so memory stays bounded whatever the number of notices — and each batch is sent
    as soon as it is committed (``pingan.delivery.outbox.deliver``)."""
    return dataclasses.asdict(deliver_all(rt.settings, local(as_of), rt.describe))


DISPATCH = Workflow("dispatch", (Step("deliver", deliver_step),))


def dispatch(rt: Context, as_of: dt.datetime) -> SendReport:
    """Compose and send in this process (the step of the dispatch flow)."""
    return SendReport(**DISPATCH.run(rt, as_of=as_of)["deliver"])


def next_work(rt: Context, as_of: dt.datetime) -> dt.datetime | None:
    """When a dispatch run next has something to compose or send (at or before ``as_of``: now)."""
    with session_scope(get_engine(rt.settings.db_url)) as session:
        found = next_release(session, local(as_of))
    return local(found) if found is not None else None
