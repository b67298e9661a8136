"""Serve every deployment of the catalog from this process (the main job's runner).

    python -m deployments.serve [--limit 4]

needs ``PREFECT_API_URL`` pointing at a running Prefect server (``pingan up`` starts one and
then this). It registers one deployment per duty (the same specs as ``prefect.yaml``), makes
sure the failure automation exists, and executes the scheduled and ad hoc runs until it is
stopped with SIGINT or SIGTERM. Schedules are left active on shutdown
(``pause_on_shutdown=False``): a restart must not silently stop the reminders.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from uuid import UUID

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.schedules import Cron

from deployments.build import ALERT_DEPLOYMENT, Spec, all_specs
from pingan.duties.runtime import get_runtime

log = logging.getLogger("pingan.serve")

AUTOMATION_NAME = "pingan：职责流程失败告警 / duty run failed"
# Flows whose failure the operator must hear about: every flow but the alert itself.
WATCHED_STATES = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut")


def _jinja(template: str) -> dict:
    return {"__prefect_kind": "jinja", "template": template}


def runner_deployments(specs: Iterable[Spec]) -> list:
    """``RunnerDeployment`` objects for ``serve`` — same names, schedules and tags as prefect.yaml."""
    out = []
    for spec in specs:
        schedules = [Cron(s.cron, timezone=s.timezone, slug=s.slug) for s in spec.schedules]
        out.append(spec.load_flow().to_deployment(
            name=spec.name,
            description=spec.description,
            parameters=dict(spec.parameters),
            schedules=schedules,
            tags=list(spec.tags),
        ))
    return out


def alert_automation(alert_deployment_id: UUID) -> AutomationCore:
    """When any pingan flow run (other than the alert) fails, crashes or times out, run the alert."""
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="职责流程运行失败、崩溃或超时时，运行“运行失败告警”通知安全科 / "
                    "runs the operator alert when a duty flow run fails, crashes or times out",
        enabled=True,
        trigger=EventTrigger(
            expect=set(WATCHED_STATES),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.pingan"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[RunDeployment(
            source="selected",
            deployment_id=alert_deployment_id,
            parameters={
                "flow_run_id": _jinja("{{ event.resource.id }}"),
                "flow_run_name": _jinja("{{ event.resource.name }}"),
                "state": _jinja("{{ event.event.split('.')[-1] }}"),
            },
        )],
    )


def ensure_alert_automation(alert_deployment_id: UUID) -> UUID:
    """Create the automation, or bring an existing one of that name up to date (idempotent)."""
    wanted = alert_automation(alert_deployment_id)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if existing:
            client.update_automation(existing[0].id, wanted)
            for extra in existing[1:]:
                client.delete_automation(extra.id)
            return existing[0].id
        return client.create_automation(wanted)


def alert_deployment_id() -> UUID:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"operator-alert/{ALERT_DEPLOYMENT}").id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4, help="runs executed at once (default 4)")
    args = parser.parse_args(argv)

    specs = all_specs(get_runtime().catalog)
    deployments = runner_deployments(specs)
    alert = next(d for d, s in zip(deployments, specs) if s.name == ALERT_DEPLOYMENT)
    alert_id = alert.apply()
    ensure_alert_automation(alert_id)
    log.info("serving %d deployments", len(deployments))
    serve(*deployments, pause_on_shutdown=False, limit=args.limit, print_starting_message=False)


if __name__ == "__main__":
    main()
