"""Digests: each week, to every bureau leader, the units they answer for (包保 / 分管) and their
own duties; each working-day evening, a summary to the safety section (the operator's desk).

A digest is one announcement-style notice per person and run, unique on (person, dedupe key) —
``digest:weekly:<person code>:<ISO week>``, ``digest:daily:<person code>:<date>`` — so a re-run
(a retry, a second schedule, an ad hoc run) queues nothing twice; the outbox turns it into one
message per person. Figures come from ``pingan.reports.compute`` over a window of recent tasks, so a
digest and the quarterly report never disagree about a task.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Escalation, Message, Notice, NoticeKind, Person
from pingan.core.db import get_engine, session_scope
from pingan.core.i18n import both, register
from pingan.delivery import notices
from pingan.core.clock import local
from pingan.reports.text import TITLES, DEHUI
from pingan.reports.compute import NO_LEADER, Figures, HazardFigures, TaskFact, compute
from pingan.reports.rules import ReportPeriod, previous_week
from pingan.org.snapshot import load_org
from pingan.duties.runtime import Runtime

LOOKBACK = dt.timedelta(days=90)  # overdue tasks older than this are the quarterly report's business
AHEAD = dt.timedelta(days=7)
MAX_ITEMS = 6  # a message's announcement text is capped (pingan.delivery.messages): list the worst few
N = Notice.__table__
WEEKDAY_ZH = "一二三四五六日"
register({"digest.accountability": {
    "zh-CN": f"依据《{TITLES[DEHUI]}》一（八）：坚持尽职免责、失职追责。",
    "en": "Basis: Dehui bureau responsibility list, clause 一（八） — diligence exempts, dereliction is pursued."}})


@dataclass
class DigestResult:
    kind: str  # weekly | daily
    key: str  # the ISO week or the date
    queued: int = 0
    recipients: list[str] = field(default_factory=list)  # person codes a notice is (or was) owed to
    skipped: str | None = None  # why nothing was prepared (a day off, nobody to tell)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "queued": self.queued, "recipients": self.recipients,
                "skipped": self.skipped}


def iso_week(day: dt.date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _window(as_of: dt.datetime) -> ReportPeriod:
    day = as_of.date()
    return ReportPeriod("window", day - LOOKBACK, day + AHEAD)


def _item(f: TaskFact, en: bool) -> str:
    if en:
        who = f.unit + (f" ({f.person})" if f.person else "")
        return f"· {who}: {f.duty_en or f.duty} {f.period_key}, due {f.due_at:%m-%d}" + (f" L{f.level}" if f.level else "")
    who = f.unit + (f"（{f.person}）" if f.person else "")
    return f"· {who}「{f.duty}」{f.period_key}，截止 {f.due_at:%m-%d}" + (f"，已督办至第{f.level}级" if f.level else "")


def _list(facts: list[TaskFact], en: bool) -> list[str]:
    lines = [_item(f, en) for f in facts[:MAX_ITEMS]]
    if len(facts) > MAX_ITEMS:
        lines.append(f"  … {len(facts) - MAX_ITEMS} more" if en else f"  ……另有 {len(facts) - MAX_ITEMS} 项")
    return lines


def _counts(f: Figures, en: bool) -> str:
    if en:
        return (f"{f.due} due: {f['on_time']} on time, {f['late']} late, {f['missing']} missing, "
                f"{f['pending']} awaiting review, {f['waived']} waived")
    return (f"到期 {f.due} 项：按时完成 {f['on_time']}，逾期完成 {f['late']}，未完成 {f['missing']}，"
            f"待审核 {f['pending']}，已豁免 {f['waived']}")


def _hazards(h: HazardFigures | None, en: bool) -> str | None:
    if h is None or not h.open:
        return None
    if en:
        return f"Open hazards: {h.general} general, {h.major} major ({h.overdue} past their deadline)."
    return f"未销号隐患：一般 {h.general} 项，重大 {h.major} 项（逾期未整改 {h.overdue} 项）。"


def _person_ids(session: Session, codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    P = Person.__table__
    return dict(session.execute(sa.select(P.c.code, P.c.id).where(P.c.code.in_(codes), P.c.active.is_(True))).all())


def _queue(session: Session, kind: str, key: str, texts: dict[str, tuple[str, str, list[int]]],
           as_of: dt.datetime) -> DigestResult:
    """One notice per person code in ``texts`` (zh, en, task ids), inserted unless already owed."""
    result = DigestResult(kind, key, recipients=sorted(texts))
    ids = _person_ids(session, list(texts))
    rows = [notices.notice(ids[code], f"digest:{kind}:{code}:{key}", NoticeKind.announcement, f"digest-{kind}",
                           {"text": zh, "text_en": en, "digest": kind, "key": key, "tasks": tasks[:200]}, as_of)
            for code, (zh, en, tasks) in sorted(texts.items()) if code in ids]
    result.queued = notices.queue(session, rows)
    if result.queued:
        session.add(Audit(at=as_of, actor="system", action=f"digest.{kind}", object_type="digest", object_id=key,
                          detail={"queued": result.queued, "recipients": result.recipients}))
    return result


# =========================================================================== weekly, to leaders

def weekly_texts(session: Session, rt: Runtime, as_of: dt.datetime) -> dict[str, tuple[str, str, list[int]]]:
    """Person code → (zh, en, task ids) of each leader's weekly digest; leaders with nothing are left out."""
    report = compute(session, rt, _window(as_of), as_of)
    facts = {f.id: f for f in report.tasks}
    week = previous_week(as_of)
    ahead = as_of + AHEAD
    out = {}
    for row in report.by_leader:
        if row.key == NO_LEADER:
            continue
        mine = [facts[i] for i in row.figures.tasks]
        last = Figures.of(f for f in mine if f.due_at in week)
        overdue = sorted((f for f in mine if f.outcome == "missing"), key=lambda f: (-f.level, f.due_at, f.unit_code))
        upcoming = sorted((f for f in mine if f.outcome == "not_due" and f.due_at <= ahead), key=lambda f: f.due_at)
        hazards = _hazards(row.hazards, False)
        if not (last.total or overdue or upcoming or hazards):
            continue
        units = sorted({u for rel, us in row.relations.items() if rel != "own" for u in us})
        scope_zh = "、".join(units) + ("及本人职责" if "own" in row.relations else "") if units else "本人职责"
        scope_en = ", ".join(units) + (" and your own duties" if "own" in row.relations else "") if units else "your own duties"
        head_zh = f"【每周安全工作简报】{iso_week(as_of.date())}（{as_of:%Y-%m-%d}）\n{row.label}：您负责的 {scope_zh}"
        head_en = f"[Weekly safety digest] {iso_week(as_of.date())} ({as_of:%Y-%m-%d})\n{row.label}: {scope_en}"
        zh = [head_zh, f"上周（{week.start:%m-%d} 至 {week.end:%m-%d}）{_counts(last, False)}。"]
        en = [head_en, f"Last week ({week.start:%m-%d} to {week.end:%m-%d}): {_counts(last, True)}."]
        if overdue:
            zh += [f"目前逾期未完成 {len(overdue)} 项：", *_list(overdue, False)]
            en += [f"Overdue and still missing: {len(overdue)}", *_list(overdue, True)]
        if upcoming:
            zh += [f"未来 7 天到期 {len(upcoming)} 项：", *_list(upcoming, False)]
            en += [f"Due in the next 7 days: {len(upcoming)}", *_list(upcoming, True)]
        if hazards:
            zh.append(hazards)
            en.append(_hazards(row.hazards, True))
        if overdue:
            accountability = both("digest.accountability")
            zh.append(accountability[0])
            en.append(accountability[1])
        out[row.key] = ("\n".join(zh), "\n".join(en), [f.id for f in overdue])
    return out


def weekly(rt: Runtime, as_of: dt.datetime) -> DigestResult:
    """Queue this week's digest for every leader (idempotent within the ISO week of ``as_of``)."""
    as_of = local(as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        texts = weekly_texts(session, rt, as_of)
        result = _queue(session, "weekly", iso_week(as_of.date()), texts, as_of)
    if not texts:
        result.skipped = "no leader has anything to report"
    return result


# =========================================================================== daily, to the safety section

def operators(session: Session) -> list[str]:
    """Codes of the safety desk's people (``Org.safety_desk``)."""
    org = load_org(session)
    return [org.persons[p].code for p in org.safety_desk()]


def daily_text(session: Session, rt: Runtime, as_of: dt.datetime) -> tuple[str, str, list[int]]:
    report = compute(session, rt, _window(as_of), as_of)
    day = as_of.date()
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=as_of.tzinfo)
    today = Figures.of(f for f in report.tasks if f.due_at.date() == day)
    overdue = sorted((f for f in report.tasks if f.outcome == "missing"), key=lambda f: (-f.level, f.due_at, f.unit_code))
    by_level = Figures.of(overdue).levels
    pending = sum(1 for f in report.tasks if f.outcome == "pending")
    E, M = Escalation.__table__, Message.__table__
    fired = session.scalar(sa.select(sa.func.count()).select_from(E).where(E.c.fired_at >= start, E.c.fired_at <= as_of))
    failed = session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.c.status == "failed", M.c.created_at >= start, M.c.created_at <= as_of))
    levels_zh = "，".join(f"第{n}级 {by_level.get(n, 0)}" for n in report.levels)
    levels_en = ", ".join(f"level {n}: {by_level.get(n, 0)}" for n in report.levels)
    done_today = today["on_time"] + today["late"]
    zh = [f"【每日安全工作小结】{day:%Y-%m-%d}（星期{WEEKDAY_ZH[day.weekday()]}）",
          f"今日到期 {today.total} 项：已完成 {done_today}，待审核 {today['pending']}，"
          f"未完成 {today['missing'] + today['not_due']}，已豁免 {today['waived']}。",
          f"逾期未完成 {len(overdue)} 项（已督办：{levels_zh}）；今日督办 {fired} 次。",
          f"待审核材料 {pending} 份；今日发送失败消息 {failed} 条。"]
    en = [f"[Daily safety summary] {day:%Y-%m-%d}",
          f"Due today: {today.total} — {done_today} done, {today['pending']} awaiting review, "
          f"{today['missing'] + today['not_due']} not done, {today['waived']} waived.",
          f"Overdue and missing: {len(overdue)} (escalated — {levels_en}); {fired} escalation(s) fired today.",
          f"Evidence awaiting review: {pending}; messages failed today: {failed}."]
    if report.hazard_totals is not None:
        h = report.hazard_totals
        found_today = sum(1 for x in report.hazards or () if x.found_at >= start)
        zh.append(f"未销号隐患：一般 {h.general}，重大 {h.major}（逾期未整改 {h.overdue}）；今日新报 {found_today} 项。")
        en.append(f"Open hazards: {h.general} general, {h.major} major ({h.overdue} past deadline); {found_today} new today.")
    if overdue:
        zh += ["逾期最久、督办级别最高的任务：", *_list(overdue, False)]
        en += ["Most escalated overdue tasks:", *_list(overdue, True)]
    return "\n".join(zh), "\n".join(en), [f.id for f in overdue]


def daily(rt: Runtime, as_of: dt.datetime) -> DigestResult:
    """Queue today's summary for the safety section — on working days only (the calendar's, with
    make-up working days), idempotent within the day."""
    as_of = local(as_of)
    day = as_of.date()
    result = DigestResult("daily", day.isoformat())
    if not rt.calendar.is_workday(day):
        result.skipped = "not a working day"
        return result
    with session_scope(get_engine(rt.settings.db_url)) as session:
        codes = operators(session)
        if not codes:
            result.skipped = "no safety section (or safety lead) to tell: check the organisation's roles"
            return result
        zh, en, tasks = daily_text(session, rt, as_of)
        return _queue(session, "daily", day.isoformat(), {code: (zh, en, tasks) for code in codes}, as_of)
