"""The main job end to end: ``pingan up`` with a real Prefect server, served deployments and the automation.

One ``pingan up --demo`` for the whole module (about half a minute to start). It checks what the
operator relies on: every duty is a deployment with Shanghai schedules and slugs, a duty run is
four task runs with its artifacts (the dispatcher sends what it queued), a failed run reaches the safety section through the automation,
and SIGTERM stops everything while leaving the schedules active.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from deployments.build import all_specs
from deployments.duties import ALERT_DEPLOYMENT, AUTOMATION_NAME, DUTY_ENTRYPOINT
from pingan.duties.catalog import load_catalog
from pingan.cli.supervisor import free_port, poll

pytestmark = pytest.mark.timeout(600)

DUTY = "school-monthly-safety-meeting"
AS_OF = "2026-11-23T10:00:00+08:00"
# The next working morning's digest: the dispatcher sends what the duty run queued at AS_OF.
DIGEST = "2026-11-24T09:00:00+08:00"






class Job:
    def __init__(self, home: Path, port: int, web_port: int):
        self.home, self.port, self.web_port = home, port, web_port
        home.mkdir(parents=True, exist_ok=True)
        self.api = f"http://127.0.0.1:{port}/api"
        self.out = home / "up.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
        env.update(PINGAN_HOME=str(home), PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pingan", "up", "--demo", "--port", str(port), "--web-port", str(web_port)],
            env=env, stdout=self.out.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"pingan up exited {self.proc.returncode}:\n{self.output()}")
            return "pingan 已启动" in self.output()
        poll(ready, 420, "pingan up")  # a loaded machine registers the deployments slowly

    def pingan_db(self) -> sa.Engine:
        return sa.create_engine(f"sqlite:///{self.home / 'pingan.db'}")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("up") / "home"
    job = Job(home, free_port(), free_port())
    try:
        job.wait_ready()
        with temporary_settings(updates={PREFECT_API_URL: job.api}):
            yield job
    finally:
        if job.proc.poll() is None:
            job.proc.kill()
            job.proc.wait()


@pytest.fixture(scope="module")
def specs():
    return all_specs(load_catalog())


def test_every_duty_is_a_deployment_with_shanghai_schedules(job, specs):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments(limit=200)}
        automations = client.read_automations_by_name(AUTOMATION_NAME)
    assert set(deployments) == {s.name for s in specs}
    for spec in specs:
        got = deployments[spec.name]
        assert not got.paused
        assert sorted((s.schedule.cron, s.schedule.timezone, s.slug) for s in got.schedules) == sorted(
            (s.cron, s.timezone, s.slug) for s in spec.schedules)
        assert got.description == spec.description and set(got.tags) == set(spec.tags)
    assert len(automations) == 1 and automations[0].enabled
    alert = deployments[ALERT_DEPLOYMENT]
    assert automations[0].actions[0].deployment_id == alert.id


def test_it_says_it_is_up_only_when_the_api_shows_every_deployment_ready(job, specs):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        statuses = {d.name: str(getattr(d.status, "value", d.status)) for d in client.read_deployments(limit=200)}
    assert len(statuses) == len(specs) and set(statuses.values()) == {"READY"}, statuses


def test_a_second_main_job_on_the_same_home_is_refused(job):
    other, other_web = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update(PINGAN_HOME=str(job.home), NO_COLOR="1", COLUMNS="200")
    second = subprocess.run([sys.executable, "-m", "pingan", "up", "--demo", "--port", str(other), "--web-port", str(other_web)],
                            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert second.returncode == 2 and len(lines) == 1, lines
    assert f"进程 {job.proc.pid}" in lines[0] and f"Prefect 端口 {job.port}" in lines[0] and str(job.web_port) in lines[0]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", other)) != 0, "the second job started a Prefect server"


def test_a_duty_run_is_four_task_runs_with_its_artifacts(job, specs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment

    spec = next(s for s in specs if s.entrypoint == DUTY_ENTRYPOINT and s.parameters["duty"] == DUTY)
    run = run_deployment(f"duty-cycle/{spec.name}", parameters={"as_of": AS_OF}, timeout=240)
    assert run.state.is_completed(), run.state
    catalog = load_catalog()
    assert run.name == f"{catalog.duty(DUTY).name} 2026-11"
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    assert sorted(t.name.split("-")[0] for t in tasks) == sorted(["plan", "remind", "escalate", "publish"])
    keys = {a.key for a in artifacts}
    assert {f"duty-{DUTY}-status", f"duty-{DUTY}-notices", f"duty-{DUTY}-summary"} <= keys, keys
    with job.pingan_db().connect() as conn:
        created = conn.execute(sa.text("select count(*) from occurrence where duty_key = :d"), {"d": DUTY}).scalar()
        queued = conn.execute(sa.text("select count(*) from notice where duty_key = :d and message_id is null"),
                              {"d": DUTY}).scalar()
    assert created > 0 and queued > 0  # the duty run sends nothing: its notices wait for the digest


def test_pingan_run_with_the_api_is_a_run_of_the_duty_s_deployment(job, specs):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    duty = "bureau-principal-quarterly-inspection"
    spec = next(s for s in specs if s.entrypoint == DUTY_ENTRYPOINT and s.parameters["duty"] == duty)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update(PINGAN_HOME=str(job.home), PREFECT_API_URL=job.api, NO_COLOR="1", COLUMNS="200")  # no PINGAN_DEMO: the home says so
    done = subprocess.run([sys.executable, "-m", "pingan", "run", duty, "--as-of", AS_OF], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"duty-cycle/{spec.name}")
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    by_cli = [r for r in runs if "cli" in r.tags]
    printed = "".join(done.stdout.split())  # Rich wraps lines
    assert len(by_cli) == 1 and by_cli[0].state.is_completed() and "".join(by_cli[0].name.split()) in printed
    assert "本次运行/thisrun" in printed  # the run's summary artifact


def test_a_failed_duty_run_reaches_the_safety_section(job, specs):
    from prefect.deployments import run_deployment

    spec = next(s for s in specs if s.entrypoint == DUTY_ENTRYPOINT)
    run = run_deployment(f"duty-cycle/{spec.name}", parameters={"duty": "no-such-duty"}, timeout=240)
    assert run.state.is_failed(), run.state
    key = f"alert:prefect.flow-run.{run.id}"

    def alerted():
        with job.pingan_db().connect() as conn:
            return conn.execute(sa.text("select count(*) from notice where dedupe_key = :k and urgent"), {"k": key}).scalar()
    assert poll(alerted, 180, "the automation's alert") >= 1
    with job.pingan_db().connect() as conn:
        audit = conn.execute(sa.text("select count(*) from audit where action = 'run.alerted' and object_id = :i"),
                             {"i": f"prefect.flow-run.{run.id}"[:64]}).scalar()
    assert audit == 1


def test_the_evidence_page_answers_and_reminders_link_to_it(job):
    import json
    import re
    import urllib.request

    from prefect.deployments import run_deployment

    with urllib.request.urlopen(f"http://127.0.0.1:{job.web_port}/healthz", timeout=5) as response:
        assert response.status == 200
    run = run_deployment("outbox-dispatch/发送待发消息", parameters={"as_of": DIGEST}, timeout=240)
    assert run.state.is_completed(), run.state
    bodies = [json.loads(line)["body"] for line in (job.home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    links = [m.group(0) for body in bodies for m in [re.search(r"http://\S+/e/\S+", body)] if m]
    assert links and all(link.startswith(f"http://127.0.0.1:{job.web_port}/e/") for link in links)
    with urllib.request.urlopen(links[0], timeout=5) as response:
        page = response.read().decode()
    assert response.status == 200 and "学校每月安全稳定工作形势分析会议" in page


def test_sigterm_stops_everything_and_leaves_the_schedules_active(job):
    job.proc.send_signal(signal.SIGTERM)
    assert job.proc.wait(120) == 0, job.output()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", job.port)) != 0, "the Prefect server still answers"
    db = sqlite3.connect(job.home / "prefect" / "prefect.db")
    paused = db.execute("select count(*) from deployment where paused").fetchone()[0]
    inactive = db.execute("select count(*) from deployment_schedule where not active").fetchone()[0]
    scheduled = db.execute("select count(*) from flow_run where state_type = 'SCHEDULED'").fetchone()[0]
    assert (paused, inactive) == (0, 0)
    assert scheduled > 0, "serve deleted the scheduled runs on shutdown"
    serve_log = (job.home / "logs" / "serve.log").read_text(errors="replace")
    assert "SIGTERM received" in serve_log
    at = serve_log.find("Runner.astop' was never awaited")  # what Prefect's own SIGTERM handler left behind
    assert at < 0, serve_log[max(0, at - 1500):at + 300]
