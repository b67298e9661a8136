"""Report periods: what ``2026-Q4``, ``2026-H2``, ``2026-11``, ``2026`` or ``previous-quarter``
mean at an instant, in Asia/Shanghai. Pure."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pingan.core.clock import TZ, local
from pingan.core.i18n import say


class ReportError(ValueError):
    """A bad report request (the period, say); the message names it."""


@dataclass(frozen=True)
class ReportPeriod:
    key: str
    start: dt.date
    end: dt.date  # inclusive

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(0, 0), tzinfo=TZ)

    @property
    def ends_at(self) -> dt.datetime:
        """The first instant after the period (exclusive bound)."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(0, 0), tzinfo=TZ)

    def __contains__(self, moment: dt.datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)


def quarter_of(day: dt.date) -> ReportPeriod:
    q = (day.month - 1) // 3 + 1
    return ReportPeriod(f"{day.year}-Q{q}", dt.date(day.year, 3 * q - 2, 1), _month_end(day.year, 3 * q))


def previous_quarter(as_of: dt.datetime) -> ReportPeriod:
    """The quarter that ended last before ``as_of`` (on 3 January 2027: 2026-Q4)."""
    return quarter_of(quarter_of(local(as_of).date()).start - dt.timedelta(days=1))


def previous_week(as_of: dt.datetime) -> ReportPeriod:
    """Monday to Sunday of the ISO week before ``as_of``'s."""
    day = local(as_of).date()
    start = day - dt.timedelta(days=day.weekday() + 7)
    iso = start.isocalendar()
    return ReportPeriod(f"{iso.year}-W{iso.week:02d}", start, start + dt.timedelta(days=6))


def parse_period(text: str | None, as_of: dt.datetime) -> ReportPeriod:
    """``2026``, ``2026-H2``, ``2026-Q4``, ``2026-11``, ``previous-quarter`` (default) or ``previous-year``."""
    value = (text or "previous-quarter").strip()
    if value == "previous-quarter":
        return previous_quarter(as_of)
    if value == "previous-year":
        year = local(as_of).year - 1
        return ReportPeriod(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))
    m = re.fullmatch(r"(\d{4})(?:-(Q[1-4]|H[12]|\d{2}))?", value.upper())
    if m is None or not 2000 <= int(m.group(1)) <= 2100:
        raise ReportError(say(f"--period：{value!r} 不是报告期（如 2026、2026-H2、2026-Q4、2026-11）",
                              f"--period: {value!r} is not a period like 2026, 2026-H2, 2026-Q4 or 2026-11"))
    year, part = int(m.group(1)), m.group(2)
    if part is None:
        return ReportPeriod(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))
    if part.startswith("Q"):
        return quarter_of(dt.date(year, 3 * int(part[1]) - 2, 1))
    if part.startswith("H"):
        first = 1 if part == "H1" else 7
        return ReportPeriod(f"{year}-{part}", dt.date(year, first, 1), _month_end(year, first + 5))
    month = int(part)
    if not 1 <= month <= 12:
        raise ReportError(say(f"--period：{value!r} 的月份不在 01–12", f"--period: {value!r}: the month is not 01–12"))
    return ReportPeriod(f"{year}-{month:02d}", dt.date(year, month, 1), _month_end(year, month))
