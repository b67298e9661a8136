"""The time vocabulary of duties: durations, cadences, key dates and windows.

Plain data checked by pydantic, shared by the duty catalog (``pingan.duties.catalog``), the
hazard and watch rule files and the period arithmetic (``pingan.core.periods``), which is
why it lives below all of them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^(\d+)\s*([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
KEY_PATTERN = r"^[a-z][a-z0-9_-]{1,79}$"


def parse_duration(value: Any) -> dt.timedelta:
    """``"7d"``, ``"2h"``, ``"30m"`` (or a timedelta) → timedelta."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int) and value == 0:
        return dt.timedelta(0)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration like 7d, 2h or 30m")
    return dt.timedelta(**{_UNITS[match[2]]: int(match[1])})


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


class Spec(BaseModel):
    """A frozen data spec that refuses unknown fields (a typo in a YAML file is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _quoted_time(value: Any) -> Any:
    # YAML reads an unquoted 17:30 as the sexagesimal number 1050: refuse it loudly.
    if isinstance(value, (int, float)):
        raise ValueError("write the time in quotes, like '17:30' (unquoted, YAML reads it as a number)")
    return value


Clock = Annotated[dt.time, BeforeValidator(_quoted_time)]



CadenceName = Literal[
    "daily", "weekly", "half_monthly", "monthly", "quarterly", "half_yearly", "yearly",
    "semester", "key_date", "holiday", "event",
]
# Cadences a sensitive period may tighten a duty to, tightest first.
TIGHTENABLE: tuple[str, ...] = ("daily", "weekly", "half_monthly", "monthly", "quarterly")
# How many days a period of each cadence lasts, roughly; orders cadences by tightness.
CADENCE_DAYS = {
    "daily": 1, "weekly": 7, "half_monthly": 15, "monthly": 30, "quarterly": 91,
    "half_yearly": 182, "semester": 140, "yearly": 365, "key_date": 365, "holiday": 365, "event": 0,
}


class KeyDate(Spec):
    """A date in the year: fixed (month, day), the nth weekday of a month, or a term boundary."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str
    name_en: str
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    nth: int | None = Field(default=None, ge=-5, le=5)
    term: Literal["start", "end"] | None = None
    # With ``term``: only that term's boundary (the summer break follows the end of the spring
    # term only, the winter break the end of the autumn term); without it, both terms'.
    term_name: Literal["spring", "autumn"] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> KeyDate:
        if self.term_name is not None and self.term is None:
            raise ValueError("term_name only goes with term")
        fixed = self.month is not None and self.day is not None and self.weekday is None
        nth = self.month is not None and self.weekday is not None and self.nth not in (None, 0) and self.day is None
        term = self.term is not None and self.month is None
        if [fixed, nth, term].count(True) != 1:
            raise ValueError("give exactly one rule: month+day, month+weekday+nth, or term")
        if fixed:
            dt.date(2024, self.month, self.day)  # raises for 02-30
        return self


class Cadence(Spec):
    every: CadenceName
    times: int = Field(default=1, ge=1, le=31, description="tasks per period (twice a month: monthly, times 2)")
    key_dates: tuple[str, ...] = ()
    workdays_only: bool = False
    in_term_only: bool = False
    # A condition on the work calendar a period must meet to be planned. ``calendar_unofficial``:
    # from 1 November, while next year's holidays have no official source (pingan.core.calendar).
    only_while: Literal["calendar_unofficial"] | None = None

    @model_validator(mode="after")
    def _key_dates(self) -> Cadence:
        if (self.every == "key_date") != bool(self.key_dates):
            raise ValueError("key_dates is required with every: key_date and only there")
        return self


class Window(Spec):
    """When a task can be done.

    It opens ``opens_before`` the period starts and is due ``due_after`` the period ends — or,
    with ``due_within``, that long after the period starts (responsibility letters signed within
    the first quarter of the year: ``due_within: 90d``).
    """

    opens_before: Duration = dt.timedelta(0)
    due_after: Duration = dt.timedelta(0)
    due_within: Duration | None = None
    due_time: Clock = dt.time(17, 30)
    shift_to_workday: bool = True

    @model_validator(mode="after")
    def _one_due_rule(self) -> Window:
        if self.due_within is not None and self.due_after:
            raise ValueError("give due_after or due_within, not both")
        return self


