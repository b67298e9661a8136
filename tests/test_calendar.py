"""The 2027 fallback: local file → chinese-calendar → statutory holidays (provisional) → weekends.

Expected dates come from the law and the almanac, not from the code: 全国年节及纪念日放假办法
(as amended in 2024, in force 2025) gives 元旦 1 January, 春节 除夕 and 初一–初三, 劳动节 1–2 May,
国庆节 1–3 October; 春节 2027 (正月初一) falls on Saturday 6 February 2027, so 除夕 is Friday
5 February and 初三 Monday 8 February. 1 January 2027 is a Friday.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from typer.testing import CliRunner

from pingan.cli import app
from pingan.core import calendar as calendar_module
from pingan.core.calendar import WorkCalendar, calendar_warning

D = dt.date
SPRING_FESTIVAL_2027 = D(2027, 2, 6)
NEW_YEAR_2027 = D(2027, 1, 1)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_it_takes_2027_from_the_statutory_holidays_provisionally(caplog):
    cal = WorkCalendar()
    assert cal.source(2026) == "chinese_calendar" and cal.is_official(2026)
    assert cal.source(2027) == "holidays" and not cal.is_official(2027)
    assert NEW_YEAR_2027.weekday() == 4 and SPRING_FESTIVAL_2027.weekday() == 5
    with caplog.at_level(logging.WARNING, logger="pingan.core.calendar"):
        assert not cal.is_workday(NEW_YEAR_2027)
        assert cal.holiday_name(NEW_YEAR_2027) == "元旦"
        eve, third = SPRING_FESTIVAL_2027 - dt.timedelta(days=1), SPRING_FESTIVAL_2027 + dt.timedelta(days=2)
        assert not cal.is_workday(eve) and not cal.is_workday(third)  # a Friday and a Monday off
        assert cal.holiday_name(SPRING_FESTIVAL_2027) == "春节" and cal.holiday_name(eve) == "春节"
        assert cal.is_workday(D(2027, 1, 4)) and cal.is_workday(third + dt.timedelta(days=1))
    provisional = cal.provisional_days(2027)
    assert {NEW_YEAR_2027, SPRING_FESTIVAL_2027, D(2027, 5, 1), D(2027, 5, 2), D(2027, 10, 3)} <= set(provisional)
    assert cal.provisional_days(2026) == {}
    assert len([r for r in caplog.records if "2027" in r.getMessage()]) == 1  # once per year, not per day


def test_it_finds_the_new_year_and_spring_festival_periods_of_2027():
    periods = WorkCalendar().holiday_periods(D(2026, 12, 25), D(2027, 2, 28))
    assert [(p.name, p.start, p.end) for p in periods] == [
        ("元旦", D(2027, 1, 1), D(2027, 1, 3)),  # Friday plus the weekend
        ("春节", D(2027, 2, 5), D(2027, 2, 8)),  # 除夕 Friday to 初三 Monday
    ]


def test_an_imported_file_rules_over_the_statutory_days(tmp_path):
    path = tmp_path / "holidays.yaml"
    # a notice that gives 春节 11–17 February instead, with Sunday 7 February a make-up working day
    path.write_text("years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-11, to: 2027-02-17}\n"
                    "workdays: [2027-02-07]\n", encoding="utf-8")
    cal = WorkCalendar.from_file(path)
    assert cal.source(2027) == "local" and cal.is_official(2027) and cal.provisional_days(2027) == {}
    assert cal.is_workday(NEW_YEAR_2027)  # the file, not the package, decides
    assert cal.is_workday(D(2027, 2, 7)) and cal.is_workday(D(2027, 2, 8))
    assert not cal.is_workday(D(2027, 2, 11))


def test_it_falls_back_to_weekends_where_even_the_statutory_days_are_unknown(monkeypatch, caplog):
    monkeypatch.setattr(calendar_module, "statutory_days", lambda year: {})
    cal = WorkCalendar()
    assert cal.source(2027) == "weekends"
    with caplog.at_level(logging.WARNING, logger="pingan.core.calendar"):
        assert cal.is_workday(NEW_YEAR_2027) is True  # a Friday
        assert cal.is_workday(D(2027, 1, 2)) is False


@pytest.mark.parametrize("today, year", [
    (D(2026, 10, 31), None),   # before 1 November nothing is said
    (D(2026, 11, 1), 2027),    # from 1 November, next year without an official source
    (D(2026, 12, 31), 2027),
    (D(2027, 3, 1), 2027),     # and the current year, if it is still not official
])
def test_it_warns_from_the_first_of_november_while_next_year_is_not_official(today, year):
    assert calendar_warning(WorkCalendar(), today) == year


def test_an_imported_year_stops_the_warning(tmp_path):
    path = tmp_path / "holidays.yaml"
    path.write_text("years: [2027]\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-03}\n", encoding="utf-8")
    assert calendar_warning(WorkCalendar.from_file(path), D(2026, 11, 20)) is None


def test_the_template_lists_the_statutory_days_to_check_and_imports_as_it_stands(pingan_home):
    out = run("calendar", "template", "2027")
    assert out.exit_code == 0, out.output
    text = (pingan_home / "holidays-2027.yaml").read_text(encoding="utf-8")
    assert "years: [2027]" in text
    assert "{name: 元旦, from: 2027-01-01, to: 2027-01-01}" in text
    assert "{name: 春节, from: 2027-02-05, to: 2027-02-08}" in text
    assert "{name: 国庆节, from: 2027-10-01, to: 2027-10-03}" in text
    again = run("calendar", "template", "2027")
    assert again.exit_code == 2 and "不覆盖" in again.output  # never overwrites the operator's typing

    out = run("calendar", "import", str(pingan_home / "holidays-2027.yaml"))
    assert out.exit_code == 0, out.output
    cal = WorkCalendar.from_file(pingan_home / "holidays.yaml")
    assert cal.source(2027) == "local" and not cal.is_workday(SPRING_FESTIVAL_2027 + dt.timedelta(days=2))


def test_import_replaces_the_years_it_declares_and_keeps_the_others(pingan_home, tmp_path):
    (pingan_home / "holidays.yaml").write_text(
        "years: [2027, 2028]\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-01}\n"
        "  - {name: 元旦, from: 2028-01-01, to: 2028-01-03}\n", encoding="utf-8")
    notice = tmp_path / "notice.yaml"
    notice.write_text("years: [2027]\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-03}\n"
                      "  - {name: 春节, from: 2027-02-05, to: 2027-02-12}\nworkdays: [2027-02-20]\n", encoding="utf-8")
    out = run("calendar", "import", str(notice))
    assert out.exit_code == 0, out.output
    cal = WorkCalendar.from_file(pingan_home / "holidays.yaml")
    assert cal.local_years == {2027, 2028}
    assert not cal.is_workday(D(2027, 1, 3)) and not cal.is_workday(D(2027, 2, 12))
    assert cal.is_workday(D(2027, 2, 20))  # a Saturday made a working day
    assert cal.holiday_name(D(2028, 1, 3)) == "元旦"


@pytest.mark.parametrize("text, message", [
    ("years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-05}\n", "holidays entry 1: needs name, from and to"),
    ("years: [2027]\nholidays: []\n", "year 2027 has no holidays"),
    ("years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-05, to: 2027-02-12}\nworkdays: [2027-02-03]\n",
     "2027-02-03 is a weekday"),
    ("years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-05, to: 2027-02-12}\nworkdays: [2026-02-14]\n",
     "outside the declared years"),
    ("years: [2027\n", "cannot read"),
])
def test_a_broken_file_is_refused_with_one_line_and_nothing_written(pingan_home, tmp_path, text, message):
    notice = tmp_path / "notice.yaml"
    notice.write_text(text, encoding="utf-8")
    out = run("calendar", "import", str(notice))
    assert out.exit_code == 2
    assert message in out.output and str(notice) in out.output
    assert len(out.output.strip().splitlines()) == 1 and "Traceback" not in out.output
    assert not (pingan_home / "holidays.yaml").exists()


def test_status_names_the_source_of_each_year_and_the_provisional_days(pingan_home):
    out = CliRunner().invoke(app, ["calendar", "status", "--as-of", "2026-11-30"], terminal_width=200)
    assert out.exit_code == 0, out.output
    lines = {line.split("│")[1].strip(): line for line in out.output.splitlines() if line.count("│") > 2}
    assert "chinese-calendar" in lines["2026"]
    assert "holidays" in lines["2027"] and "春节 2027-02-05–2027-02-08" in out.output
    assert "2027 年放假安排尚无正式来源" in out.output.replace("\n", "")
