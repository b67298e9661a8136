"""Time, in the one zone pingan works in: Asia/Shanghai.

The duties, the work calendar (chinese-calendar, the State Council's holidays) and every
deadline of the responsibility lists are Chinese, so the zone is a constant, not a setting:
every stored datetime is timezone-aware and every date is a date in Shanghai.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)


def now() -> dt.datetime:
    return dt.datetime.now(TZ)


def local(moment: dt.datetime) -> dt.datetime:
    """``moment`` in Asia/Shanghai; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: give a time zone")
    return moment.astimezone(TZ)


def at(day: dt.date, moment: dt.time) -> dt.datetime:
    """``moment`` on ``day`` in Asia/Shanghai."""
    return dt.datetime.combine(day, moment, tzinfo=TZ)
