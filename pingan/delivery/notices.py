"""Notices: what is owed to whom. Every duty run, watch and clock queues them here; the
dispatcher turns them into messages (``pingan.delivery.outbox``).

A notice is unique on (person, dedupe key): a reminder step or an escalation level of one task
reaches one person at most once, however often or concurrently the flows run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlmodel import Session

from models import Notice, NoticeKind
from pingan.core.db import insert_new

N = Notice.__table__


def notice(
    person_id: int, dedupe_key: str, kind: NoticeKind | str, step: str, payload: dict, as_of: dt.datetime, *,
    occurrence_id: int | None = None, duty_key: str | None = None, level: int | None = None, urgent: bool = False,
    release_at: dt.datetime | None = None,
) -> dict:
    """One notice row (``queue`` writes them), released at ``release_at`` — at once by default;
    routine reminders and escalations pass their digest slot (``pingan.delivery.release``)."""
    return {
        "person_id": person_id, "dedupe_key": dedupe_key[:160], "kind": NoticeKind(kind).value,
        "occurrence_id": occurrence_id, "duty_key": duty_key, "step": step[:32], "level": level, "urgent": urgent,
        "payload": payload, "created_at": as_of, "release_at": release_at or as_of,
    }


def queue(session: Session, rows: Sequence[dict]) -> int:
    """Insert the notices not yet owed; return how many are new."""
    return insert_new(session, N, rows, ["person_id", "dedupe_key"])
