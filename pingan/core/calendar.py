"""Working days in China, checked for coverage rather than assumed.

Three sources, in order: the operator's local holiday file (it wins for the years it
declares), chinese-calendar (2004–2026 in 1.11.0; the State Council publishes next year's
holidays around November), and — where neither covers a year — plain weekends, with a
loud warning once per year and process so nobody mistakes a guess for the law.

Local holiday file (YAML, default ``$PINGAN_HOME/holidays.yaml``)::

    years: [2027]                 # years this file fully describes
    holidays:
      - {name: 元旦, from: 2027-01-01, to: 2027-01-01}
      - {name: 春节, from: 2027-02-06, to: 2027-02-12}
    workdays: [2027-02-14]        # make-up working days (调休) on a weekend
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import chinese_calendar
import yaml

log = logging.getLogger("pingan.core.calendar")

_CC_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节", "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


class HolidayFileError(ValueError):
    """The local holiday file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class HolidayPeriod:
    """A run of consecutive days off that contains a public holiday (weekends joined in)."""

    name: str
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}-{self.name}"


@dataclass
class WorkCalendar:
    holidays: dict[dt.date, str] = field(default_factory=dict)  # from the local file
    workdays: set[dt.date] = field(default_factory=set)
    local_years: frozenset[int] = frozenset()
    _warned: set[int] = field(default_factory=set)

    @classmethod
    def from_file(cls, path: Path | None) -> WorkCalendar:
        if path is None or not Path(path).is_file():
            return cls()
        return cls(**_read_holiday_file(Path(path)))

    def source(self, year: int) -> str:
        """Which source decides the days of ``year``: local, chinese_calendar or weekends."""
        if year in self.local_years:
            return "local"
        if _cc_covers(year):
            return "chinese_calendar"
        return "weekends"

    def is_workday(self, day: dt.date) -> bool:
        source = self.source(day.year)
        if source == "local":
            if day in self.workdays:
                return True
            return day not in self.holidays and day.weekday() < 5
        if source == "chinese_calendar":
            return chinese_calendar.is_workday(day)
        if day.year not in self._warned:
            self._warned.add(day.year)
            log.warning(
                "节假日数据未覆盖 %s 年：暂按周末计算工作日，请在 %s 中补充当年放假安排 / "
                "no holiday data for %s: falling back to weekends; add that year to the local holiday file",
                day.year, "holidays.yaml", day.year,
            )
        return day.weekday() < 5

    def holiday_name(self, day: dt.date) -> str | None:
        source = self.source(day.year)
        if source == "local":
            return self.holidays.get(day)
        if source == "chinese_calendar":
            on, name = chinese_calendar.get_holiday_detail(day)
            return _CC_NAMES.get(name, name) if on and name else None
        return None

    def next_workday(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a working day, else the next one."""
        for _ in range(60):
            if self.is_workday(day):
                return day
            day += dt.timedelta(days=1)
        raise RuntimeError(f"no working day within 60 days after {day}")  # a broken holiday file

    def holiday_periods(self, start: dt.date, end: dt.date) -> list[HolidayPeriod]:
        """Named holiday periods intersecting [start, end]: a holiday plus the days off around it."""
        periods: list[HolidayPeriod] = []
        day = start - dt.timedelta(days=10)
        while day <= end + dt.timedelta(days=10):
            name = self.holiday_name(day)
            if name is None:
                day += dt.timedelta(days=1)
                continue
            first = day
            while not self.is_workday(first - dt.timedelta(days=1)):
                first -= dt.timedelta(days=1)
            last = day
            while not self.is_workday(last + dt.timedelta(days=1)):
                last += dt.timedelta(days=1)
            if last >= start and first <= end and (last - first).days >= 2:
                periods.append(HolidayPeriod(name=name, start=first, end=last))
            day = last + dt.timedelta(days=1)
        return periods


@functools.cache
def _cc_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _date(value, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise HolidayFileError(f"{where}: {value!r} is not a date like 2027-01-01") from None


def _read_holiday_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise HolidayFileError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("years"), list):
        raise HolidayFileError(f"{path}: needs 'years', the list of years the file describes")
    unknown = set(data) - {"years", "holidays", "workdays"}
    if unknown:
        raise HolidayFileError(f"{path}: unknown key(s) {sorted(unknown)}")
    years = set()
    for y in data["years"]:
        if not isinstance(y, int) or not 2000 <= y <= 2100:
            raise HolidayFileError(f"{path}: years: {y!r} is not a year")
        years.add(y)
    holidays: dict[dt.date, str] = {}
    for i, entry in enumerate(data.get("holidays") or [], 1):
        where = f"{path}: holidays entry {i}"
        if not isinstance(entry, dict) or not {"name", "from", "to"} <= set(entry):
            raise HolidayFileError(f"{where}: needs name, from and to")
        first, last = _date(entry["from"], where), _date(entry["to"], where)
        if last < first or (last - first).days > 31:
            raise HolidayFileError(f"{where}: 'to' must be on or after 'from', within 31 days")
        for n in range((last - first).days + 1):
            day = first + dt.timedelta(days=n)
            if day.year not in years:
                raise HolidayFileError(f"{where}: {day} is outside the declared years {sorted(years)}")
            holidays[day] = str(entry["name"])
    workdays = set()
    for i, value in enumerate(data.get("workdays") or [], 1):
        day = _date(value, f"{path}: workdays entry {i}")
        if day in holidays:
            raise HolidayFileError(f"{path}: workdays entry {i}: {day} is also a holiday")
        workdays.add(day)
    return {"holidays": holidays, "workdays": workdays, "local_years": frozenset(years)}
