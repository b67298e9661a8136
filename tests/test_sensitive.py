"""Key sensitive periods (重点敏感时期): tighter tasks for a scope, announced once, ending by themselves.

The test catalog's ``leader-inspection`` is quarterly and says it tightens to weekly; the two
bureau leaders (副局长甲, 副局长乙) carry it, one task each. ``school-meeting`` is monthly for the
two schools and does not say how it tightens, so a period must give ``--frequency`` for it.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from factories import at, make_catalog_dir, make_org, make_runtime
from typer.testing import CliRunner

from models import Notice, Occurrence
from pingan.duties.workflow import cycle
from pingan.duties import service
from pingan.cli import app
from pingan.core.db import session_scope
from pingan.core.periods import parse_instant
from pingan.duties.runtime import reset_runtime
from pingan.duties.sensitive import Request, SensitivePeriodError
from pingan.core.settings import reset_settings

D = parse_instant


@pytest.fixture
def rt(tmp_path, migrated_db):
    return make_runtime(tmp_path)


@pytest.fixture(autouse=True)
def _quiet(sent):
    """Every test here sends to the recording double."""


def tight(session, duty: str) -> list[tuple]:
    """(period key, unit id, person id, due date) of the sensitive-period tasks of ``duty``."""
    return sorted(session.execute(
        sa.select(Occurrence.period_key, Occurrence.unit_id, Occurrence.person_id, Occurrence.due_at)
        .where(Occurrence.duty_key == duty, Occurrence.sensitive_period_id.is_not(None))).tuples())


def request(**over) -> Request:
    base = dict(name="岁末年初", starts_on=D("2026-11-16").date(), ends_on=D("2026-11-29").date(),
                duties=("leader-inspection",))
    return Request(**{**base, **over})


def test_it_plans_weekly_tasks_for_the_leaders_announces_once_and_ends_by_itself(rt, ids):
    first = service.start_sensitive_period(rt, request(), at("2026-11-16"), actor="operator:test")
    assert first["created"] and first["planned"] == {"leader-inspection": 2} and first["announced"] == 2
    cycle(rt, "leader-inspection", at("2026-11-23"))  # the second week of the period
    cycle(rt, "leader-inspection", at("2026-11-30"))  # the day after it ended
    with session_scope() as session:
        rows = tight(session, "leader-inspection")
        notices = session.execute(sa.select(Notice.person_id).where(Notice.dedupe_key == f"sp:{first['id']}")).scalars()
        announced = sorted(notices)
    assert [(k, p) for k, _, p, _ in rows] == [
        ("2026-W47", ids["dep-a"]), ("2026-W47", ids["dep-b"]), ("2026-W48", ids["dep-a"]), ("2026-W48", ids["dep-b"])]
    # each week's task is due on the last working day of its week, never after the period
    assert {(k, due.date().isoformat(), due.strftime("%H:%M")) for k, _, _, due in rows} == {
        ("2026-W47", "2026-11-20", "17:30"), ("2026-W48", "2026-11-27", "17:30")}
    assert announced == sorted([ids["dep-a"], ids["dep-b"]])


def test_starting_it_again_changes_nothing(rt, ids, sent):
    first = service.start_sensitive_period(rt, request(), at("2026-11-16"), actor="operator:test")
    calls = len(sent.calls)
    again = service.start_sensitive_period(rt, request(), at("2026-11-16", "11:00"), actor="operator:test")
    assert (again["id"], again["created"], again["planned"], again["announced"]) == (first["id"], False, {"leader-inspection": 0}, 0)
    assert len(sent.calls) == calls


def test_overlapping_periods_combine_and_the_tightest_frequency_wins(rt, ids):
    service.start_sensitive_period(rt, request(), at("2026-11-16"), actor="operator:test")  # weekly
    service.start_sensitive_period(rt, request(name="考试期间", starts_on=D("2026-11-18").date(),
                                               ends_on=D("2026-11-19").date(), frequency="daily"),
                                   at("2026-11-18"), actor="operator:test")
    cycle(rt, "leader-inspection", at("2026-11-18", "11:00"))
    with session_scope() as session:
        rows = tight(session, "leader-inspection")
    keys = [k for k, _, _, _ in rows]
    # Monday's weekly tasks stay; on the 18th the daily period is tighter, so each leader gets one
    # daily task and no second weekly one.
    assert keys.count("2026-W47") == 2 and keys.count("2026-11-18") == 2 and len(rows) == 4


def test_a_scope_of_unit_codes_and_an_explicit_frequency(rt, ids):
    req = request(duties=("school-meeting",), units=("S1",), frequency="weekly")
    result = service.start_sensitive_period(rt, req, at("2026-11-16"), actor="operator:test")
    with session_scope() as session:
        rows = tight(session, "school-meeting")
    assert result["planned"] == {"school-meeting": 1}
    assert [(k, u) for k, u, _, _ in rows] == [("2026-W47", ids["S1"])]
    assert result["announced"] == 2  # 一小's principal and safety officer


def test_a_cancelled_period_plans_nothing_more(rt, ids):
    first = service.start_sensitive_period(rt, request(), at("2026-11-16"), actor="operator:test")
    from pingan.duties.sensitive import cancel

    with session_scope() as session:
        assert cancel(session, first["id"], actor="operator:test")
        assert not cancel(session, first["id"], actor="operator:test")
    cycle(rt, "leader-inspection", at("2026-11-23"))
    with session_scope() as session:
        assert {k for k, _, _, _ in tight(session, "leader-inspection")} == {"2026-W47"}


@pytest.mark.parametrize("over, message", [
    ({"ends_on": D("2026-11-01").date()}, "--to"),
    ({"duties": ("no-such-duty",)}, "no-such-duty"),
    ({"duties": ("school-meeting",)}, "--frequency"),
    ({"frequency": "hourly"}, "--frequency"),
    ({"name": " "}, "--name"),
])
def test_bad_requests_name_the_option_and_record_nothing(rt, ids, over, message):
    with pytest.raises(SensitivePeriodError, match=message):
        service.start_sensitive_period(rt, request(**over), at("2026-11-16"), actor="operator:test")
    with session_scope() as session:
        assert session.execute(sa.text("select count(*) from sensitive_period")).scalar() == 0


def test_the_command_line_starts_lists_and_cancels(tmp_path, migrated_db, monkeypatch):
    with session_scope() as session:
        make_org(session)
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(make_catalog_dir(tmp_path)))
    reset_settings()
    reset_runtime()
    runner = CliRunner()
    start = ["sensitive-period", "start", "--name", "岁末年初", "--from", "2026-11-16", "--to", "2026-11-29",
             "--duties", "leader-inspection", "--as-of", "2026-11-16T10:00"]
    done = runner.invoke(app, start)
    assert done.exit_code == 0, done.output
    assert "#1" in done.output and "新建任务 2" in done.output
    listed = json.loads(runner.invoke(app, ["sensitive-period", "list", "--json"]).output)
    assert [(p["id"], p["name"], p["duties"]) for p in listed] == [(1, "岁末年初", ["leader-inspection"])]
    bad = runner.invoke(app, [*start[:-6], "--to", "2026-11-01"])
    assert bad.exit_code == 2 and "--to" in bad.output and "Traceback" not in bad.output
    scope = runner.invoke(app, [*start, "--scope", "nowhere"])
    assert scope.exit_code == 2 and "nowhere" in scope.output
    assert runner.invoke(app, ["sensitive-period", "cancel", "1"]).exit_code == 0
    again = runner.invoke(app, ["sensitive-period", "cancel", "1"])
    assert again.exit_code == 2 and "#1" in again.output
