"""Scale-out as the README describes it: Prefect and pingan on PostgreSQL, a process work pool,
``prefect deploy --all`` from prefect.yaml, two workers running the same duty at the same time.

Both runs are created at once and each is taken by one worker; whether their few seconds of work
overlap depends on process start-up, so the race itself is pinned down by the threaded test
in test_duty_cycle.py, and this test shows the deployed shape adds no duplicate either: unique
keys and the outbox's claim make sure nothing is created or sent twice. Skipped (with the reason shown) where
``PINGAN_TEST_POSTGRES_URL`` is not set; ``.ci/run`` sets it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pingan.core.settings import REPO_ROOT
from pingan.cli.supervisor import free_port, poll, stop_group

pytestmark = pytest.mark.timeout(600)

DUTY = "school-monthly-safety-meeting"
AS_OF = "2026-11-23T10:00:00+08:00"
DIGEST = "2026-11-24T09:00:00+08:00"  # the next working morning's digest slot


def health(api: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_two_workers_run_the_same_duty_at_once_without_duplicates(pg_databases, tmp_path):
    pingan_url = pg_databases()
    prefect_url = sa.make_url(pg_databases()).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update({
        "PINGAN_HOME": str(home), "PINGAN_DATABASE_URL": pingan_url, "PINGAN_DEMO": "1",
        "PINGAN_CODE_DIR": str(REPO_ROOT),
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1", "PYTHONUNBUFFERED": "1",
    })
    prefect = [sys.executable, "-m", "prefect"]

    def run(*argv: str) -> str:
        done = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{' '.join(argv[:4])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run(sys.executable, "-m", "pingan", "init", "--demo")
    run(*prefect, "server", "database", "upgrade", "-y")
    procs: list[subprocess.Popen] = []
    logs: dict[str, Path] = {}

    def start(name: str, *argv: str) -> None:
        logs[name] = tmp_path / f"{name}.log"
        procs.append(subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=logs[name].open("wb"),
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))

    try:
        start("server", *prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port))
        poll(lambda: health(api), 180, "Prefect server on PostgreSQL")
        run(*prefect, "work-pool", "create", "pingan", "--type", "process")
        run(*prefect, "--no-prompt", "deploy", "--all")
        for name in ("worker-a", "worker-b"):
            start(name, *prefect, "worker", "start", "--pool", "pingan", "--limit", "1", "--name", name)

        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from deployments.build import all_specs
        from deployments.duties import ALERT_DEPLOYMENT, AUTOMATION_NAME
        from tasks.names import DISPATCH_DEPLOYMENT
        from pingan.duties.catalog import load_catalog

        specs = all_specs(load_catalog())
        spec = next(s for s in specs if s.parameters.get("duty") == DUTY)
        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            assert len(client.read_deployments(limit=200)) == len(specs)
            # `prefect deploy --all` alone creates the failure alert: it is a trigger of the alert deployment.
            alert = client.read_deployment_by_name(f"operator-alert/{ALERT_DEPLOYMENT}")
            automations = client.read_automations_by_name(AUTOMATION_NAME)
            assert len(automations) == 1 and automations[0].actions[0].deployment_id == alert.id
            deployment = client.read_deployment_by_name(f"duty-cycle/{spec.name}")
            runs = [client.create_flow_run_from_deployment(deployment.id, parameters={"as_of": AS_OF})
                    for _ in range(2)]

            def finished():
                states = [client.read_flow_run(r.id) for r in runs]
                return states if all(s.state.is_final() for s in states) else None

            done = poll(finished, 300, "both flow runs")
            assert all(r.state.is_completed() for r in done), [(r.name, r.state.type, r.state.message) for r in done]
            # the one dispatcher sends what both runs queued, at the next morning's digest
            dispatcher = client.read_deployment_by_name(DISPATCH_DEPLOYMENT)
            sender = client.create_flow_run_from_deployment(dispatcher.id, parameters={"as_of": DIGEST})
            sent_run = poll(lambda: (r := client.read_flow_run(sender.id)).state.is_final() and r, 300, "the dispatcher")
        assert sent_run.state.is_completed(), sent_run.state
        # A worker logs "submitting" before it claims a run; the loser of a race logs "Aborted submission".
        taken = {}
        for name in ("worker-a", "worker-b"):
            text = logs[name].read_text(errors="replace")
            submitted = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", text))
            aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", text))
            taken[name] = (submitted - aborted) & {str(r.id) for r in runs}  # the duty runs (the dispatcher's aside)
        # Each run is taken by exactly one worker. Which worker takes which is the workers' race:
        # a fast worker may take both one after the other, so the split is not asserted.
        claimed = sorted(run_id for ids in taken.values() for run_id in ids)
        assert claimed == sorted(str(r.id) for r in runs), taken

        duty = next(d for d in load_catalog().duties.values() if d.key == DUTY)
        kinds = [k.value for k in duty.carrier.unit_kinds]
        roles = [r.value for r in duty.carrier.roles]
        engine = sa.create_engine(pingan_url)
        with engine.connect() as conn:
            # What one run must create, counted straight from the organisation tables: a task per
            # school of the duty's kinds, and one message to each person holding its roles there.
            schools = conn.execute(sa.text("select count(*) from unit where active and kind = any(:k)"), {"k": kinds}).scalar()
            people = conn.execute(sa.text(
                "select count(distinct r.person_id) from role r join unit u on u.id = r.unit_id "
                "join person p on p.id = r.person_id where u.active and p.active and u.kind = any(:k) and r.role = any(:r)"),
                {"k": kinds, "r": roles}).scalar()
            tasks = conn.execute(sa.text("select count(*) from occurrence where duty_key = :d"), {"d": DUTY}).scalar()
            reminded = conn.execute(sa.text(
                "select count(*), count(distinct person_id) from notice where duty_key = :d"), {"d": DUTY}).one()
            sent = conn.execute(sa.text("select count(*) from message where status = 'sent'")).scalar()
        engine.dispose()
        assert schools > 0 and tasks == schools, "one task per school, however many runs"
        assert reminded == (people, people), "one reminder per person responsible, however many runs"
        lines = [json.loads(line) for line in (home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(lines) == sent == people, "every message is written to the local outbox exactly once"
    finally:
        for proc in reversed(procs):  # the workers, then the server
            stop_group(proc, 30)
