"""The safety section's daily check of next year's holidays, from 1 November until they are official.

Dates by hand: 1 November 2026 is a Sunday, so the first task is Monday 2 November (due 17:30, one
reminder at 14:30, grace 1 day: escalation starts Tuesday 3 November 17:30). chinese-calendar
1.11.0 ends with 2026, so 2027 is not official until the notice is imported.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from factories import at

from models import Escalation, Occurrence, Role, Unit, Waiver
from pingan.core.db import session_scope
from pingan.core.settings import REPO_ROOT, Settings
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import load_catalog
from pingan.duties.runtime import build_runtime
from pingan.duties.workflow import cycle

DUTY = "erdao-holiday-calendar-check"


def runtime(tmp_path):
    settings = Settings(catalog_dir=REPO_ROOT / "catalog", holiday_file=tmp_path / "holidays.yaml", send_backoff=0)
    return build_runtime(settings, load_catalog(REPO_ROOT / "catalog"))


@pytest.fixture
def org(ids):
    with session_scope() as session:  # the safety deputy is in charge of the safety section (分管)
        session.add(Role(person_id=ids["dep-a"], unit_id=ids["SAFE"], role="in_charge"))
    return ids


def tasks(session) -> list[tuple]:
    O, U = Occurrence.__table__, Unit.__table__
    return session.execute(sa.select(U.c.code, O.c.period_key).join(U, U.c.id == O.c.unit_id)
                           .where(O.c.duty_key == DUTY).order_by(O.c.period_key)).all()


def escalated(session) -> list[tuple]:
    E, O = Escalation.__table__, Occurrence.__table__
    return [(r.period_key, r.level, sorted(r.recipients)) for r in session.execute(
        sa.select(O.c.period_key, E.c.level, E.c.recipients).join(O, O.c.id == E.c.occurrence_id)
        .where(O.c.duty_key == DUTY).order_by(O.c.period_key, E.c.level))]


def test_the_safety_section_checks_each_working_day_from_november_and_escalates_up(tmp_path, org, sent):
    rt = runtime(tmp_path)
    cycle(rt, DUTY, at("2026-10-30"))
    cycle(rt, DUTY, at("2026-11-01"))  # a Sunday
    with session_scope() as session:
        assert tasks(session) == []
    cycle(rt, DUTY, at("2026-11-02", "15:00"))
    dispatch(rt, at("2026-11-02", "15:00"))
    with session_scope() as session:
        assert tasks(session) == [("SAFE", "2026-11-02")]
    assert [url.rsplit("/", 1)[1] for url, *_ in sent.calls] == ["safe-head"]
    cycle(rt, DUTY, at("2026-11-03", "17:00"))
    with session_scope() as session:
        assert escalated(session) == []
    cycle(rt, DUTY, at("2026-11-04", "09:00"))
    cycle(rt, DUTY, at("2026-11-06", "09:00"))
    with session_scope() as session:
        found = escalated(session)
    # the head who missed it never, the deputy in charge first, the bureau principal two days later
    assert [e for e in found if e[0] == "2026-11-02"] == [("2026-11-02", 1, [org["dep-a"]]), ("2026-11-02", 2, [org["chief"]])]
    assert all(org["safe-head"] not in e[2] for e in found)


def test_an_imported_notice_ends_the_checks_and_settles_the_open_ones(tmp_path, org, sent):
    rt = runtime(tmp_path)
    cycle(rt, DUTY, at("2026-11-02", "10:00"))
    cycle(rt, DUTY, at("2026-11-03", "10:00"))
    (tmp_path / "holidays.yaml").write_text(
        "years: [2027]\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-03}\n", encoding="utf-8")
    rt = runtime(tmp_path)
    cycle(rt, DUTY, at("2026-11-04", "10:00"))
    cycle(rt, DUTY, at("2026-11-20", "10:00"))
    with session_scope() as session:
        assert [t[1] for t in tasks(session)] == ["2026-11-02", "2026-11-03"]  # no task after the import
        assert escalated(session) == []  # nobody is chased about the days before
        assert session.scalar(sa.select(sa.func.count()).select_from(Waiver)) == 2


def test_status_prints_the_warning_from_the_first_of_november(migrated_db):
    from typer.testing import CliRunner

    from pingan.cli import app

    def status(day: str) -> str:
        out = CliRunner().invoke(app, ["status", "--as-of", day], terminal_width=240)
        assert out.exit_code == 0, out.output
        return out.output.replace("\n", "")

    assert "2027 年放假安排尚无正式来源" in status("2026-11-30")
    assert "尚无正式来源" not in status("2026-10-30")
