"""Links point at the page that serves them: ``pingan up`` records its public address in the home.

Every process that composes a message (a served flow, the CLI, a replay) reads the home, so a
main job started with ``--web-port 8555`` gets links on port 8555 whoever composes them.
"""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from pingan.cli import app
from pingan.cli.supervisor import MainJob
from pingan.core.settings import Settings, home_record, record_in_home, reset_settings
from pingan.duties.runtime import reset_runtime


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def fresh() -> None:
    reset_settings()
    reset_runtime()


def test_the_main_job_links_to_its_own_page_unless_the_operator_set_an_address(pingan_home, monkeypatch):
    monkeypatch.delenv("PINGAN_BASE_URL", raising=False)
    record_in_home(pingan_home, base_url="http://127.0.0.1:8400")  # what an earlier job recorded
    assert MainJob(Settings(), web_port=8555).public_url == "http://127.0.0.1:8555"
    monkeypatch.setenv("PINGAN_BASE_URL", "https://anquan.example.cn")
    assert MainJob(Settings(), web_port=8555).public_url == "https://anquan.example.cn"


def test_messages_composed_from_the_cli_link_to_the_recorded_page(pingan_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PINGAN_BASE_URL", raising=False)
    fresh()
    assert invoke("init", "--demo")[0] == 0
    record_in_home(pingan_home, base_url="http://127.0.0.1:8555")  # as `pingan up --web-port 8555` does
    assert home_record(pingan_home) == {"demo": True, "base_url": "http://127.0.0.1:8555"}
    fresh()
    code, output = invoke("run", "school-monthly-safety-meeting", "--as-of", "2026-11-23T10:00", "--local")
    assert code == 0, output
    code, output = invoke("dispatch", "--as-of", "2026-11-24T09:00")
    assert code == 0, output
    bodies = [json.loads(line)["body"] for line in (pingan_home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    links = re.findall(r"https?://[^\s/]+/e/\S+", "\n".join(bodies))
    assert links and all(link.startswith("http://127.0.0.1:8555/e/") for link in links)
