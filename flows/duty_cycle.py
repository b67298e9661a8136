"""The duty cycle: one flow for every periodic duty, one deployment per duty.

For an instant ``as_of`` (default now) it plans the tasks of the open periods for every
responsible unit and person, queues the reminders that are due, fires the escalations that
are due, and publishes the duty's state and its queued notices as artifacts: four Prefect task
runs, whatever the number of schools. It sends nothing: the one dispatcher (``flows/dispatch.py``)
composes every duty's notices into one message per person at the digest slot.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from pingan.core.clock import local, now
from pingan.core.periods import period_at
from pingan.duties.runtime import get_runtime
from pingan.duties.workflow import CYCLE
from tasks.duty import publish
from tasks.steps import run_steps


def run_name() -> str:
    """``学校安全形势分析会 2026-11``: the duty's name and the period of ``as_of``."""
    params = flow_run.parameters or {}
    rt = get_runtime()
    duty = rt.catalog.duties.get(params.get("duty", ""))
    if duty is None:
        return f"{params.get('duty', 'duty')}"
    as_of = params.get("as_of")
    as_of = local(dt.datetime.fromisoformat(as_of) if isinstance(as_of, str) else as_of) if as_of else now()
    period = None
    if duty.cadence.every not in ("key_date", "holiday", "event"):
        period = period_at(duty.cadence.every, as_of.date(), rt.terms)
    return f"{duty.name} {period.key if period else as_of.date().isoformat()}"


@flow(name="duty-cycle", flow_run_name=run_name, log_prints=True, retries=0, timeout_seconds=1800)
def duty_cycle(duty: str, as_of: dt.datetime | None = None, province: str | None = None) -> dict:
    """Plan, remind, escalate and publish one duty at ``as_of`` (default: now); ``province``:
    the shard to run on (national installations, docs/SCALE.md)."""
    as_of = local(as_of) if as_of else now()
    get_runtime(province).catalog.duty(duty)  # an unknown duty or province fails before any task runs
    steps = run_steps(CYCLE, province=province, duty=duty, as_of=as_of)
    counts = publish(duty, as_of, steps, province)
    return {"duty": duty, "as_of": as_of.isoformat(), "planned": steps["plan"]["created"],
            "periods": steps["plan"]["periods"], "reminders": steps["remind"]["queued"],
            "escalations": steps["escalate"]["fired"], "states": counts,
            "why": {"planned": steps["plan"].get("why"), "reminders": steps["remind"].get("why"),
                    "escalations": steps["escalate"].get("why")}}
