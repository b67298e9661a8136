"""Periods of every cadence and the windows of the tasks inside them, in Asia/Shanghai.

Pure functions of dates: no database, no Prefect. A period is a closed range of days with a
key that names it in the database and the UI (``2026-11``, ``2026-Q4``, ``2026-11-H2``,
``2026-W48``, ``2026-autumn``, ``2026-fire_safety_day``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pendulum

from pingan.core.calendar import WorkCalendar, calendar_warning
from pingan.core.clock import TZ, TZ_NAME, local
from pingan.core.cadence import Cadence, KeyDate, Window

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    key: str

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Terms:
    """School terms as MM-DD pairs; an autumn term ending in January ends the next year."""

    spring: tuple[str, str] = ("03-01", "07-15")
    autumn: tuple[str, str] = ("09-01", "01-15")

    def terms_of(self, year: int) -> list[Period]:
        """The spring term of ``year`` and the autumn term starting in ``year``."""
        out = []
        for name, (first, last) in (("spring", self.spring), ("autumn", self.autumn)):
            start = _mmdd(year, first)
            end = _mmdd(year, last)
            if end < start:
                end = _mmdd(year + 1, last)
            out.append(Period(start, end, f"{year}-{name}"))
        return out

    def term_at(self, day: dt.date) -> Period | None:
        for year in (day.year - 1, day.year):
            for term in self.terms_of(year):
                if day in term:
                    return term
        return None


def _mmdd(year: int, mmdd: str) -> dt.date:
    month, day = (int(x) for x in mmdd.split("-"))
    return dt.date(year, month, day)


def period_at(every: str, day: dt.date, terms: Terms) -> Period | None:
    """The period of a calendar cadence that contains ``day`` (None between terms)."""
    if every == "daily":
        return Period(day, day, day.isoformat())
    if every == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        iso = day.isocalendar()
        return Period(start, start + dt.timedelta(days=6), f"{iso.year}-W{iso.week:02d}")
    if every == "half_monthly":
        month_end = _last_day(day)
        if day.day <= 15:
            return Period(day.replace(day=1), day.replace(day=15), f"{day:%Y-%m}-H1")
        return Period(day.replace(day=16), month_end, f"{day:%Y-%m}-H2")
    if every == "monthly":
        return Period(day.replace(day=1), _last_day(day), f"{day:%Y-%m}")
    if every == "quarterly":
        q = (day.month - 1) // 3
        start = dt.date(day.year, 3 * q + 1, 1)
        return Period(start, _last_day(dt.date(day.year, 3 * q + 3, 1)), f"{day.year}-Q{q + 1}")
    if every == "half_yearly":
        if day.month <= 6:
            return Period(dt.date(day.year, 1, 1), dt.date(day.year, 6, 30), f"{day.year}-H1")
        return Period(dt.date(day.year, 7, 1), dt.date(day.year, 12, 31), f"{day.year}-H2")
    if every == "yearly":
        return Period(dt.date(day.year, 1, 1), dt.date(day.year, 12, 31), str(day.year))
    if every == "semester":
        return terms.term_at(day)
    raise ValueError(f"cadence {every!r} has no calendar periods")


def _last_day(day: dt.date) -> dt.date:
    nxt = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def key_date_days(kd: KeyDate, year: int, terms: Terms) -> list[tuple[dt.date, str]]:
    """The day(s) of a key date in ``year`` with their period keys."""
    if kd.term is not None:
        out = []
        for term in terms.terms_of(year):
            if kd.term_name is not None and not term.key.endswith(f"-{kd.term_name}"):
                continue
            day = term.start if kd.term == "start" else term.end
            out.append((day, f"{term.key}-{kd.key}"))
        return out
    if kd.day is not None:
        return [(dt.date(year, kd.month, kd.day), f"{year}-{kd.key}")]
    weekday = _WEEKDAYS.index(kd.weekday)
    days = [d for d in _month_days(year, kd.month) if d.weekday() == weekday]
    return [(days[kd.nth - 1] if kd.nth > 0 else days[kd.nth], f"{year}-{kd.key}")]


def _month_days(year: int, month: int) -> list[dt.date]:
    first = dt.date(year, month, 1)
    return [first + dt.timedelta(days=n) for n in range((_last_day(first) - first).days + 1)]


def periods_between(
    cadence: Cadence, first: dt.date, last: dt.date, terms: Terms, key_dates: dict[str, KeyDate],
    calendar: WorkCalendar | None = None,
) -> list[Period]:
    """Every period of ``cadence`` that intersects [first, last], in order, ``times`` expanded."""
    out: list[Period] = []
    if cadence.every == "key_date":
        for name in cadence.key_dates:
            for year in range(first.year - 1, last.year + 2):
                for day, key in key_date_days(key_dates[name], year, terms):
                    if first <= day <= last:
                        out.append(Period(day, day, key))
    elif cadence.every in ("holiday", "event"):
        raise ValueError(f"cadence {cadence.every!r} is not planned by periods")
    else:
        day = first
        seen: set[str] = set()
        while day <= last:
            period = period_at(cadence.every, day, terms)
            if period is None:  # between terms
                day += dt.timedelta(days=1)
                continue
            if period.key not in seen and _keeps(cadence, period, terms, calendar):
                seen.add(period.key)
                out.append(period)
            day = period.end + dt.timedelta(days=1)
    out.sort()
    if cadence.times > 1:
        out = [Period(p.start, p.end, f"{p.key}#{i}") for p in out for i in range(1, cadence.times + 1)]
    return out


def _keeps(cadence: Cadence, period: Period, terms: Terms, calendar: WorkCalendar | None) -> bool:
    if cadence.in_term_only and terms.term_at(period.start) is None:
        return False
    if cadence.only_while is not None and calendar is not None and not condition_holds(cadence, period.start, calendar):
        return False
    if cadence.workdays_only and calendar is not None and cadence.every == "daily":
        return calendar.is_workday(period.start)
    return True


def condition_holds(cadence: Cadence, day: dt.date, calendar: WorkCalendar) -> bool:
    """Whether ``cadence.only_while`` holds on ``day`` (True for a cadence without condition)."""
    if cadence.only_while == "calendar_unofficial":
        return calendar_warning(calendar, day) is not None
    return True


@dataclass(frozen=True)
class Timing:
    opens_at: dt.datetime
    due_at: dt.datetime


def timing(period: Period, window: Window, calendar: WorkCalendar) -> Timing:
    """When the task of ``period`` opens and is due; a due day off moves to the next working day."""
    opens = period.start - window.opens_before
    if window.due_within is not None:
        due_day = min(period.start + window.due_within - dt.timedelta(days=1), period.end)
    else:
        due_day = period.end + window.due_after
    if window.shift_to_workday:
        due_day = calendar.next_workday(due_day)
    opens_at = dt.datetime.combine(opens, dt.time(0, 0), tzinfo=TZ)
    due_at = dt.datetime.combine(due_day, window.due_time, tzinfo=TZ)
    return Timing(opens_at=opens_at, due_at=due_at)



def parse_instant(text: str) -> dt.datetime:
    """An ``as_of`` from the command line: a date (09:00 that day) or an ISO datetime, Asia/Shanghai."""
    text = text.strip()
    try:
        if len(text) == 10:  # a bare date
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(9, 0), tzinfo=TZ)
        value = pendulum.parse(text, tz=TZ_NAME)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        raise ValueError(f"{text!r} is not a date (2026-11-23) or a datetime (2026-11-23T09:00)") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{text!r} is not a date (2026-11-23) or a datetime (2026-11-23T09:00)")
    return local(value)


def days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    for n in range((last - first).days + 1):
        yield first + dt.timedelta(days=n)
