"""Serve every deployment of the catalog from this process (the main job's runner).

    python -m deployments.serve [--limit 4]

needs ``PREFECT_API_URL`` pointing at a running Prefect server (``pingan up`` starts one and
then this). It registers one deployment per duty — the same specs as ``prefect.yaml``, the
failure alert's trigger included, so the alert automation exists as soon as the alert
deployment does — and executes the scheduled and ad hoc runs until it is stopped with SIGINT or
SIGTERM. Schedules are left active on shutdown (``pause_on_shutdown=False``): a restart must
not silently stop the reminders.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable

from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
)
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.logging import get_logger
from prefect.runner import Runner
from prefect.schedules import Cron

from deployments.build import all_specs
from deployments.specs import Spec
from pingan.duties.runtime import get_runtime

log = get_logger("pingan.serve")  # under "prefect.": printed to the runner's log like its own lines


def runner_deployments(specs: Iterable[Spec]) -> list:
    """``RunnerDeployment`` objects for ``serve`` — same names, schedules, tags and triggers as prefect.yaml."""
    out = []
    for spec in specs:
        out.append(spec.load_flow().to_deployment(
            name=spec.name,
            description=spec.description,
            parameters=dict(spec.parameters),
            schedules=[Cron(s.cron, timezone=s.timezone, slug=s.slug) for s in spec.schedules],
            tags=list(spec.tags),
            triggers=[DeploymentEventTrigger.model_validate(t.as_dict()) for t in spec.triggers],
            concurrency_limit=ConcurrencyLimitConfig(limit=spec.concurrency_limit,
                                                     collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
            if spec.concurrency_limit else None,
        ))
    return out


def retire_unowned_alerts() -> int:
    """Delete the failure automations an earlier pingan created by hand (not owned by the alert
    deployment): the trigger on the deployment now creates the one automation, and a leftover
    would start every alert twice."""
    from prefect.client.orchestration import get_client

    from deployments.duties import AUTOMATION_NAME

    with get_client(sync_client=True) as client:
        stale = [a for a in client.read_automations_by_name(AUTOMATION_NAME) if not getattr(a, "owner_resource", None)]
        for automation in stale:
            client.delete_automation(automation.id)
    return len(stale)


class ServeRunner(Runner):
    """Prefect's runner, stopped cleanly by SIGTERM.

    Prefect's own SIGTERM handler calls ``Runner.stop()`` from inside the running event loop,
    where it returns the ``astop()`` coroutine instead of running it ("coroutine 'Runner.astop'
    was never awaited") and then exits mid-loop. Here SIGTERM schedules ``astop()`` on the loop:
    the polling stops, runs in flight are cancelled as before, and ``start()`` returns normally.
    """

    def handle_sigterm(self, *args, **kwargs) -> None:
        log.info("SIGTERM received, shutting down")
        loop = asyncio.get_running_loop()
        self._stopping_task: asyncio.Future | None = None

        def stop() -> None:
            if self.started:
                self._stopping_task = asyncio.ensure_future(self.astop())

        loop.call_soon_threadsafe(stop)


def serve(deployments: list, *, limit: int) -> None:
    """``prefect.serve`` with a runner that SIGTERM stops cleanly; schedules stay active on shutdown."""
    runner = ServeRunner(pause_on_shutdown=False, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        log.info("interrupted, shutting down")


def retire_renamed_deployments(specs: Iterable[Spec]) -> list[str]:
    """Delete the deployments of pingan's flows that no spec names any more (a duty renamed or
    switched off): nobody serves them, and their schedules would pile up late runs in the UI."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    wanted: dict[str, set[str]] = {}
    for spec in specs:
        wanted.setdefault(spec.flow_name, set()).add(spec.name)
    flow_filter = FlowFilter(name=FlowFilterName(any_=sorted(wanted)))
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=flow_filter)}
        found, offset = [], 0
        while page := client.read_deployments(flow_filter=flow_filter, limit=200, offset=offset):
            found += page
            offset += len(page)
        stale = [d for d in found if d.name not in wanted.get(flows.get(d.flow_id, ""), {d.name})]
        for deployment in stale:
            client.delete_deployment(deployment.id)
    return [d.name for d in stale]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4, help="runs executed at once (default 4)")
    args = parser.parse_args(argv)

    specs = all_specs(get_runtime().catalog)
    deployments = runner_deployments(specs)
    retired = retire_renamed_deployments(specs)
    if retired:
        log.info("removed %d deployment(s) no longer in the catalog: %s", len(retired), ", ".join(retired))
    if retire_unowned_alerts():
        log.info("removed the failure automation an earlier version created by hand")
    log.info("serving %d deployments", len(deployments))
    serve(deployments, limit=args.limit)


if __name__ == "__main__":
    main()
