"""The operations every caller shares — Prefect tasks, the CLI and replay call these same functions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import Escalation, Message, Notice, Occurrence
from pingan.duties.cycle import CycleResult, plan_tasks, sync_catalog, queue_escalations, queue_reminders, run_cycle
from pingan.duties.rules import is_working_time
from pingan.core.db import get_engine, session_scope
from pingan.delivery.outbox import SendReport, compose, send
from pingan.core.periods import days
from pingan.core.clock import TZ, local
from pingan.org.snapshot import Org, load_org
from pingan.duties.runtime import Runtime


def session_factory(rt: Runtime) -> Callable[[], Session]:
    engine = get_engine(rt.settings.db_url)
    return lambda: Session(engine, expire_on_commit=False)


_SYNCED: set[tuple[str, int]] = set()


def ensure_catalog(rt: Runtime) -> None:
    """Write the catalog into the ``duty`` table once per process and database (tasks refer to it)."""
    mark = (rt.settings.db_url, id(rt.catalog))
    if mark not in _SYNCED:
        with session_scope(get_engine(rt.settings.db_url)) as session:
            sync_catalog(session, rt.catalog)
        _SYNCED.add(mark)


def cycle(rt: Runtime, duty_key: str, as_of: dt.datetime, *, org: Org | None = None) -> CycleResult:
    """Plan, remind and escalate one duty, committed as one transaction."""
    as_of = local(as_of)
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        org = org or load_org(session)
        return run_cycle(session, rt, duty_key, as_of, org)


def _step(rt: Runtime, as_of: dt.datetime, work):
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return work(session, load_org(session), local(as_of))


def plan_step(rt: Runtime, duty_key: str, as_of: dt.datetime) -> tuple[int, list[str]]:
    """Create the duty's tasks for every open period: (created, period keys)."""
    duty = rt.catalog.duty(duty_key)
    ensure_catalog(rt)
    return _step(rt, as_of, lambda s, org, t: plan_tasks(s, rt, duty, org, t))


def in_working_time(rt: Runtime, as_of: dt.datetime) -> bool:
    s = rt.settings
    return is_working_time(local(as_of), rt.calendar, s.work_start, s.work_end)


def remind_step(rt: Runtime, duty_key: str, as_of: dt.datetime) -> tuple[int, list[int]]:
    """Queue due reminders (working time only): (queued, unreachable task ids)."""
    if not in_working_time(rt, as_of):
        return 0, []
    duty = rt.catalog.duty(duty_key)
    return _step(rt, as_of, lambda s, org, t: queue_reminders(s, rt, duty, org, t))


def escalate_step(rt: Runtime, duty_key: str, as_of: dt.datetime) -> int:
    """Fire due escalation events (working time only): events fired."""
    if not in_working_time(rt, as_of):
        return 0
    duty = rt.catalog.duty(duty_key)
    return _step(rt, as_of, lambda s, org, t: queue_escalations(s, rt, duty, org, t))


def dispatch(rt: Runtime, as_of: dt.datetime, *, progress: Callable[[int, int], None] | None = None) -> SendReport:
    """Compose waiting notices into messages and send every message that is due."""
    as_of = local(as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        compose(session, rt, as_of)
    return send(session_factory(rt), rt, as_of, progress=progress)


@dataclass
class ReplaySummary:
    start: dt.date
    end: dt.date
    runs: int = 0
    by_duty: dict[str, CycleResult] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0

    def totals(self) -> dict[str, int]:
        return {
            "planned": sum(r.planned for r in self.by_duty.values()),
            "reminders": sum(r.reminders for r in self.by_duty.values()),
            "escalations": sum(r.escalations for r in self.by_duty.values()),
            "sent": self.sent, "failed": self.failed,
        }


def replay(
    rt: Runtime, start: dt.date, end: dt.date, *, times: tuple[dt.time, ...] = (dt.time(9, 0), dt.time(15, 0)),
    duties: list[str] | None = None, send_messages: bool = True,
    on_step: Callable[[dt.datetime], None] | None = None,
) -> ReplaySummary:
    """Run every planned duty's cycle at each ``times`` of each day in [start, end], then dispatch."""
    keys = duties or [d.key for d in rt.catalog.planned]
    summary = ReplaySummary(start=start, end=end)
    engine = get_engine(rt.settings.db_url)
    ensure_catalog(rt)
    for day in days(start, end):
        for moment in times:
            as_of = dt.datetime.combine(day, moment, tzinfo=TZ)
            with session_scope(engine) as session:
                org = load_org(session)
                for key in keys:
                    result = run_cycle(session, rt, key, as_of, org)
                    summary.by_duty.setdefault(key, CycleResult(duty_key=key, as_of=as_of)).merge(result)
            if send_messages:
                report = dispatch(rt, as_of)
                summary.sent += report.sent
                summary.failed += report.failed
            summary.runs += 1
            if on_step:
                on_step(as_of)
    return summary


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
