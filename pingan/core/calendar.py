"""Working days in China, checked for coverage rather than assumed.

Four sources, in order, chosen per year:

1. ``local`` — the operator's local holiday file (it wins for the years it declares): the
   State Council's notice typed in once (``pingan calendar template`` / ``import``);
2. ``chinese_calendar`` — the package (2004–2026 in 1.11.0; the State Council publishes next
   year's arrangement around November, and the package follows some weeks later);
3. ``holidays`` — the statutory days of the ``holidays`` package's China calendar (元旦, 除夕 and
   春节 初一–初三, 清明, 劳动节 ×2, 端午, 中秋, 国庆 ×3). These are the law (全国年节及纪念日放假办法),
   but the make-up working days (调休) and bridging days are not: the year is *provisional*;
4. ``weekends`` — plain weekends, only where even the statutory days are unknown.

Official sources are 1 and 2; a provisional or weekend year logs a loud warning once per year
and process, so nobody mistakes a guess for the State Council's notice.

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

# The provenance of each year, best first; the first two are official.
SOURCES = ("local", "chinese_calendar", "holidays", "weekends")
OFFICIAL = frozenset({"local", "chinese_calendar"})

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
        """Which source decides the days of ``year``: local, chinese_calendar, holidays or weekends."""
        if year in self.local_years:
            return "local"
        if _cc_covers(year):
            return "chinese_calendar"
        if statutory_days(year):
            return "holidays"
        return "weekends"

    def is_official(self, year: int) -> bool:
        """True when the State Council's arrangement for ``year`` is known (local file or chinese-calendar)."""
        return self.source(year) in OFFICIAL

    def provisional_days(self, year: int) -> dict[dt.date, str]:
        """The statutory days ``year`` is taken to have off while no official source covers it."""
        return dict(statutory_days(year)) if self.source(year) == "holidays" else {}

    def is_workday(self, day: dt.date) -> bool:
        source = self.source(day.year)
        if source == "local":
            if day in self.workdays:
                return True
            return day not in self.holidays and day.weekday() < 5
        if source == "chinese_calendar":
            return _cc_is_workday(day)
        self._warn(day.year, source)
        if source == "holidays" and day in statutory_days(day.year):
            return False
        return day.weekday() < 5

    def _warn(self, year: int, source: str) -> None:
        if year in self._warned:
            return
        self._warned.add(year)
        if source == "holidays":
            log.warning(
                "%s 年放假安排尚无正式来源：暂按法定节假日（holidays 包）计算，不含调休，属临时安排；"
                "国务院办公厅通知发布后请用 pingan calendar import 导入 / "
                "no official holiday arrangement for %s: using the statutory holidays (holidays package), "
                "without make-up working days, provisionally; import the State Council's notice with "
                "pingan calendar import",
                year, year,
            )
        else:
            log.warning(
                "节假日数据未覆盖 %s 年：暂按周末计算工作日，请在 %s 中补充当年放假安排 / "
                "no holiday data for %s: falling back to weekends; add that year to the local holiday file",
                year, "holidays.yaml", year,
            )

    def holiday_name(self, day: dt.date) -> str | None:
        source = self.source(day.year)
        if source == "local":
            return self.holidays.get(day)
        if source == "chinese_calendar":
            on, name = chinese_calendar.get_holiday_detail(day)
            return _CC_NAMES.get(name, name) if on and name else None
        if source == "holidays":
            return statutory_days(day.year).get(day)
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
def statutory_days(year: int) -> dict[dt.date, str]:
    """China's statutory days off in ``year`` per the ``holidays`` package, named as in pingan.

    Only the days the law fixes (``observed=False``): the package's guesses at bridging days are
    left out, as are make-up working days, which it does not know. 除夕 belongs to 春节.
    """
    try:
        import holidays
    except ImportError:  # pragma: no cover - a declared dependency; weekends remain
        return {}
    try:
        found = holidays.China(years=year, language="zh_CN", observed=False)
    except (NotImplementedError, ValueError):  # pragma: no cover
        return {}
    return {day: _STATUTORY_NAMES.get(name, name) for day, name in sorted(found.items())}


_STATUTORY_NAMES = {"农历除夕": "春节"}


@functools.lru_cache(maxsize=8192)
def _cc_is_workday(day: dt.date) -> bool:
    # chinese-calendar checks the date's range against its whole table on every call (≈ 40 µs):
    # a morning's remind steps ask about the same few days hundreds of thousands of times.
    return chinese_calendar.is_workday(day)


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
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise HolidayFileError(f"{path}:{where} cannot read: {getattr(exc, 'problem', None) or 'not YAML'}") from None
    except (OSError, ValueError) as exc:
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


# --- the State Council's notice, typed in once -------------------------------------------------

def template_text(year: int) -> str:
    """A holiday file for ``year`` to correct against the State Council's notice before import.

    It is filled with the statutory days of the ``holidays`` package, one entry per holiday,
    and an empty list of make-up working days: both are to be checked against the notice
    (国务院办公厅关于{year}年部分节假日安排的通知).
    """
    lines = [
        f"# {year} 年部分节假日安排：按国务院办公厅通知逐条核对、修改后，用 `pingan calendar import 本文件` 导入。",
        f"# Holiday arrangement of {year}: check every entry against the State Council's notice, then",
        "# import this file with `pingan calendar import FILE`.",
        "# holidays: 每个假期的起止日期（含周末连休）/ each break, first and last day off (weekends included)",
        "# workdays: 调休上班的周六、周日 / the Saturdays and Sundays that are make-up working days",
        f"years: [{year}]",
        "holidays:",
    ]
    for name, first, last in holiday_runs(statutory_days(year)):
        lines.append(f"  - {{name: {name}, from: {first.isoformat()}, to: {last.isoformat()}}}  # 待核对 / to check")
    lines.append("workdays: []  # 例如 / e.g. [YYYY-MM-DD, ...]")
    return "\n".join(lines) + "\n"


def read_import(path: Path) -> dict:
    """Read a file to import, stricter than the running file: every declared year has holidays
    and every make-up working day falls on a weekend. Raises HolidayFileError naming the place."""
    if not Path(path).is_file():
        raise HolidayFileError(f"{path}: no such file")
    data = _read_holiday_file(Path(path))
    for year in sorted(data["local_years"]):
        if not any(day.year == year for day in data["holidays"]):
            raise HolidayFileError(f"{path}: year {year} has no holidays")
    for day in sorted(data["workdays"]):
        if day.year not in data["local_years"]:
            raise HolidayFileError(f"{path}: workdays: {day} is outside the declared years {sorted(data['local_years'])}")
        if day.weekday() < 5:
            raise HolidayFileError(f"{path}: workdays: {day} is a weekday, not a Saturday or Sunday made a working day")
    return data


def merged_text(current: Path, imported: dict) -> str:
    """The local holiday file with the imported years replacing whatever it said about them."""
    base = _read_holiday_file(current) if current.is_file() else {"holidays": {}, "workdays": set(), "local_years": frozenset()}
    years = set(base["local_years"]) | set(imported["local_years"])
    holidays = {d: n for d, n in base["holidays"].items() if d.year not in imported["local_years"]}
    holidays.update(imported["holidays"])
    workdays = {d for d in base["workdays"] if d.year not in imported["local_years"]} | set(imported["workdays"])
    doc = {
        "years": sorted(years),
        "holidays": [{"name": n, "from": f.isoformat(), "to": t.isoformat()} for n, f, t in holiday_runs(holidays)],
        "workdays": [d.isoformat() for d in sorted(workdays)],
    }
    head = "# 本地节假日文件（由 pingan calendar import 写入）/ local holiday file (written by pingan calendar import)\n"
    return head + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def holiday_runs(days: dict[dt.date, str]) -> list[tuple[str, dt.date, dt.date]]:
    """Consecutive days of the same name joined into (name, first, last)."""
    runs: list[tuple[str, dt.date, dt.date]] = []
    for day, name in sorted(days.items()):
        if runs and runs[-1][0] == name and (day - runs[-1][2]).days == 1:
            runs[-1] = (name, runs[-1][1], day)
        else:
            runs.append((name, day, day))
    return runs


# From this day of the year on, next year's holidays are expected to be known (the State Council
# publishes them in late October or November); until they are, the safety section is reminded.
NOTICE_EXPECTED = (11, 1)


def calendar_warning(calendar: WorkCalendar, today: dt.date) -> int | None:
    """The year whose missing official arrangement deserves a warning on ``today``, or None.

    From 1 November on, next year is it while neither the local file nor chinese-calendar covers
    it; a current year still without an official source always is."""
    if not calendar.is_official(today.year):
        return today.year
    if (today.month, today.day) >= NOTICE_EXPECTED and not calendar.is_official(today.year + 1):
        return today.year + 1
    return None
