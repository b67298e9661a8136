"""The holiday watch's rules: the data file (``catalog/flows/holiday.yaml``) and the pure decisions.

Periods are the public holiday periods of the WorkCalendar (chinese-calendar or the local
holiday file), the winter and summer breaks between the terms, and the periods the operator
adds (重要时段: exams, events, sensitive dates). For each period every unit carrying the
roster duty files its roster (带班领导, 值班值宿 with phones) before the first day; on each day
of it, every unit carrying the report duty files a report by the set hour: 平安无事 (the zero
report) or an incident, which is the incident clock's business from then on.

Here: the sending hours, the deadlines of a roster and of a day's report, the task rows of the
slots open at an instant, roster entries and who is on duty, and the states of a roster and a
report. Nothing here reads the database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ConfigDict, Field, model_validator

from pingan.core.cadence import Clock, Spec
from pingan.core.calendar import WorkCalendar
from pingan.core.clock import at, local
from pingan.core.i18n import register, t
from pingan.core.periods import Terms, days
from pingan.duties.catalog import CatalogError, DutySpec, read_data_file
from pingan.duties.runtime import Runtime

# How far back a run still plans days it missed (a stopped scheduler catches up).
LOOKBACK = dt.timedelta(days=7)
# How far ahead ``pingan watch list`` and roster filing look for calendar periods.
HORIZON = dt.timedelta(days=60)
ROLES = ("leader", "staff")
REPORT_STATES = ("ok", "ok_late", "incident", "handed_in", "pending", "missing", "none")
ROSTER_STATES = ("filed", "late", "handed_in", "pending", "missing", "none")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")

register({
    "watch.err.unit": {"zh-CN": "--unit：没有单位 {code!r}", "en": "--unit: no unit {code!r}"},
    "watch.err.carrier": {"zh-CN": "--unit：单位 {code}（{name}）不承担「{duty}」",
                          "en": "--unit: unit {code} ({name}) does not carry “{duty}”"},
    "watch.err.name": {"zh-CN": "--name 不能为空", "en": "--name is empty"},
    "watch.err.dates": {"zh-CN": "--to 早于 --from", "en": "--to is before --from"},
    "watch.err.long": {"zh-CN": "值守时段最长 {n} 天", "en": "a watch period lasts {n} days at most"},
    "watch.err.period": {"zh-CN": "--period：没有值守时段 {ref!r}（见 pingan watch list）",
                         "en": "--period: no watch period {ref!r} (see pingan watch list)"},
    "watch.err.no_period": {"zh-CN": "{day} 之后没有值守时段（见 pingan watch list）",
                            "en": "no watch period from {day} on (see pingan watch list)"},
    "watch.err.cancelled": {"zh-CN": "值守时段 {name} 已取消", "en": "watch period {name} is cancelled"},
    "watch.err.entry": {"zh-CN": "{option} 第 {n} 项 {value!r}：应为 [日期=]姓名:电话，如 2026-10-01=张三:13800000000",
                        "en": "{option} entry {n} {value!r}: write [DAY=]NAME:PHONE, e.g. 2026-10-01=Zhang San:13800000000"},
    "watch.err.entry_day": {"zh-CN": "{option} 第 {n} 项：{day} 不在 {first} 至 {last} 之内",
                            "en": "{option} entry {n}: {day} is not within {first} to {last}"},
    "watch.err.phone": {"zh-CN": "{option} 第 {n} 项：电话 {phone!r} 不是电话号码",
                        "en": "{option} entry {n}: {phone!r} is not a phone number"},
    "watch.err.coverage": {"zh-CN": "值班表不完整：{days} 没有{role}", "en": "the roster is incomplete: no {role} on {days}"},
    "watch.err.day": {"zh-CN": "--day：{day} 不是值守日（不在任何值守时段内）",
                      "en": "--day: {day} is not a day of watch (in no watch period)"},
    "watch.err.future": {"zh-CN": "--day：{day} 还没到", "en": "--day: {day} has not come yet"},
    "watch.err.incident": {"zh-CN": "--incident：没有单位 {code} 的事故 #{id}", "en": "--incident: unit {code} has no incident #{id}"},
    "watch.err.note": {"zh-CN": "--note 过长（最多 {n} 字）", "en": "--note is too long (at most {n} characters)"},
    "watch.err.reported": {"zh-CN": "{unit} {day} 已报告事故 #{id}", "en": "{unit} already reported incident #{id} for {day}"},
    "watch.role.leader": {"zh-CN": "带班领导", "en": "leader on duty"},
    "watch.role.staff": {"zh-CN": "值班值宿", "en": "staff on duty"},
    # a unit's report of one day (``report_state``) and its roster (``roster_state``)
    "watch.report.ok": {"zh-CN": "平安无事", "en": "nothing to report"},
    "watch.report.ok_late": {"zh-CN": "平安无事（迟报）", "en": "nothing to report (late)"},
    "watch.report.incident": {"zh-CN": "报告事故", "en": "incident reported"},
    "watch.report.handed_in": {"zh-CN": "已提交（证据页面）", "en": "handed in (evidence page)"},
    "watch.report.pending": {"zh-CN": "未报（未到时限）", "en": "not yet (not due)"},
    "watch.report.missing": {"zh-CN": "未报（已超时）", "en": "missing (overdue)"},
    "watch.report.none": {"zh-CN": "—", "en": "—"},
    "watch.roster.filed": {"zh-CN": "已报", "en": "filed"},
    "watch.roster.late": {"zh-CN": "迟报", "en": "late"},
    "watch.roster.handed_in": {"zh-CN": "已提交（证据页面）", "en": "handed in (evidence page)"},
    "watch.roster.pending": {"zh-CN": "未报（未到时限）", "en": "not yet (not due)"},
    "watch.roster.missing": {"zh-CN": "未报（已超时）", "en": "missing (overdue)"},
    "watch.roster.none": {"zh-CN": "—", "en": "—"},
})


class WatchError(ValueError):
    """A bad watch period, roster or report; the message names the option."""


# --------------------------------------------------------------------------- rules (data)

class RosterRule(Spec):
    duty: str
    workdays_before: int = Field(default=1, ge=0, le=10)
    due_time: Clock = dt.time(16, 0)


class ReportRule(Spec):
    duty: str
    due_time: Clock = dt.time(16, 0)


class SendHours(Spec):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Clock = Field(default=dt.time(8, 0), alias="from")
    end: Clock = Field(default=dt.time(21, 0), alias="to")

    @model_validator(mode="after")
    def _order(self) -> SendHours:
        if self.end <= self.start:
            raise ValueError("'to' must be after 'from'")
        return self


class WatchRules(Spec):
    """``catalog/flows/holiday.yaml``."""

    roster: RosterRule
    daily_report: ReportRule
    send_hours: SendHours = SendHours()
    calendar_holidays: bool = True
    # The winter and summer breaks between the terms (PINGAN_SPRING_TERM / PINGAN_AUTUMN_TERM).
    term_breaks: bool = True

    def contains(self, moment: dt.datetime) -> bool:
        """Inside the sending hours (every day of the year: holidays are when the watch works)."""
        return self.send_hours.start <= local(moment).time() < self.send_hours.end


def rules_path(rt: Runtime) -> Path:
    return Path(rt.settings.catalog_dir) / "flows" / "holiday.yaml"


def read_rules(path: Path, duties: Mapping[str, DutySpec]) -> WatchRules:
    rules = read_data_file(path, WatchRules)
    for where, key in (("roster.duty", rules.roster.duty), ("daily_report.duty", rules.daily_report.duty)):
        duty = duties.get(key)
        if duty is None or duty.flow != "holiday":
            raise CatalogError(f"{path}: field {where}: {key!r} is not a catalog duty with flow: holiday")
    return rules


def load_rules(rt: Runtime) -> WatchRules:
    return read_rules(rules_path(rt), rt.catalog.duties)


# --------------------------------------------------------------------------- pure: periods and deadlines

@dataclass(frozen=True)
class PeriodView:
    id: int
    key: str
    name: str
    starts_on: dt.date
    ends_on: dt.date
    source: str
    created_at: dt.datetime
    cancelled_at: dt.datetime | None = None

    def __contains__(self, day: dt.date) -> bool:
        return self.starts_on <= day <= self.ends_on


def period_key(name: str, starts_on: dt.date) -> str:
    """Like ``HolidayPeriod.key``: the same holiday from the calendar and from the operator is one period."""
    return f"{starts_on.isoformat()}-{name.strip()}"[:64]


@dataclass(frozen=True)
class Break:
    name: str
    start: dt.date
    end: dt.date


BREAK_NAMES = {"winter": "寒假", "summer": "暑假"}


def term_breaks(terms: Terms, first: dt.date, last: dt.date) -> list[Break]:
    """The winter and summer breaks between the terms that intersect [first, last], in order.

    The summer break runs from the day after the spring term to the day before the autumn term;
    the winter break from the day after the autumn term to the day before the next spring term.
    """
    out: list[Break] = []
    for year in range(first.year - 1, last.year + 1):
        spring, autumn = terms.terms_of(year)
        next_spring = terms.terms_of(year + 1)[0]
        for name, start, end in (("summer", spring.end + dt.timedelta(days=1), autumn.start - dt.timedelta(days=1)),
                                 ("winter", autumn.end + dt.timedelta(days=1), next_spring.start - dt.timedelta(days=1))):
            if start <= end and end >= first and start <= last:
                out.append(Break(BREAK_NAMES[name], start, end))
    return sorted(out, key=lambda b: b.start)


def roster_due_day(starts_on: dt.date, workdays_before: int, calendar: WorkCalendar) -> dt.date:
    """The ``workdays_before``-th working day before the first day (0: the first day itself)."""
    day, found = starts_on, 0
    while found < workdays_before:
        day -= dt.timedelta(days=1)
        if calendar.is_workday(day):
            found += 1
    return day


@dataclass(frozen=True)
class Deadline:
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime


def roster_deadline(period: PeriodView, duty: DutySpec, rule: RosterRule, calendar: WorkCalendar) -> Deadline:
    """Opens ``window.opens_before`` the first day; due on the last working day(s) before it.

    A period recorded after that deadline (the operator added it late) is due at the same hour
    on the day it was recorded — the next day, when that hour has passed — never in the past.
    """
    opens = at(period.starts_on - duty.window.opens_before, dt.time(0, 0))
    due = at(roster_due_day(period.starts_on, rule.workdays_before, calendar), rule.due_time)
    created = local(period.created_at)
    if due <= created:
        due = at(created.date(), rule.due_time)
        if due <= created:
            due += dt.timedelta(days=1)
    return Deadline(min(opens, due), due, due + duty.escalation.grace)


def report_deadline(day: dt.date, duty: DutySpec, rule: ReportRule) -> Deadline:
    due = at(day, rule.due_time)
    return Deadline(at(day, dt.time(0, 0)), due, due + duty.escalation.grace)


def watch_days(periods: Iterable[PeriodView]) -> dict[dt.date, list[PeriodView]]:
    """Every day of every period that is not cancelled, with the periods covering it."""
    out: dict[dt.date, list[PeriodView]] = defaultdict(list)
    for p in periods:
        if p.cancelled_at is None:
            for day in days(p.starts_on, p.ends_on):
                out[day].append(p)
    return dict(out)


def slot_rows(
    periods: list[PeriodView], units: list[int], roster_duty: DutySpec, report_duty: DutySpec, rules: WatchRules,
    calendar: WorkCalendar, as_of: dt.datetime, *, roster_units: list[int] | None = None,
) -> list[dict]:
    """Occurrence rows of every roster whose window is open and every day of watch up to today.

    A run catches up on the days of the last ``LOOKBACK`` it missed, but never asks for the
    roster of a period that is over, nor for the days of a period before it was recorded (a
    first installation in the middle of a holiday starts with that day).
    """
    today = as_of.date()
    rows, seen = [], set()
    roster_units = units if roster_units is None else roster_units
    for p in periods:
        if p.cancelled_at is not None or p.ends_on < today - LOOKBACK:
            continue
        if roster_duty.enabled and today <= p.ends_on:
            d = roster_deadline(p, roster_duty, rules.roster, calendar)
            if d.opens_at <= as_of:
                for unit_id in roster_units:
                    rows.append(slot_row(roster_duty, unit_id, p.key, p.starts_on, p.ends_on, d, as_of))
        if report_duty.enabled:
            for day in days(max(p.starts_on, today - LOOKBACK, local(p.created_at).date()), min(p.ends_on, today)):
                d = report_deadline(day, report_duty, rules.daily_report)
                for unit_id in units:
                    if (unit_id, day) not in seen:  # overlapping periods: one report a day
                        seen.add((unit_id, day))
                        rows.append(slot_row(report_duty, unit_id, day.isoformat(), day, day, d, as_of))
    return rows


def slot_row(duty: DutySpec, unit_id: int, key: str, first: dt.date, last: dt.date, d: Deadline, as_of: dt.datetime) -> dict:
    return {
        "duty_key": duty.key, "unit_id": unit_id, "person_id": None, "person_key": 0, "period_key": key,
        "period_start": first, "period_end": last, "opens_at": d.opens_at, "due_at": d.due_at,
        "escalate_at": d.escalate_at, "created_at": as_of,
    }


# --------------------------------------------------------------------------- pure: roster entries

@dataclass(frozen=True)
class RosterEntry:
    role: str  # leader | staff
    name: str
    phone: str
    day: dt.date | None = None  # None: every day of the period

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat() if self.day else None, "role": self.role, "name": self.name, "phone": self.phone}


def parse_entry(text: str, role: str, option: str, n: int) -> RosterEntry:
    """``[DAY=]NAME:PHONE`` (full-width ：and ＝ accepted) → an entry."""
    raw = text.strip().replace("：", ":").replace("＝", "=")
    day = None
    if "=" in raw:
        head, raw = raw.split("=", 1)
        try:
            day = dt.date.fromisoformat(head.strip())
        except ValueError:
            raise WatchError(t("watch.err.entry", option=option, n=n, value=text)) from None
    name, sep, phone = raw.rpartition(":")
    name, phone = name.strip(), phone.strip()
    if not sep or not name or len(name) > 50:
        raise WatchError(t("watch.err.entry", option=option, n=n, value=text))
    if not _PHONE.match(phone):
        raise WatchError(t("watch.err.phone", option=option, n=n, phone=phone))
    return RosterEntry(role, name, phone, day)


def check_roster(entries: list[RosterEntry], period: PeriodView, options: Mapping[str, str] | None = None) -> None:
    """Each entry inside the period, and every day with a leader and a staff member on duty."""
    options = options or {"leader": "--leader", "staff": "--staff"}
    counters: dict[str, int] = defaultdict(int)
    for e in entries:
        counters[e.role] += 1
        if e.day is not None and e.day not in period:
            raise WatchError(t("watch.err.entry_day", option=options[e.role], n=counters[e.role], day=e.day,
                               first=period.starts_on, last=period.ends_on))
    for role in ROLES:
        every = any(e.role == role and e.day is None for e in entries)
        covered = {e.day for e in entries if e.role == role and e.day is not None}
        missing = [d for d in days(period.starts_on, period.ends_on) if not every and d not in covered]
        if missing:
            shown = "、".join(d.isoformat() for d in missing[:5]) + ("…" if len(missing) > 5 else "")
            raise WatchError(t("watch.err.coverage", days=shown, role=t("watch.role." + role)))


def on_duty(entries: list[dict], day: dt.date) -> dict[str, list[str]]:
    """Who leads and who is on duty on ``day``: the day's own entries, else the whole-period ones."""
    out = {}
    for role in ROLES:
        own = [e for e in entries if e["role"] == role and e.get("day") == day.isoformat()]
        chosen = own or [e for e in entries if e["role"] == role and not e.get("day")]
        out[role] = [f"{e['name']} {e['phone']}" for e in chosen]
    return out


# --------------------------------------------------------------------------- pure: who has reported

def report_state(status: str | None, filed_at: dt.datetime | None, review: str | None, due: dt.datetime | None,
                 as_of: dt.datetime) -> str:
    """A unit's report of one day: ok, ok_late, incident, handed_in, pending, missing (or none: no task)."""
    if status == "incident":
        return "incident"
    if status == "ok":
        return "ok" if due is None or filed_at <= due else "ok_late"
    if review in ("submitted", "accepted"):
        return "handed_in"
    if due is None:
        return "none"
    return "pending" if as_of < due else "missing"


def roster_state(filed_at: dt.datetime | None, review: str | None, due: dt.datetime | None, as_of: dt.datetime) -> str:
    if filed_at is not None:
        return "filed" if due is None or filed_at <= due else "late"
    if review in ("submitted", "accepted"):
        return "handed_in"
    if due is None:
        return "none"
    return "pending" if as_of < due else "missing"
