"""The duty domain's data functions every caller shares: the catalog in the database, counts,
starting a sensitive period."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import sqlalchemy as sa
from sqlmodel import Session

from models import Escalation, Message, Notice, Occurrence
from pingan.core.clock import local
from pingan.core.db import get_engine, session_scope
from pingan.duties.cycle import sync_catalog
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import load_org


_SYNCED: set[tuple[str, int]] = set()


def ensure_catalog(rt: Runtime) -> None:
    """Write the catalog into the ``duty`` table once per process and database (tasks refer to it)."""
    mark = (rt.settings.db_url, id(rt.catalog))
    if mark not in _SYNCED:
        with session_scope(get_engine(rt.settings.db_url)) as session:
            sync_catalog(session, rt.catalog)
        _SYNCED.add(mark)


def counts(session: Session, duty_key: str | None = None) -> dict[str, int]:
    """Row counts of the cycle's tables (optionally for one duty), for summaries and tests."""
    O, N, E, M = Occurrence.__table__, Notice.__table__, Escalation.__table__, Message.__table__
    o_where = [O.c.duty_key == duty_key] if duty_key else []
    n_where = [N.c.duty_key == duty_key] if duty_key else []
    out = {
        "tasks": session.scalar(sa.select(sa.func.count()).select_from(O).where(*o_where)),
        "reminders": session.scalar(sa.select(sa.func.count()).select_from(N).where(N.c.kind == "reminder", *n_where)),
        "escalation_notices": session.scalar(sa.select(sa.func.count()).select_from(N).where(N.c.kind == "escalation", *n_where)),
        "escalations": session.scalar(
            sa.select(sa.func.count()).select_from(E.join(O, O.c.id == E.c.occurrence_id)).where(*o_where)),
    }
    out.update(Counter(dict(session.execute(sa.select(M.c.status, sa.func.count()).group_by(M.c.status)).all())))
    return out


def start_sensitive_period(rt: Runtime, req, as_of: dt.datetime, *, actor: str) -> dict:
    """Record a sensitive period, plan its tighter tasks now, announce it, and send."""
    from pingan.delivery.workflow import dispatch
    from pingan.duties import sensitive

    as_of = local(as_of)
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        period_id, created = sensitive.start(session, rt, req, actor=actor)
        org = load_org(session)
        planned = {}
        if req.starts_on <= as_of.date() <= req.ends_on:
            for key in session.execute(sa.select(sensitive.S.c.duties).where(sensitive.S.c.id == period_id)).scalar_one():
                planned[key] = sensitive.plan_tighter(session, rt, rt.catalog.duty(key), org, as_of)
        announced = sensitive.announce(session, rt, period_id, org, as_of)
    report = dispatch(rt, as_of)
    return {"id": period_id, "created": created, "planned": planned, "announced": announced, "sent": report.sent}
