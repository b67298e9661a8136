"""What people read of the holiday watch: the board of who has filed the roster and reported on
a day (CLI table, artifact table and summary), and the clauses the watch answers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Escalation, Incident
from pingan.core.clock import TZ_NAME, at
from pingan.core.i18n import t
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import Org
from pingan.watch import service
from pingan.watch.rules import (
    PeriodView,
    WatchRules,
    load_rules,
    on_duty,
    report_deadline,
    report_state,
    roster_state,
    watch_days,
)
from pingan.watch.service import REP, O, R, duties_of, units_of


def report_label(state: str) -> str:
    """A unit's report of the day in the reader's language: ``平安无事``."""
    return t("watch.report." + state)


def roster_label(state: str) -> str:
    return t("watch.roster." + state)


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
        "单位 unit": r.unit, "值班表 roster": f"{roster_label(r.roster)} {r.roster}",
        "今日报告 report": f"{report_label(r.report)} {r.report}",
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
        f"*Holiday watch, {day:%Y-%m-%d}* — as of {as_of:%Y-%m-%d %H:%M} ({TZ_NAME})", "",
        f"**依据 / source**：{source}", "",
        f"已报告 reported **{reported}** / {len(rows)}：平安无事 ok **{counts['ok'] + counts['ok_late']}**，"
        f"报告事故 incident **{counts['incident']}**，证据页面 evidence page **{counts['handed_in']}**；"
        f"未报 not yet **{counts['pending'] + counts['missing']}**（其中已超时 overdue **{counts['missing']}**）。",
    ]
    late = [r for r in rows if r.report in ("missing", "pending")]
    if late:
        lines += ["", "## 未报告单位 / not reported", ""]
        lines += [f"- {r.unit}（{r.unit_code}）：{report_label(r.report)}" + (f"，督办第 {r.level} 级" if r.level else "") for r in late]
    no_roster = [r for r in rows if r.roster in ("missing", "pending")]
    if no_roster:
        lines += ["", "## 未报值班表 / no roster", ""] + [f"- {r.unit}（{r.unit_code}）" for r in no_roster]
    return "\n".join(lines)


def board(session: Session, rt: Runtime, org: Org, day: dt.date, as_of: dt.datetime) -> tuple[list[PeriodView], list[BoardRow]]:
    """Who has filed the roster and reported on ``day``, per unit (in unit-code order)."""
    rules = load_rules(rt)
    roster_duty, report_duty = duties_of(rt, rules)
    covering = watch_days(service.periods(session, since=day, until=day)).get(day, [])
    if not covering:
        return [], []
    units = sorted((org.units[u] for u in units_of(org, report_duty)), key=lambda u: u.code)
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
            I.c.occurred_at >= at(day, dt.time(0, 0)), I.c.occurred_at < at(day + dt.timedelta(days=1), dt.time(0, 0)),
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
    for duty in duties_of(rt, rules):
        title = rt.catalog.documents.get(duty.source.document, duty.source.document)
        texts = grouped.setdefault((title, duty.source.clause), [])
        if duty.text not in texts:
            texts.append(duty.text)
    return "；".join(f"《{title}》{clause}：{''.join(texts)}" for (title, clause), texts in grouped.items())
