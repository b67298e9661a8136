"""``pingan up`` without a Prefect server: one main job per home (``<home>/mainjob.lock`` names the
holder; a dead holder's lock is taken over), and "up" only when the API shows every deployment READY."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pingan.cli import app
from pingan.cli.supervisor import LOCK_FILE, HomeLock, MainJobError
from pingan.core.settings import HOME_FILE


def test_a_second_holder_is_refused_with_the_first_ones_pid_and_ports(pingan_home):
    first = HomeLock(pingan_home)
    first.acquire(port=4300, web_port=8500)
    try:
        with pytest.raises(MainJobError) as refused:
            HomeLock(pingan_home).acquire(port=4400, web_port=8600)
        message = str(refused.value)
        assert f"进程 {os.getpid()}" in message and "4300" in message and "8500" in message
        assert "\n" not in message
    finally:
        first.release()
    again = HomeLock(pingan_home)  # released: the next job gets it
    again.acquire(port=4400, web_port=None)
    again.release()


def test_the_lock_of_a_dead_job_is_taken_over(pingan_home):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (pingan_home / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "port": 4200, "web_port": 8400}))
    lock = HomeLock(pingan_home)
    lock.acquire(port=4300, web_port=8500)
    try:
        assert lock.holder() == {**lock.holder(), "pid": os.getpid(), "port": 4300, "web_port": 8500}
    finally:
        lock.release()


def test_pingan_up_on_a_home_in_use_is_one_line_and_writes_nothing(pingan_home):
    holder = HomeLock(pingan_home)
    holder.acquire(port=4300, web_port=8500)
    try:
        result = CliRunner().invoke(app, ["up", "--demo", "--no-web", "--check", "--port", "4999"])
    finally:
        holder.release()
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "4300" in lines[0], result.output
    assert not (pingan_home / "pingan.db").exists() and not (pingan_home / HOME_FILE).exists()
    assert not (pingan_home / "logs").exists() and not (pingan_home / "prefect").exists()


class _FakeApi:
    """A loopback stand-in for the two Prefect API calls the readiness check makes."""

    def __init__(self, deployments: list[dict]):
        import http.server
        import threading

        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = len(api.deployments) if self.path.endswith("/count") else api.deployments
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.deployments = deployments
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def close(self):
        self.server.shutdown()


def test_it_is_ready_only_when_every_deployment_is_ready_and_polled_by_this_job():
    import datetime as dt

    from pingan.cli.supervisor import MainJob
    from pingan.core.settings import Settings

    since = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    after, before = (since + dt.timedelta(seconds=5)).isoformat(), (since - dt.timedelta(minutes=5)).isoformat()
    api = _FakeApi([{"status": "NOT_READY", "last_polled": None}] * 3)
    try:
        ready = MainJob(Settings())._deployments_ready({"PREFECT_API_URL": api.url}, 3, since)
        assert not ready()  # registered, not yet polled: the UI shows "Not Ready"
        api.deployments = [{"status": "READY", "last_polled": after}] * 2
        assert not ready()  # one still being registered
        api.deployments = [{"status": "READY", "last_polled": after}] * 2 + [{"status": "READY", "last_polled": before}]
        assert not ready()  # READY from an earlier job, not polled by this one yet
        api.deployments = [{"status": "READY", "last_polled": after}] * 3
        assert ready()
    finally:
        api.close()
