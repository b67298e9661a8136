"""The holiday watch (节假日值班与零报告): duty rosters before, and a report every day of, each period.

Periods are the public holiday periods of the WorkCalendar (chinese-calendar or the local
holiday file) and the periods the operator adds. For each period every unit carrying the
roster duty files its roster (带班领导, 值班值宿 with phones) before the first day; on each day
of it, every unit carrying the report duty files a report by the set hour: 平安无事 (the zero
report) or an incident, which is the incident clock's business from then on.

Both are occurrences of their catalog duties (``catalog/flows/holiday.yaml`` names them), so
the reminders and the escalations — a dead man's switch per unit and day — come from the one
engine in ``pingan.duties.cycle`` and go out through the outbox exactly once. Unlike duty cycles they
run on holidays, within the watch's sending hours.

Pure parts: rules, periods and deadlines, report states, the board; the service functions
take a session and ``as_of`` and write in bulk, idempotently.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session

from models import Audit, Escalation, Incident, Occurrence, Waiver, WatchPeriod, WatchReport, WatchRoster
from pingan.incidents import service as incidents
from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import CatalogError, DutySpec, read_data_file
from pingan.duties.cycle import queue_escalations, queue_reminders
from pingan.core.db import get_engine, insert_ignore, session_scope, upsert
from pingan.core.i18n import pick, register, t
from pingan.core.periods import days
from pingan.core.clock import TZ, local
from pingan.org.snapshot import Org, load_org
from pingan.duties.runtime import Runtime

P, R, REP, O = WatchPeriod.__table__, WatchRoster.__table__, WatchReport.__table__, Occurrence.__table__
# How far back a run still plans days it missed (a stopped scheduler catches up).
LOOKBACK = dt.timedelta(days=7)
# How far ahead ``pingan watch list`` and roster filing look for calendar periods.
HORIZON = dt.timedelta(days=60)
ROLES = ("leader", "staff")
ROLE_ZH = {"leader": "带班领导", "staff": "值班值宿"}
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
    "watch.err.coverage": {"zh-CN": "值班表不完整：{days} 没有{role}", "en": "the roster is incomplete: no {role_en} on {days}"},
    "watch.err.day": {"zh-CN": "--day：{day} 不是值守日（不在任何值守时段内）",
                      "en": "--day: {day} is not a day of watch (in no watch period)"},
    "watch.err.future": {"zh-CN": "--day：{day} 还没到", "en": "--day: {day} has not come yet"},
    "watch.err.incident": {"zh-CN": "--incident：没有单位 {code} 的事故 #{id}", "en": "--incident: unit {code} has no incident #{id}"},
    "watch.err.note": {"zh-CN": "--note 过长（最多 {n} 字）", "en": "--note is too long (at most {n} characters)"},
    "watch.err.reported": {"zh-CN": "{unit} {day} 已报告事故 #{id}", "en": "{unit} already reported incident #{id} for {day}"},
})


class WatchError(ValueError):
    """A bad watch period, roster or report; the message names the option."""


# --------------------------------------------------------------------------- rules (data)

class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _quoted_time(cls, value, info):
        if info.field_name in ("due_time", "start", "end") and isinstance(value, (int, float)):
            raise ValueError("write the time in quotes, like '16:00' (unquoted, YAML reads it as a number)")
        return value


class RosterRule(_Rule):
    duty: str
    workdays_before: int = Field(default=1, ge=0, le=10)
    due_time: dt.time = dt.time(16, 0)


class ReportRule(_Rule):
    duty: str
    due_time: dt.time = dt.time(16, 0)


class SendHours(_Rule):
    start: dt.time = Field(default=dt.time(8, 0), alias="from")
    end: dt.time = Field(default=dt.time(21, 0), alias="to")

    @model_validator(mode="after")
    def _order(self) -> SendHours:
        if self.end <= self.start:
            raise ValueError("'to' must be after 'from'")
        return self


class WatchRules(_Rule):
    """``catalog/flows/holiday.yaml``."""

    roster: RosterRule
    daily_report: ReportRule
    send_hours: SendHours = SendHours()
    calendar_holidays: bool = True

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


def at_time(day: dt.date, moment: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, moment, tzinfo=TZ)


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
    opens = at_time(period.starts_on - duty.window.opens_before, dt.time(0, 0))
    due = at_time(roster_due_day(period.starts_on, rule.workdays_before, calendar), rule.due_time)
    created = local(period.created_at)
    if due <= created:
        due = at_time(created.date(), rule.due_time)
        if due <= created:
            due += dt.timedelta(days=1)
    return Deadline(min(opens, due), due, due + duty.escalation.grace)


def report_deadline(day: dt.date, duty: DutySpec, rule: ReportRule) -> Deadline:
    due = at_time(day, rule.due_time)
    return Deadline(at_time(day, dt.time(0, 0)), due, due + duty.escalation.grace)


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
                    rows.append(_row(roster_duty, unit_id, p.key, p.starts_on, p.ends_on, d, as_of))
        if report_duty.enabled:
            for day in days(max(p.starts_on, today - LOOKBACK, local(p.created_at).date()), min(p.ends_on, today)):
                d = report_deadline(day, report_duty, rules.daily_report)
                for unit_id in units:
                    if (unit_id, day) not in seen:  # overlapping periods: one report a day
                        seen.add((unit_id, day))
                        rows.append(_row(report_duty, unit_id, day.isoformat(), day, day, d, as_of))
    return rows


def _row(duty: DutySpec, unit_id: int, key: str, first: dt.date, last: dt.date, d: Deadline, as_of: dt.datetime) -> dict:
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
            raise WatchError(t("watch.err.coverage", days=shown, role=ROLE_ZH[role], role_en={"leader": "leader on duty",
                                                                                                "staff": "staff on duty"}[role]))


def on_duty(entries: list[dict], day: dt.date) -> dict[str, list[str]]:
    """Who leads and who is on duty on ``day``: the day's own entries, else the whole-period ones."""
    out = {}
    for role in ROLES:
        own = [e for e in entries if e["role"] == role and e.get("day") == day.isoformat()]
        chosen = own or [e for e in entries if e["role"] == role and not e.get("day")]
        out[role] = [f"{e['name']} {e['phone']}" for e in chosen]
    return out


# --------------------------------------------------------------------------- pure: who has reported

REPORT_STATE_ZH = {
    "ok": "平安无事", "ok_late": "平安无事（迟报）", "incident": "报告事故", "handed_in": "已提交（证据页面）",
    "pending": "未报（未到时限）", "missing": "未报（已超时）", "none": "—",
}
ROSTER_STATE_ZH = {
    "filed": "已报", "late": "迟报", "handed_in": "已提交（证据页面）", "pending": "未报（未到时限）",
    "missing": "未报（已超时）", "none": "—",
}


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


@dataclass(frozen=True)
class BoardRow:
    unit_code: str
    unit: str
    roster: str
    report: str
    filed_at: dt.datetime | None
    level: int
    incidents: tuple[int, ...]
    leaders: tuple[str, ...]
    staff: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "unit": self.unit_code, "name": self.unit, "roster": self.roster, "report": self.report,
            "filed_at": self.filed_at.isoformat() if self.filed_at else None, "level": self.level,
            "incidents": list(self.incidents), "leaders": list(self.leaders), "staff": list(self.staff),
        }


def board_table(rows: list[BoardRow]) -> list[dict]:
    return [{
        "单位 unit": r.unit, "值班表 roster": f"{ROSTER_STATE_ZH[r.roster]} {r.roster}",
        "今日报告 report": f"{REPORT_STATE_ZH[r.report]} {r.report}",
        "报告时间 at": f"{r.filed_at:%H:%M}" if r.filed_at else "",
        "事故 incidents": "、".join(f"#{i}" for i in r.incidents), "督办级别 level": r.level,
        "带班 leader": "；".join(r.leaders), "值班值宿 staff": "；".join(r.staff),
    } for r in rows] or [{"单位 unit": "—", "今日报告 report": "今日不是值守日 / not a day of watch"}]


def board_markdown(day: dt.date, periods: list[PeriodView], rows: list[BoardRow], as_of: dt.datetime, source: str) -> str:
    counts = defaultdict(int)
    for r in rows:
        counts[r.report] += 1
    reported = counts["ok"] + counts["ok_late"] + counts["incident"] + counts["handed_in"]
    names = "、".join(p.name for p in periods) or "—"
    lines = [
        f"# 节假日值守 {day:%Y-%m-%d}（{names}）",
        f"*Holiday watch, {day:%Y-%m-%d}* — as of {as_of:%Y-%m-%d %H:%M} (Asia/Shanghai)", "",
        f"**依据 / source**：{source}", "",
        f"已报告 reported **{reported}** / {len(rows)}：平安无事 ok **{counts['ok'] + counts['ok_late']}**，"
        f"报告事故 incident **{counts['incident']}**，证据页面 evidence page **{counts['handed_in']}**；"
        f"未报 not yet **{counts['pending'] + counts['missing']}**（其中已超时 overdue **{counts['missing']}**）。",
    ]
    late = [r for r in rows if r.report in ("missing", "pending")]
    if late:
        lines += ["", "## 未报告单位 / not reported", ""]
        lines += [f"- {r.unit}（{r.unit_code}）：{REPORT_STATE_ZH[r.report]}" + (f"，督办第 {r.level} 级" if r.level else "") for r in late]
    no_roster = [r for r in rows if r.roster in ("missing", "pending")]
    if no_roster:
        lines += ["", "## 未报值班表 / no roster", ""] + [f"- {r.unit}（{r.unit_code}）" for r in no_roster]
    return "\n".join(lines)


# --------------------------------------------------------------------------- database: periods

def _view(row) -> PeriodView:
    return PeriodView(row.id, row.key, row.name, row.starts_on, row.ends_on, row.source, row.created_at, row.cancelled_at)


def sync_calendar(session: Session, rt: Runtime, as_of: dt.datetime, horizon: dt.timedelta, *, rules: WatchRules) -> int:
    """Record the calendar's holiday periods from LOOKBACK ago to ``horizon`` ahead; return how many are new."""
    if not rules.calendar_holidays:
        return 0
    today = as_of.date()
    found = rt.calendar.holiday_periods(today - LOOKBACK, today + horizon)
    rows = [{
        "key": period_key(h.name, h.start), "name": h.name, "starts_on": h.start, "ends_on": h.end,
        "source": "calendar", "created_by": "system", "created_at": as_of,
    } for h in found]
    return len(insert_ignore(session, P, rows, ["key"]))


def periods(session: Session, *, since: dt.date | None = None, until: dt.date | None = None,
            include_cancelled: bool = False) -> list[PeriodView]:
    query = sa.select(P).order_by(P.c.starts_on, P.c.id)
    if since is not None:
        query = query.where(P.c.ends_on >= since)
    if until is not None:
        query = query.where(P.c.starts_on <= until)
    if not include_cancelled:
        query = query.where(P.c.cancelled_at.is_(None))
    return [_view(r) for r in session.execute(query)]


MAX_DAYS = 62


def add_period(session: Session, name: str, starts_on: dt.date, ends_on: dt.date, as_of: dt.datetime, *,
               actor: str) -> tuple[int, bool]:
    """An operator's watch period (重要时段): (id, created); the same name and first day is the same period."""
    name = (name or "").strip()
    if not name:
        raise WatchError(t("watch.err.name"))
    if ends_on < starts_on:
        raise WatchError(t("watch.err.dates"))
    if (ends_on - starts_on).days + 1 > MAX_DAYS:
        raise WatchError(t("watch.err.long", n=MAX_DAYS))
    key = period_key(name, starts_on)
    inserted = insert_ignore(session, P, [{
        "key": key, "name": name[:120], "starts_on": starts_on, "ends_on": ends_on, "source": "operator",
        "created_by": actor[:100], "created_at": as_of,
    }], ["key"])
    if not inserted:
        return session.scalar(sa.select(P.c.id).where(P.c.key == key)), False
    session.add(Audit(at=as_of, actor=actor[:100], action="watch_period.added", object_type="watch_period",
                      object_id=str(inserted[0].id), detail={"name": name, "from": starts_on.isoformat(), "to": ends_on.isoformat()}))
    return inserted[0].id, True


def cancel_period(session: Session, rt: Runtime, period_id: int, as_of: dt.datetime, *, actor: str) -> int | None:
    """Cancel a period: nothing more is planned, and its open tasks are waived. None if not found or cancelled."""
    done = session.execute(sa.update(P).where(P.c.id == period_id, P.c.cancelled_at.is_(None))
                           .values(cancelled_at=as_of).returning(P.c.key, P.c.starts_on, P.c.ends_on)).first()
    if done is None:
        return None
    rules = load_rules(rt)
    still = watch_days(periods(session))  # days another period still watches keep their reports
    day_keys = [d.isoformat() for d in days(done.starts_on, done.ends_on) if d not in still]
    open_tasks = session.scalars(sa.select(O.c.id).where(
        O.c.review.in_(("none", "rejected")),
        sa.or_(sa.and_(O.c.duty_key == rules.roster.duty, O.c.period_key == done.key),
               sa.and_(O.c.duty_key == rules.daily_report.duty, O.c.period_key.in_(day_keys))),
    )).all()
    if open_tasks:
        session.execute(sa.insert(Waiver.__table__), [{
            "occurrence_id": task, "granted_by": actor[:100], "reason": f"值守时段已取消 / watch period {done.key} cancelled",
            "until": at_time(dt.date(9999, 12, 30), dt.time(0, 0)), "created_at": as_of,
        } for task in open_tasks])
    session.add(Audit(at=as_of, actor=actor[:100], action="watch_period.cancelled", object_type="watch_period",
                      object_id=str(period_id), detail={"waived": list(open_tasks)}))
    return len(open_tasks)


def find_period(session: Session, rt: Runtime, ref: str | None, as_of: dt.datetime, *, rules: WatchRules) -> PeriodView:
    """A period by id or key; without one, the current or next period."""
    sync_calendar(session, rt, as_of, HORIZON, rules=rules)
    if ref:
        ref = ref.strip()
        cond = P.c.id == int(ref) if ref.isdigit() else P.c.key == ref
        row = session.execute(sa.select(P).where(cond)).first()
        if row is None:
            raise WatchError(t("watch.err.period", ref=ref))
        if row.cancelled_at is not None:
            raise WatchError(t("watch.err.cancelled", name=row.name))
        return _view(row)
    upcoming = periods(session, since=as_of.date())
    if not upcoming:
        raise WatchError(t("watch.err.no_period", day=as_of.date()))
    return upcoming[0]


# --------------------------------------------------------------------------- database: planning

@dataclass
class WatchResult:
    as_of: dt.datetime
    new_periods: int = 0
    planned: int = 0
    linked: int = 0  # days reported by an incident registered for the unit
    reminders: int = 0
    escalations: int = 0
    in_hours: bool = True
    unreachable: list[int] = field(default_factory=list)


def _duties(rt: Runtime, rules: WatchRules) -> tuple[DutySpec, DutySpec]:
    return rt.catalog.duty(rules.roster.duty), rt.catalog.duty(rules.daily_report.duty)


def _units(org: Org, duty: DutySpec) -> list[int]:
    return [unit_id for unit_id, _ in org.subjects(duty.carrier)]


def plan(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> WatchResult:
    """Record new calendar periods, create the open roster and report tasks, link incidents."""
    rules = rules or load_rules(rt)
    roster_duty, report_duty = _duties(rt, rules)
    result = WatchResult(as_of)
    result.new_periods = sync_calendar(session, rt, as_of, roster_duty.window.opens_before + dt.timedelta(days=1), rules=rules)
    today = as_of.date()
    found = periods(session, since=today - LOOKBACK, until=today + roster_duty.window.opens_before + dt.timedelta(days=1))
    rows = slot_rows(found, _units(org, report_duty), roster_duty, report_duty, rules, rt.calendar, as_of,
                     roster_units=_units(org, roster_duty))
    # Skip the slots whose tasks all exist (every earlier day of the look-back, usually): one
    # grouped count instead of re-inserting units × days rows every hour.
    wanted = Counter((r["duty_key"], r["period_key"]) for r in rows)
    if wanted:
        have = {(k, p): n for k, p, n in session.execute(
            sa.select(O.c.duty_key, O.c.period_key, sa.func.count()).where(
                O.c.duty_key.in_({k for k, _ in wanted}), O.c.period_key.in_({p for _, p in wanted}))
            .group_by(O.c.duty_key, O.c.period_key))}
        rows = [r for r in rows if have.get((r["duty_key"], r["period_key"]), 0) < wanted[(r["duty_key"], r["period_key"])]]
    result.planned = len(insert_ignore(session, O, rows, ["duty_key", "unit_id", "person_key", "period_key"]))
    result.linked = link_incidents(session, rt, org, found, as_of, rules=rules)
    return result


def link_incidents(session: Session, rt: Runtime, org: Org, found: list[PeriodView], as_of: dt.datetime, *,
                   rules: WatchRules) -> int:
    """An incident registered for a unit on a day of watch is that unit's report of the day."""
    today = as_of.date()
    watched = [d for d in watch_days(found) if today - LOOKBACK <= d <= today]
    if not watched:
        return 0
    report_duty = rt.catalog.duty(rules.daily_report.duty)
    units = set(_units(org, report_duty))
    I = Incident.__table__
    start, end = at_time(min(watched), dt.time(0, 0)), at_time(max(watched) + dt.timedelta(days=1), dt.time(0, 0))
    rows = []
    for inc in session.execute(sa.select(I.c.id, I.c.unit_id, I.c.occurred_at, I.c.registered_by, I.c.registered_at).where(
            I.c.occurred_at >= start, I.c.occurred_at < end, I.c.registered_at <= as_of).order_by(I.c.id)):
        day = local(inc.occurred_at).date()
        if day in watched and inc.unit_id in units:
            rows.append({"unit_id": inc.unit_id, "day": day, "status": "incident", "incident_id": inc.id, "note": None,
                         "filed_by": inc.registered_by, "filed_at": inc.registered_at})
    rows = list({(r["unit_id"], r["day"]): r for r in reversed(rows)}.values())  # the first incident of the day
    inserted = insert_ignore(session, REP, rows, ["unit_id", "day"], returning=("unit_id", "day", "filed_at"))
    for r in inserted:
        _close(session, report_duty.key, r.unit_id, r.day.isoformat(), r.filed_at)
    return len(inserted)


def _close(session: Session, duty_key: str, unit_id: int, key: str, at: dt.datetime) -> None:
    session.execute(sa.update(O).where(
        O.c.duty_key == duty_key, O.c.unit_id == unit_id, O.c.person_key == 0, O.c.period_key == key,
        O.c.review != "accepted",
    ).values(review="accepted", closed_at=at))


def remind(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> tuple[int, list[int]]:
    rules = rules or load_rules(rt)
    queued, unreachable = 0, []
    for duty in _duties(rt, rules):
        if duty.enabled:
            n, lost = queue_reminders(session, rt, duty, org, as_of)
            queued, unreachable = queued + n, unreachable + lost
    return queued, unreachable


def escalate(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: WatchRules | None = None) -> int:
    rules = rules or load_rules(rt)
    return sum(queue_escalations(session, rt, duty, org, as_of) for duty in _duties(rt, rules) if duty.enabled)


def run(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> WatchResult:
    """Plan; then, inside the sending hours, remind and escalate (sending is the outbox's job)."""
    rules = load_rules(rt)
    result = plan(session, rt, org, as_of, rules=rules)
    result.in_hours = rules.contains(as_of)
    if result.in_hours:
        result.reminders, result.unreachable = remind(session, rt, org, as_of, rules=rules)
        result.escalations = escalate(session, rt, org, as_of, rules=rules)
    return result


# --------------------------------------------------------------------------- database: filing

def _unit(org: Org, code: str, duty: DutySpec):
    unit = next((u for u in org.units.values() if u.code == (code or "").strip()), None)
    if unit is None:
        raise WatchError(t("watch.err.unit", code=code))
    if not org.matches(duty.carrier, unit):
        raise WatchError(t("watch.err.carrier", code=unit.code, name=unit.name, duty=pick(duty.name, duty.name_en)))
    return unit


@dataclass(frozen=True)
class Filed:
    id: int
    created: bool
    period: PeriodView | None = None
    day: dt.date | None = None
    status: str | None = None
    incident_id: int | None = None
    late: bool = False


def file_roster(session: Session, rt: Runtime, org: Org, *, unit: str, entries: list[RosterEntry], as_of: dt.datetime,
                actor: str, period: str | None = None) -> Filed:
    """File (or replace) a unit's duty roster for a period; the first filing's time is what counts."""
    rules = load_rules(rt)
    roster_duty = rt.catalog.duty(rules.roster.duty)
    u = _unit(org, unit, roster_duty)
    p = find_period(session, rt, period, as_of, rules=rules)
    check_roster(entries, p)
    stored = [e.as_dict() for e in entries]
    upsert(session, R, [{"period_id": p.id, "unit_id": u.id, "entries": stored, "filed_by": actor[:100],
                         "filed_at": as_of, "updated_at": as_of}], ["period_id", "unit_id"], ["entries", "filed_by", "updated_at"])
    row = session.execute(sa.select(R.c.id, R.c.filed_at).where(R.c.period_id == p.id, R.c.unit_id == u.id)).one()
    created = row.filed_at == as_of
    d = roster_deadline(p, roster_duty, rules.roster, rt.calendar)
    insert_ignore(session, O, [_row(roster_duty, u.id, p.key, p.starts_on, p.ends_on, d, as_of)],
                  ["duty_key", "unit_id", "person_key", "period_key"], returning=())
    _close(session, roster_duty.key, u.id, p.key, row.filed_at)
    session.add(Audit(at=as_of, actor=actor[:100], action="watch.roster_filed", object_type="watch_roster",
                      object_id=str(row.id), detail={"unit": u.code, "period": p.key, "entries": stored}))
    return Filed(row.id, created, period=p, late=row.filed_at > d.due_at)


MAX_NOTE = 1000


def file_report(
    session: Session, rt: Runtime, org: Org, *, unit: str, day: dt.date, as_of: dt.datetime, actor: str,
    note: str | None = None, incident_id: int | None = None, incident: incidents.IncidentRequest | None = None,
) -> Filed:
    """File a unit's report for a day of watch: 平安无事, or an incident (an existing one, or one
    registered here, which starts its clock). A later incident report replaces a zero report
    of the same day; anything else filed twice keeps the first."""
    rules = load_rules(rt)
    report_duty = rt.catalog.duty(rules.daily_report.duty)
    u = _unit(org, unit, report_duty)
    sync_calendar(session, rt, as_of, HORIZON, rules=rules)
    if day > as_of.date():
        raise WatchError(t("watch.err.future", day=day))
    covering = watch_days(periods(session, since=day, until=day))
    if day not in covering:
        raise WatchError(t("watch.err.day", day=day))
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise WatchError(t("watch.err.note", n=MAX_NOTE))
    if incident is not None:
        incident_id = incidents.register(session, rt, org, incident, as_of, actor=actor).id
    if incident_id is not None:
        I = Incident.__table__
        if session.scalar(sa.select(I.c.id).where(I.c.id == incident_id, I.c.unit_id == u.id)) is None:
            raise WatchError(t("watch.err.incident", code=u.code, id=incident_id))
    status = "incident" if incident_id is not None else "ok"
    d = report_deadline(day, report_duty, rules.daily_report)
    insert_ignore(session, O, [_row(report_duty, u.id, day.isoformat(), day, day, d, as_of)],
                  ["duty_key", "unit_id", "person_key", "period_key"], returning=())
    inserted = insert_ignore(session, REP, [{
        "unit_id": u.id, "day": day, "status": status, "incident_id": incident_id, "note": note,
        "filed_by": actor[:100], "filed_at": as_of,
    }], ["unit_id", "day"])
    created = bool(inserted)
    if not created:
        old = session.execute(sa.select(REP).where(REP.c.unit_id == u.id, REP.c.day == day)).one()
        if status == "incident" and old.status == "ok":
            session.execute(sa.update(REP).where(REP.c.id == old.id).values(status="incident", incident_id=incident_id,
                                                                          note=note or old.note))
            created = True
        elif status == "ok" or old.incident_id == incident_id:
            return Filed(old.id, False, day=day, status=old.status, incident_id=old.incident_id, late=old.filed_at > d.due_at)
        else:
            raise WatchError(t("watch.err.reported", unit=u.name, day=day, id=old.incident_id))
        report_id, filed_at = old.id, old.filed_at
    else:
        report_id, filed_at = inserted[0].id, as_of
    _close(session, report_duty.key, u.id, day.isoformat(), filed_at)
    session.add(Audit(at=as_of, actor=actor[:100], action="watch.report_filed", object_type="watch_report",
                      object_id=str(report_id), detail={"unit": u.code, "day": day.isoformat(), "status": status,
                                                        "incident": incident_id, "note": note}))
    return Filed(report_id, created, day=day, status=status, incident_id=incident_id, late=filed_at > d.due_at)


# --------------------------------------------------------------------------- database: the board

def board(session: Session, rt: Runtime, org: Org, day: dt.date, as_of: dt.datetime) -> tuple[list[PeriodView], list[BoardRow]]:
    """Who has filed the roster and reported on ``day``, per unit (in unit-code order)."""
    rules = load_rules(rt)
    roster_duty, report_duty = _duties(rt, rules)
    covering = watch_days(periods(session, since=day, until=day)).get(day, [])
    if not covering:
        return [], []
    units = sorted((org.units[u] for u in _units(org, report_duty)), key=lambda u: u.code)
    period_ids = [p.id for p in covering]
    rosters: dict[int, tuple] = {}
    for r in session.execute(sa.select(R.c.unit_id, R.c.entries, R.c.filed_at, R.c.period_id)
                             .where(R.c.period_id.in_(period_ids)).order_by(R.c.filed_at)):
        rosters.setdefault(r.unit_id, r)
    roster_keys = [p.key for p in covering]
    roster_tasks = {r.unit_id: r for r in session.execute(sa.select(O.c.unit_id, O.c.review, O.c.due_at).where(
        O.c.duty_key == roster_duty.key, O.c.period_key.in_(roster_keys)).order_by(O.c.due_at))}
    reports = {r.unit_id: r for r in session.execute(sa.select(REP).where(REP.c.day == day))}
    E = Escalation.__table__
    level = (sa.select(sa.func.coalesce(sa.func.max(E.c.level), 0))
             .where(E.c.occurrence_id == O.c.id, E.c.fired_at <= as_of).scalar_subquery())
    report_tasks = {r.unit_id: r for r in session.execute(sa.select(O.c.unit_id, O.c.review, O.c.due_at, level.label("level")).where(
        O.c.duty_key == report_duty.key, O.c.period_key == day.isoformat()))}
    I = Incident.__table__
    todays: dict[int, list[int]] = defaultdict(list)
    for inc in session.execute(sa.select(I.c.id, I.c.unit_id).where(
            I.c.occurred_at >= at_time(day, dt.time(0, 0)), I.c.occurred_at < at_time(day + dt.timedelta(days=1), dt.time(0, 0)),
            I.c.registered_at <= as_of).order_by(I.c.id)):
        todays[inc.unit_id].append(inc.id)
    out = []
    for u in units:
        roster, rtask, report, task = rosters.get(u.id), roster_tasks.get(u.id), reports.get(u.id), report_tasks.get(u.id)
        duty_now = on_duty(roster.entries, day) if roster else {"leader": [], "staff": []}
        due = task.due_at if task else report_deadline(day, report_duty, rules.daily_report).due_at
        out.append(BoardRow(
            unit_code=u.code, unit=u.name,
            roster=roster_state(roster.filed_at if roster else None, rtask.review if rtask else None,
                                rtask.due_at if rtask else None, as_of),
            report=report_state(report.status if report and report.filed_at <= as_of else None,
                                report.filed_at if report else None, task.review if task else None, due, as_of),
            filed_at=report.filed_at if report and report.filed_at <= as_of else None,
            level=task.level if task else 0, incidents=tuple(todays.get(u.id, ())),
            leaders=tuple(duty_now["leader"]), staff=tuple(duty_now["staff"]),
        ))
    return covering, out


def source_line(rt: Runtime, rules: WatchRules | None = None) -> str:
    """The clauses the watch answers, grouped by document and clause: 《title》7：text1 text2"""
    rules = rules or load_rules(rt)
    grouped: dict[tuple[str, str], list[str]] = {}
    for duty in _duties(rt, rules):
        title = rt.catalog.documents.get(duty.source.document, duty.source.document)
        texts = grouped.setdefault((title, duty.source.clause), [])
        if duty.text not in texts:
            texts.append(duty.text)
    return "；".join(f"《{title}》{clause}：{''.join(texts)}" for (title, clause), texts in grouped.items())


# --------------------------------------------------------------------------- services (own transaction)

def watch(rt: Runtime, as_of: dt.datetime) -> WatchResult:
    """One watch run at ``as_of`` in one transaction (the flow runs the same steps as tasks)."""
    from pingan.duties import service

    as_of = local(as_of)
    service.ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return run(session, rt, load_org(session), as_of)


def in_session(rt: Runtime, work):
    """Run ``work(session, org)`` in one transaction with the catalog synced (CLI and web page)."""
    from pingan.duties import service

    service.ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return work(session, load_org(session))

