"""A demo home stays a demo home; a real one is checked before anything is written.

``pingan init --demo`` records in the home that it is a demo, so the README's commands work on it
with no variable; a home without that record and without PINGAN_SECRET_KEY refuses every command
that signs links with one line, exit code 2, and leaves the database as it was.
"""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from pingan.cli import app
from pingan.core.settings import HOME_FILE, Settings, record_in_home, reset_settings
from pingan.duties.runtime import reset_runtime

# The README's examples, with instants so that they do something (tasks, messages, escalations).
README_COMMANDS = [
    ("run", "bureau-principal-quarterly-inspection", "--as-of", "2026-10-09T09:00", "--local"),
    ("dispatch", "--as-of", "2026-10-09T09:00"),
    ("status",),
    ("outbox",),
    ("replay", "--from", "2026-10-01", "--to", "2026-10-01", "--flows", "holiday-watch,outbox-dispatch"),
    ("sensitive-period", "start", "--name", "岁末年初", "--from", "2026-12-14", "--to", "2026-12-31", "--scope", "all",
     "--duties", "bureau-principal-quarterly-inspection,bureau-leader-quarterly-inspection", "--frequency", "weekly",
     "--as-of", "2026-12-10T09:00"),
    ("sensitive-period", "list"),
    ("incident", "report", "--unit", "DH-S001", "--at", "2026-10-03T10:00", "--category", "溺水", "--severity", "一般"),
    ("incident", "phone", "1", "--at", "2026-10-03T10:20"),
    ("incident", "written", "1", "--at", "2026-10-03T11:45"),
    ("watch", "add", "--name", "高考期间", "--from", "2027-06-07", "--to", "2027-06-08", "--as-of", "2027-05-20T09:00"),
    ("hazard", "report", "--unit", "DH-S001", "--place", "教学楼二楼", "--description", "护栏松动", "--level", "一般",
     "--rectifier", "DH-S001-02", "--by", "DH-S001-01", "--as-of", "2026-10-12T10:00"),
    ("report", "--period", "2026-Q3", "--as-of", "2026-10-09T09:00"),
    ("evidence", "list"),
]

# Of those, the ones that write (and most of them sign links in the messages they queue).
WRITING_COMMANDS = [args for args in README_COMMANDS
                    if args[0] in {"run", "dispatch", "replay", "hazard", "report"} or args[1:2] in {("start",), ("report",), ("add",)}]


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def fresh_settings() -> None:
    reset_settings()
    reset_runtime()


@pytest.fixture
def no_demo_variable(monkeypatch, pingan_home):
    """The conftest turns demo mode on with PINGAN_DEMO=1: here only the home may say so."""
    monkeypatch.delenv("PINGAN_DEMO", raising=False)
    monkeypatch.delenv("PINGAN_SECRET_KEY", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    fresh_settings()
    yield pingan_home
    fresh_settings()


def dump(home) -> list[str]:
    with sqlite3.connect(home / "pingan.db") as conn:
        return list(conn.iterdump())


def test_it_runs_every_readme_command_on_a_demo_home_without_a_variable(no_demo_variable, tmp_path, monkeypatch):
    home = no_demo_variable
    monkeypatch.chdir(tmp_path)
    code, output = invoke("init", "--demo")
    assert code == 0, output
    fresh_settings()  # as a new process would: PINGAN_DEMO is gone, the home remembers
    monkeypatch.delenv("PINGAN_DEMO", raising=False)
    assert Settings().demo
    for args in README_COMMANDS:
        fresh_settings()
        code, output = invoke(*args)
        assert code == 0 and "Traceback" not in output and "PINGAN_SECRET_KEY" not in output, (args, output)
    with sqlite3.connect(home / "pingan.db") as conn:
        assert conn.execute("select count(*) from sensitive_period").fetchone()[0] == 1
        assert conn.execute("select count(*) from incident").fetchone()[0] == 1
        assert conn.execute("select count(*) from message").fetchone()[0] > 0
    assert (home / "demo-secret.key").exists()  # links were signed with this home's demo key


def test_a_variable_wins_over_what_the_home_recorded(no_demo_variable, monkeypatch):
    home = no_demo_variable
    record_in_home(home, demo=True, base_url="http://127.0.0.1:8555")
    assert Settings().demo and Settings().base_url == "http://127.0.0.1:8555"
    monkeypatch.setenv("PINGAN_DEMO", "0")
    monkeypatch.setenv("PINGAN_BASE_URL", "https://anquan.example.cn")
    assert not Settings().demo and Settings().base_url == "https://anquan.example.cn"


def test_an_unreadable_home_record_is_one_line(no_demo_variable):
    (no_demo_variable / HOME_FILE).write_text("{not json", encoding="utf-8")
    code, output = invoke("status")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and HOME_FILE in lines[0] and "Traceback" not in output


@pytest.mark.parametrize("args", WRITING_COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_a_home_that_is_no_demo_refuses_without_a_key_and_changes_nothing(no_demo_variable, tmp_path, monkeypatch, args):
    home = no_demo_variable
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PINGAN_DEMO", "1")
    fresh_settings()
    assert invoke("init", "--demo")[0] == 0
    (home / HOME_FILE).unlink()  # now a real installation's home, with data, and no key set
    monkeypatch.delenv("PINGAN_DEMO")
    fresh_settings()
    before, files = dump(home), sorted(p.name for p in home.rglob("*"))
    code, output = invoke(*args)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "PINGAN_SECRET_KEY" in lines[0] and "Traceback" not in output, output
    assert dump(home) == before
    assert sorted(p.name for p in home.rglob("*")) == files
