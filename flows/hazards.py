"""The daily hazard watch (双重预防): the hazard closed loop and the risk-point checks.

For an instant ``as_of`` (default now) it advances — takes platform upload references from
the half-monthly check evidence, plans the risk-point checks whose periods are open, marks
hazards that passed their deadline — then, in working time, reminds (rectifiers before the
deadline, risk-point owners, checks not yet uploaded to the supervision platform) and
escalates (overdue hazards, missed checks) up the chain, sends through the outbox and
publishes artifacts: open hazards by level and age per unit, risk checks per unit and level,
risk points in warning, platform uploads. Five Prefect task runs, whatever the number of schools.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from pingan.core.clock import now
from pingan.core.clock import local
from tasks.delivery import dispatch
from tasks.hazard import advance, escalate, publish, remind


def run_name() -> str:
    as_of = (flow_run.parameters or {}).get("as_of")
    if isinstance(as_of, str):
        as_of = dt.datetime.fromisoformat(as_of)
    return f"隐患排查治理 {(local(as_of) if as_of else now()):%Y-%m-%d}"


@flow(name="hazard-watch", flow_run_name=run_name, log_prints=True, retries=0)
def hazard_watch(as_of: dt.datetime | None = None) -> dict:
    """Advance deadlines, remind, escalate, send and publish the hazard loop at ``as_of`` (default: now)."""
    as_of = local(as_of) if as_of else now()
    advanced = advance(as_of)
    reminded = remind(as_of)
    escalated = escalate(as_of)
    sent = dispatch(as_of)
    run = {**advanced, **reminded, **escalated, "sent": sent["sent"], "failed": sent["failed"]}
    published = publish(as_of, run)
    return {
        "as_of": as_of.isoformat(), "checks": advanced["checks_planned"], "overdue": advanced["overdue_marked"],
        "reminders": reminded.get("hazard_reminders", 0) + reminded.get("check_reminders", 0),
        "uploads": reminded.get("upload_reminders", 0),
        "escalations": escalated.get("hazard_escalations", 0) + escalated.get("check_escalations", 0),
        "sent": sent["sent"], "failed": sent["failed"], **published,
    }
