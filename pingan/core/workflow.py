"""Workflows as data: the ordered steps of a job, each one transaction of its own.

A job — the cycle of one duty, the daily hazard watch, the holiday watch, the incident clock,
the dispatcher — is a :class:`Workflow`: named steps in order. A step is a function
``step(rt, **params) -> dict`` that opens its own transaction, does one bulk piece of work
whatever the number of schools, and returns a small JSON-able summary.

The step order is written once, in the workflow. The Prefect flows (``flows/``) run each step
as one task run (``tasks.steps.run_steps``); ``pingan replay``, ``pingan run --local``,
``pingan watch run``, the tests and the bench run the very same steps with
:meth:`Workflow.run`. Both paths therefore have the same transaction boundaries: a crash
between two steps leaves what the first committed, and running the job again converges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    name: str
    fn: Callable[..., dict[str, Any]]
    # What the Prefect task may take before it is failed as TimedOut (and the operator alerted).
    timeout: float = 600.0


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]

    def run(self, rt: Any, /, **params: Any) -> dict[str, dict[str, Any]]:
        """Every step in order, in this process: ``{step name: its summary}``."""
        return {step.name: step.fn(rt, **params) for step in self.steps}
