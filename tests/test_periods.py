"""Periods, key dates, windows and due dates moved by holidays: pure, no database."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pingan.core import calendar as calendar_module
from pingan.core.calendar import HolidayFileError, WorkCalendar
from pingan.core.cadence import Cadence, KeyDate, Window
from pingan.core.periods import Terms, key_date_days, parse_instant, period_at, periods_between, timing
from pingan.core.clock import TZ

D = dt.date
TERMS = Terms()


@pytest.mark.parametrize(
    "every, day, key, start, end",
    [
        ("daily", D(2026, 12, 31), "2026-12-31", D(2026, 12, 31), D(2026, 12, 31)),
        ("weekly", D(2027, 1, 1), "2026-W53", D(2026, 12, 28), D(2027, 1, 3)),
        ("weekly", D(2026, 11, 23), "2026-W48", D(2026, 11, 23), D(2026, 11, 29)),
        ("half_monthly", D(2026, 2, 15), "2026-02-H1", D(2026, 2, 1), D(2026, 2, 15)),
        ("half_monthly", D(2026, 2, 16), "2026-02-H2", D(2026, 2, 16), D(2026, 2, 28)),
        ("half_monthly", D(2028, 2, 29), "2028-02-H2", D(2028, 2, 16), D(2028, 2, 29)),
        ("monthly", D(2026, 12, 31), "2026-12", D(2026, 12, 1), D(2026, 12, 31)),
        ("quarterly", D(2026, 3, 31), "2026-Q1", D(2026, 1, 1), D(2026, 3, 31)),
        ("quarterly", D(2026, 4, 1), "2026-Q2", D(2026, 4, 1), D(2026, 6, 30)),
        ("quarterly", D(2026, 12, 31), "2026-Q4", D(2026, 10, 1), D(2026, 12, 31)),
        ("half_yearly", D(2026, 6, 30), "2026-H1", D(2026, 1, 1), D(2026, 6, 30)),
        ("half_yearly", D(2026, 7, 1), "2026-H2", D(2026, 7, 1), D(2026, 12, 31)),
        ("yearly", D(2026, 1, 1), "2026", D(2026, 1, 1), D(2026, 12, 31)),
        ("semester", D(2026, 9, 1), "2026-autumn", D(2026, 9, 1), D(2027, 1, 15)),
        ("semester", D(2027, 1, 15), "2026-autumn", D(2026, 9, 1), D(2027, 1, 15)),
        ("semester", D(2027, 3, 1), "2027-spring", D(2027, 3, 1), D(2027, 7, 15)),
    ],
)
def test_it_finds_the_period_of_a_day(every, day, key, start, end):
    period = period_at(every, day, TERMS)
    assert (period.key, period.start, period.end) == (key, start, end)


def test_it_has_no_semester_between_terms():
    assert period_at("semester", D(2026, 8, 1), TERMS) is None
    assert period_at("semester", D(2027, 2, 10), TERMS) is None


def test_it_reads_term_dates_from_settings():
    south = Terms(spring=("02-20", "07-05"), autumn=("08-31", "01-20"))
    assert period_at("semester", D(2027, 1, 18), south).key == "2026-autumn"
    assert period_at("semester", D(2027, 2, 20), south).key == "2027-spring"


def test_it_expands_twice_a_month_into_two_tasks():
    periods = periods_between(Cadence(every="monthly", times=2), D(2026, 11, 5), D(2026, 11, 6), TERMS, {})
    assert [p.key for p in periods] == ["2026-11#1", "2026-11#2"]


def test_it_lists_every_period_across_a_year_boundary():
    periods = periods_between(Cadence(every="quarterly"), D(2026, 12, 1), D(2027, 4, 2), TERMS, {})
    assert [p.key for p in periods] == ["2026-Q4", "2027-Q1", "2027-Q2"]


def test_it_skips_days_off_and_vacations_for_daily_duties_that_ask():
    cal = WorkCalendar()
    cadence = Cadence(every="daily", workdays_only=True, in_term_only=True)
    # 2026-10-01..07 is the National Day holiday; Sat 2026-10-10 is a make-up working day.
    keys = [p.key for p in periods_between(cadence, D(2026, 9, 30), D(2026, 10, 11), TERMS, {}, cal)]
    assert keys == ["2026-09-30", "2026-10-08", "2026-10-09", "2026-10-10"]
    summer = periods_between(cadence, D(2026, 7, 20), D(2026, 7, 24), TERMS, {}, cal)
    assert summer == []


KEY_DATES = {
    "safety_education_day": KeyDate(key="safety_education_day", name="安全教育日", name_en="x", month=3, weekday="mon", nth=-1),
    "fire_safety_day": KeyDate(key="fire_safety_day", name="消防日", name_en="x", month=11, day=9),
    "term_start": KeyDate(key="term_start", name="开学", name_en="x", term="start"),
}


@pytest.mark.parametrize("year, day", [(2026, D(2026, 3, 30)), (2027, D(2027, 3, 29)), (2021, D(2021, 3, 29))])
def test_it_puts_safety_education_day_on_the_last_monday_of_march(year, day):
    assert key_date_days(KEY_DATES["safety_education_day"], year, TERMS) == [(day, f"{year}-safety_education_day")]


def test_it_knows_term_start_key_dates():
    assert key_date_days(KEY_DATES["term_start"], 2026, TERMS) == [
        (D(2026, 3, 1), "2026-spring-term_start"), (D(2026, 9, 1), "2026-autumn-term_start"),
    ]


def test_it_lists_key_date_periods_in_range():
    cadence = Cadence(every="key_date", key_dates=("fire_safety_day", "safety_education_day"))
    periods = periods_between(cadence, D(2026, 11, 1), D(2027, 4, 1), TERMS, KEY_DATES)
    assert [p.key for p in periods] == ["2026-fire_safety_day", "2027-safety_education_day"]


def test_it_moves_a_due_date_off_a_holiday_to_the_next_working_day():
    cal = WorkCalendar()
    # Q3 ends Wed 2026-09-30, a working day: stays.
    q3 = period_at("quarterly", D(2026, 9, 30), TERMS)
    assert timing(q3, Window(), cal).due_at == dt.datetime(2026, 9, 30, 17, 30, tzinfo=TZ)
    # A task due 2026-10-01 (National Day) moves past the holiday to Thu 2026-10-08.
    day = period_at("daily", D(2026, 10, 1), TERMS)
    assert timing(day, Window(), cal).due_at == dt.datetime(2026, 10, 8, 17, 30, tzinfo=TZ)
    # Sunday 2026-10-11 is no make-up day: Monday.
    assert timing(period_at("daily", D(2026, 10, 11), TERMS), Window(), cal).due_at.date() == D(2026, 10, 12)


def test_it_counts_a_make_up_saturday_as_a_working_day():
    cal = WorkCalendar()
    # Sat 2026-10-10 is a 调休 working day after National Day: a due date on it stays.
    assert cal.is_workday(D(2026, 10, 10))
    day = period_at("daily", D(2026, 10, 10), TERMS)
    assert timing(day, Window(), cal).due_at.date() == D(2026, 10, 10)


def test_it_opens_windows_before_the_period_and_keeps_the_due_time():
    cal = WorkCalendar()
    period = period_at("monthly", D(2026, 11, 5), TERMS)
    t = timing(period, Window(opens_before=dt.timedelta(days=3), due_after=dt.timedelta(days=2), due_time=dt.time(12)), cal)
    assert t.opens_at == dt.datetime(2026, 10, 29, 0, 0, tzinfo=TZ)
    assert t.due_at == dt.datetime(2026, 12, 2, 12, 0, tzinfo=TZ)


def test_it_falls_back_to_weekends_loudly_where_no_data_covers_the_year(caplog, monkeypatch):
    # 2027 now takes the statutory days of the ``holidays`` package (tests/test_calendar.py);
    # weekends remain only where that package knows nothing of a year, as simulated here.
    monkeypatch.setattr(calendar_module, "statutory_days", lambda year: {})
    cal = WorkCalendar()
    assert cal.source(2027) == "weekends"
    with caplog.at_level(logging.WARNING, logger="pingan.core.calendar"):
        assert cal.is_workday(D(2027, 1, 1)) is True  # a Friday: really 元旦, unknown to the data
        assert cal.is_workday(D(2027, 1, 2)) is False
        cal.is_workday(D(2027, 1, 4))
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1  # once per year, not once per day


def test_it_prefers_the_local_holiday_file(tmp_path):
    path = tmp_path / "holidays.yaml"
    path.write_text(
        "years: [2027]\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-03}\nworkdays: [2027-01-09]\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.from_file(path)
    assert cal.source(2027) == "local" and cal.source(2026) == "chinese_calendar"
    assert not cal.is_workday(D(2027, 1, 1))
    assert cal.is_workday(D(2027, 1, 9))  # a Saturday made a working day
    assert cal.next_workday(D(2027, 1, 1)) == D(2027, 1, 4)
    assert cal.holiday_name(D(2027, 1, 2)) == "元旦"


@pytest.mark.parametrize(
    "text, message",
    [
        ("holidays: []\n", "needs 'years'"),
        ("years: [2027]\nholidays:\n  - {name: 元旦, from: 2027-01-01}\n", "holidays entry 1: needs name, from and to"),
        ("years: [2027]\nholidays:\n  - {name: 元旦, from: '2027-13-01', to: 2027-01-02}\n", "is not a date"),
        ("years: [2027]\nholidays:\n  - {name: x, from: 2028-01-01, to: 2028-01-02}\n", "outside the declared years"),
        ("years: [2027]\nworkdays: [2027-01-01]\nholidays:\n  - {name: x, from: 2027-01-01, to: 2027-01-01}\n", "also a holiday"),
    ],
)
def test_it_names_the_place_of_a_bad_holiday_file(tmp_path, text, message):
    path = tmp_path / "holidays.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayFileError) as err:
        WorkCalendar.from_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_it_finds_the_autumn_holiday_periods_of_2026():
    periods = WorkCalendar().holiday_periods(D(2026, 9, 20), D(2026, 10, 20))
    assert [(p.name, p.start, p.end) for p in periods] == [
        ("中秋节", D(2026, 9, 25), D(2026, 9, 27)),
        ("国庆节", D(2026, 10, 1), D(2026, 10, 7)),
    ]


def test_it_parses_as_of_in_shanghai():
    assert parse_instant("2026-11-23") == dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    assert parse_instant("2026-11-23T01:00:00+00:00") == dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    with pytest.raises(ValueError, match="is not a date"):
        parse_instant("tomorrow-ish")


def test_the_summer_break_follows_the_spring_term_only():
    # Issue 14 finding 1: "term: end" alone matched both terms' ends, so the summer 防溺水 duty got a
    # task due in January. The spring term ends 15 July (TERMS); the autumn term's 15 January is
    # the winter break and must not appear.
    summer = KeyDate(key="summer_break", name="暑假前", name_en="x", term="end", term_name="spring")
    assert key_date_days(summer, 2026, TERMS) == [(D(2026, 7, 15), "2026-spring-summer_break")]
    cadence = Cadence(every="key_date", key_dates=("summer_break",))
    periods = periods_between(cadence, D(2026, 1, 1), D(2027, 12, 31), TERMS, {"summer_break": summer})
    assert [(p.start, p.key) for p in periods] == [
        (D(2026, 7, 15), "2026-spring-summer_break"), (D(2027, 7, 15), "2027-spring-summer_break")]


def test_the_shipped_summer_break_key_date_is_the_end_of_the_spring_term():
    from pingan.core.settings import REPO_ROOT
    from pingan.duties.catalog import load_catalog

    kd = load_catalog(REPO_ROOT / "catalog").key_dates["summer_break"]
    assert [day.month for day, _ in key_date_days(kd, 2027, TERMS)] == [7]
