"""Errors a user can cause at the command line: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pingan.cli import app
from pingan.core.settings import reset_settings


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("错误：", "error:")), output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("name, value, named", [
    ("PINGAN_WORK_START", "25:00", "PINGAN_WORK_START"),
    ("PINGAN_SEND_CONCURRENCY", "0", "PINGAN_SEND_CONCURRENCY"),
    ("PINGAN_LOCALE", "fr", "PINGAN_LOCALE"),
])
def test_a_bad_setting_is_named(monkeypatch, name, value, named):
    monkeypatch.setenv(name, value)
    reset_settings()
    code, output = invoke("status")
    assert code == 2 and named in one_line_error(output)


def test_an_unreachable_database_is_named_without_its_password(monkeypatch):
    monkeypatch.setenv("PINGAN_DATABASE_URL", "postgresql+psycopg://pingan:s3cret@127.0.0.1:1/pingan")
    reset_settings()
    code, output = invoke("status")
    line = one_line_error(output)
    assert code == 2 and "127.0.0.1:1" in line and "s3cret" not in output


@pytest.mark.parametrize("key, why", [("changeme", "是占位符"), ("x", "不是十六进制或 base64"),
                                      ("c0ffee" * 5, "只有 15 字节"), ("demo-" + "ab12cd34" * 8, "是演示密钥")])
def test_a_weak_or_demo_secret_is_refused_outside_demo_mode_and_nothing_is_written(monkeypatch, pingan_home, key, why):
    monkeypatch.setenv("PINGAN_DEMO", "0")
    monkeypatch.setenv("PINGAN_SECRET_KEY", key)
    monkeypatch.setenv("PINGAN_HOME", str(pingan_home / "fresh"))
    reset_settings()
    code, output = invoke("up", "--no-web", "--check")
    line = one_line_error(output)
    assert code == 2 and line.count("PINGAN_SECRET_KEY") == 1 and why in line
    assert not (pingan_home / "fresh").exists()  # no home, no database, no demo key


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("args, named", [
    (("run", "no-such-duty", "--local"), "no-such-duty"),
    (("run", "school-monthly-safety-meeting", "--as-of", "yesterday", "--local"), "--as-of"),
    (("replay", "--from", "2026-13-01", "--to", "2026-12-01", "--no-send"), "--from"),
])
def test_bad_arguments_are_named(migrated_db, args, named):
    code, output = invoke(*args)
    assert code == 2 and named in one_line_error(output)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("args", [("run", "school-monthly-safety-meeting", "--as-of", "2026-11-10T09:00", "--local"),
                                  ("dispatch", "--as-of", "2026-11-10T09:00")])
def test_a_weak_key_stops_a_command_that_signs_links_before_it_writes(migrated_db, monkeypatch, args):
    import sqlalchemy as sa

    from pingan.duties.runtime import reset_runtime

    monkeypatch.setenv("PINGAN_DEMO", "0")
    monkeypatch.setenv("PINGAN_SECRET_KEY", "x")
    reset_settings()
    reset_runtime()
    code, output = invoke(*args)
    assert code == 2 and "PINGAN_SECRET_KEY" in one_line_error(output)
    with migrated_db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from occurrence")).scalar() == 0
        assert conn.execute(sa.text("select count(*) from duty")).scalar() == 0


def _at_80_columns(home, *args: str) -> str:
    """``pingan …`` in a terminal 80 columns wide (its own process: Rich reads COLUMNS at start)."""
    import os
    import subprocess
    import sys

    from rich.cells import cell_len

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update(PINGAN_HOME=str(home), COLUMNS="80", NO_COLOR="1")
    done = subprocess.run([sys.executable, "-m", "pingan", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert max(cell_len(line) for line in done.stdout.splitlines()) <= 80
    return done.stdout


def test_at_80_columns_keys_and_codes_are_never_cut(pingan_home, tmp_path, monkeypatch):
    from pingan.duties.catalog import load_catalog

    monkeypatch.chdir(tmp_path)
    assert invoke("init", "--demo")[0] == 0
    assert invoke("run", "bureau-principal-quarterly-inspection", "--as-of", "2026-10-09T09:00", "--local")[0] == 0
    words = set(_at_80_columns(pingan_home, "status").split())
    missing = [d.key for d in load_catalog().planned if d.key not in words]
    assert not missing, f"cut at 80 columns: {missing}"
    import sqlite3

    with sqlite3.connect(pingan_home / "pingan.db") as conn:
        codes = {c for (c,) in conn.execute("select distinct p.code from message m join person p on p.id = m.person_id")}
    assert codes
    words = set(_at_80_columns(pingan_home, "outbox", "--limit", "200").split())
    assert codes <= words, codes - words


def _cli(*args: str, locale: str) -> tuple[int, str]:
    """``pingan …`` in a process of its own under PINGAN_LOCALE (help is localized when the CLI loads)."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pingan-cli-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
        env.update(PINGAN_LOCALE=locale, COLUMNS="100", NO_COLOR="1", PINGAN_DEMO="1", PINGAN_HOME=home)
        done = subprocess.run([sys.executable, "-m", "pingan", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def test_every_option_of_every_command_has_help():
    import inspect

    def walk(typer_app, path=""):
        for command in typer_app.registered_commands:
            name = f"{path}{command.name or command.callback.__name__}"
            assert command.help, name
            for param, info in inspect.signature(command.callback).parameters.items():
                if hasattr(info.default, "help"):
                    yield name, param, info.default.help
        for group in typer_app.registered_groups:
            yield from walk(group.typer_instance, f"{path}{group.name} ")

    missing = [(command, param) for command, param, text in walk(app) if not text]
    assert not missing


CJK = __import__("re").compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")


@pytest.mark.parametrize("args", [("status", "--help"), ("run", "--help"), ("sensitive-period", "start", "--help"),
                                  ("incident", "report", "--help"), ("outbox", "--help"), ("up", "--help")])
def test_help_is_in_one_language(args):
    code, english = _cli(*args, locale="en")
    assert code == 0 and not CJK.findall(english), CJK.findall(english)
    code, chinese = _cli(*args, locale="zh-CN")
    assert code == 0 and CJK.search(chinese)
    # every English help line's words are gone from the Chinese help (the same lines, other side)
    assert "default now" not in chinese and "print JSON" not in chinese and " / " not in chinese


def test_an_error_is_in_one_language():
    code, english = _cli("run", "no-such-duty", "--local", locale="en")
    assert code == 2 and english.startswith("error: no duty 'no-such-duty'") and not CJK.search(english)
    code, chinese = _cli("run", "no-such-duty", "--local", locale="zh-CN")
    assert code == 2 and chinese.startswith("错误： 没有职责 'no-such-duty'") and "no duty" not in chinese
