"""One main job per home: ``<home>/mainjob.lock`` names the holder; a dead holder's lock is taken over."""

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
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
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
