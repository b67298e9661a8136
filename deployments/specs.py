"""Deployments as plain data: what ``serve`` registers and ``prefect.yaml`` lists come from here.

A :class:`Spec` names a deployment, its flow entrypoint, parameters, schedules (Asia/Shanghai,
each with a slug), tags, description and triggers, so the served main job and a scale-out
install (``prefect deploy --all``) get the same deployments — the failure alert included, as
a trigger declared on the alert deployment — and a test fails when the two drift apart.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pingan.core.clock import TZ_NAME


@dataclass(frozen=True)
class Schedule:
    cron: str
    slug: str
    timezone: str = TZ_NAME


@dataclass(frozen=True)
class Trigger:
    """Run the deployment when an event matching these fields happens (a Prefect event trigger);
    ``parameters`` are Jinja templates over the event."""

    name: str
    description: str
    expect: tuple[str, ...]
    match: dict = field(default_factory=dict)
    match_related: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The trigger as ``prefect.yaml`` writes it (and Prefect's DeploymentEventTrigger reads it)."""
        return {
            "type": "event", "name": self.name, "description": self.description, "enabled": True,
            "match": dict(self.match), "match_related": dict(self.match_related), "expect": list(self.expect),
            "posture": "Reactive", "threshold": 1, "within": 0,
            "parameters": {k: {"__prefect_kind": "jinja", "template": v} for k, v in self.parameters.items()},
        }


@dataclass(frozen=True)
class Spec:
    name: str
    entrypoint: str
    description: str
    parameters: dict = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    tags: tuple[str, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    # Runs of this deployment at once; more wait their turn (Prefect's ENQUEUE strategy).
    concurrency_limit: int | None = None

    def load_flow(self):
        """The flow object behind ``entrypoint`` (``flows/x.py:name`` → ``flows.x.name``)."""
        path, _, attr = self.entrypoint.partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        return getattr(module, attr)

    @property
    def flow_name(self) -> str:
        return self.load_flow().name
