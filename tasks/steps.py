"""The one bridge from pingan's workflows to Prefect: each step of a workflow is one task run,
with the one retry policy. Steps are idempotent and cheap to repeat, so a retry re-runs the
whole step; nothing is cached (hashing an organisation's worth of inputs costs more than the step).
"""

from __future__ import annotations

import functools
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NONE

from pingan.core.workflow import Step, Workflow
from pingan.duties.runtime import get_runtime

# Transient database trouble (a locked SQLite file, a PostgreSQL failover) passes in seconds.
RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)


def run_steps(workflow: Workflow, /, *, province: str | None = None, **params: Any) -> dict[str, dict[str, Any]]:
    """Inside a flow: every step of ``workflow`` in order, each as one Prefect task run (on the
    database of ``province``'s shard when one is named)."""
    shard = {"province": province} if province else {}
    return {step.name: step_task(step)(**shard, **params) for step in workflow.steps}


@functools.cache
def step_task(step: Step) -> Task:
    """The Prefect task of one step (built once per process)."""

    def run(**params: Any) -> dict[str, Any]:
        province = params.pop("province", None)
        return step.fn(get_runtime(province), **params)

    run.__name__ = run.__qualname__ = step.name.replace("-", "_")
    run.__doc__ = step.fn.__doc__
    return task(run, name=step.name, timeout_seconds=step.timeout, **RETRY)
