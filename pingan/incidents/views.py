"""What people read of the incident clock: each incident with its reports and escalations, its
timeline (CLI, artifact table and markdown) and the table of open incidents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Evidence, Person, Unit
from pingan.core.clock import TZ_NAME
from pingan.core.i18n import pick, register, t
from pingan.duties.runtime import Runtime
from pingan.incidents.rules import REPORTS, IncidentRules, load_rules, report_state
from pingan.incidents.service import E, I, O


register({"inc.tl.unearned": {"zh-CN": "报告已于 {at} 送达（事后补录），此次督办不计入考核",
                              "en": "the report had come in at {at} (recorded later): not counted in the assessment"}})


def state_label(state: str) -> str:
    """A report's state as the artifacts and the CLI show it: ``迟报 late``."""
    return f"{t('inc.state.' + state)} {state}"


@dataclass(frozen=True)
class ReportView:
    report: str
    task: int | None
    due: dt.datetime
    at: dt.datetime | None  # recorded, or handed in on the evidence page
    by: str | None
    review: str

    def state(self, as_of: dt.datetime) -> str:
        return report_state(self.due, self.at, as_of)


@dataclass(frozen=True)
class EscalationView:
    report: str
    level: int
    seq: int
    due: dt.datetime
    fired: dt.datetime
    recipients: tuple[str, ...]  # names


@dataclass(frozen=True)
class IncidentView:
    id: int
    unit_code: str
    unit: str
    occurred_at: dt.datetime
    category: str
    category_name: str
    severity: str
    severity_name: str
    summary: str | None
    duty_key: str
    jurisdiction: str
    registered_at: dt.datetime
    registered_by: str
    phone: ReportView
    written: ReportView
    escalations: tuple[EscalationView, ...] = ()

    def is_open(self) -> bool:
        return any(r.review in ("none", "rejected") for r in (self.phone, self.written))

    def level(self) -> int:
        return max((e.level for e in self.escalations), default=0)


def load_views(session: Session, rt: Runtime, ids: list[int] | None = None, *, rules: IncidentRules | None = None) -> list[IncidentView]:
    """Incidents (all, or ``ids``) with their reports and escalations, in a few queries."""
    rules = rules or load_rules(rt)
    U = Unit.__table__
    query = sa.select(I, U.c.code.label("unit_code"), U.c.name.label("unit_name")).join(U, U.c.id == I.c.unit_id).order_by(I.c.id)
    if ids is not None:
        query = query.where(I.c.id.in_(ids))
    rows = session.execute(query).all()
    if not rows:
        return []
    tasks = {tid for r in rows for tid in (r.phone_occurrence_id, r.written_occurrence_id) if tid}
    review = dict(session.execute(sa.select(O.c.id, O.c.review).where(O.c.id.in_(tasks))).all()) if tasks else {}
    EV = Evidence.__table__
    handed = dict(session.execute(
        sa.select(EV.c.occurrence_id, sa.func.min(EV.c.submitted_at)).where(EV.c.occurrence_id.in_(tasks)).group_by(EV.c.occurrence_id)
    ).all()) if tasks else {}
    fired: dict[int, list] = {}
    people: dict[int, str] = {}
    if tasks:
        for e in session.execute(sa.select(E).where(E.c.occurrence_id.in_(tasks)).order_by(E.c.fired_at, E.c.level, E.c.seq)):
            fired.setdefault(e.occurrence_id, []).append(e)
        pids = {p for es in fired.values() for e in es for p in (e.recipients or [])}
        if pids:
            people = dict(session.execute(sa.select(Person.id, Person.name).where(Person.id.in_(pids))).all())

    def report(r, kind: str) -> ReportView:
        task = getattr(r, f"{kind}_occurrence_id")
        at = getattr(r, f"{kind}_at") or (handed.get(task) if review.get(task) in ("submitted", "accepted") else None)
        return ReportView(kind, task, getattr(r, f"{kind}_due_at"), at, getattr(r, f"{kind}_by"), review.get(task, "none"))

    out = []
    for r in rows:
        escalations = []
        for kind in REPORTS:
            for e in fired.get(getattr(r, f"{kind}_occurrence_id"), []):
                escalations.append(EscalationView(kind, e.level, e.seq, e.due_at, e.fired_at,
                                                  tuple(people.get(p, str(p)) for p in (e.recipients or []))))
        escalations.sort(key=lambda e: (e.fired, e.due, e.report))
        cat, sev = rules.categories.get(r.category), rules.severities.get(r.severity)
        out.append(IncidentView(
            id=r.id, unit_code=r.unit_code, unit=r.unit_name, occurred_at=r.occurred_at, category=r.category,
            category_name=pick(cat.name, cat.name_en) if cat else r.category, severity=r.severity,
            severity_name=pick(sev.name, sev.name_en) if sev else r.severity, summary=r.summary,
            duty_key=r.duty_key, jurisdiction=r.jurisdiction, registered_at=r.registered_at,
            registered_by=r.registered_by, phone=report(r, "phone"), written=report(r, "written"),
            escalations=tuple(escalations),
        ))
    return out


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    event: str  # occurred | registered | phone_due | phone | written_due | written | escalation | missing
    detail: str = ""
    order: int = 0  # ties at one instant: deadline, then report, then escalation

    def row(self) -> dict:
        return {"时间 time": f"{self.at:%Y-%m-%d %H:%M}", "事件 event": EVENT_LABEL[self.event], "说明 detail": self.detail}


EVENT_LABEL = {
    "occurred": "事故发生 occurred", "registered": "登记 registered",
    "phone_due": "电话报告时限 phone deadline", "phone": "电话报告 phone report",
    "written_due": "书面报告时限 written deadline", "written": "书面报告 written report",
    "escalation": "督办 escalation", "missing": "仍未报告 still missing",
}


def _minutes(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} 小时 {minutes % 60} 分钟" if minutes >= 60 else f"{minutes} 分钟"


def timeline(view: IncidentView, as_of: dt.datetime) -> list[TimelineEntry]:
    """Occurred, registered, each deadline and report, each escalation, and what is still missing."""
    out = [
        TimelineEntry(view.occurred_at, "occurred", f"{view.category_name}（{view.severity_name}）" + (f"：{view.summary}" if view.summary else "")),
        TimelineEntry(view.registered_at, "registered", view.registered_by, order=1),
    ]
    for r in (view.phone, view.written):
        out.append(TimelineEntry(r.due, f"{r.report}_due", "", order=2))
        state = r.state(as_of)
        if state in ("on_time", "late"):
            late = f"，迟报 {_minutes(r.at - r.due)} / late" if state == "late" else "，按时 / on time"
            out.append(TimelineEntry(r.at, r.report, f"{r.by or '证据页面 evidence page'}{late}", order=3))
        elif state == "missing":
            out.append(TimelineEntry(as_of, "missing", f"{t('inc.report.' + r.report)}：超时 {_minutes(as_of - r.due)}", order=5))
    reports = {r.report: r for r in (view.phone, view.written)}
    for e in view.escalations:
        what = t("inc.report." + e.report)
        repeat = f"（第 {e.seq} 次重复）" if e.seq else ""
        came = reports[e.report].at
        # recorded after the fact: the report had come in before this level fell due
        unearned = f"；{t('inc.tl.unearned', at=f'{came:%H:%M}')}" if came is not None and came <= e.due else ""
        out.append(TimelineEntry(e.fired, "escalation",
                                 f"{what}未报 · 第 {e.level} 级{repeat} → {'、'.join(e.recipients) or '（已提醒的责任人，无新增 / nobody new）'}"
                                 + unearned, order=4))
    return sorted((e for e in out if e.at <= as_of or e.event.endswith("_due")), key=lambda e: (e.at, e.order))


def timeline_markdown(rt: Runtime, view: IncidentView, as_of: dt.datetime) -> str:
    duty = rt.catalog.duties.get(view.duty_key)
    lines = [
        f"# 事故 #{view.id} {view.unit} · {view.category_name}（{view.severity_name}）",
        f"*Incident #{view.id} at {view.unit} ({view.unit_code})* — as of {as_of:%Y-%m-%d %H:%M} ({TZ_NAME})",
        "",
    ]
    if duty is not None:
        title = rt.catalog.documents.get(duty.source.document, duty.source.document)
        lines += [f"**依据 / source**：《{title}》{duty.source.clause}（`{duty.source.document}`）", "", f"> {duty.text}", ""]
    if view.jurisdiction:
        lines += [f"时限依据 {view.jurisdiction} 的规定 / deadlines of jurisdiction {view.jurisdiction}", ""]
    for r in (view.phone, view.written):
        state = r.state(as_of)
        at = f"{r.at:%H:%M}" if r.at is not None and r.at <= as_of else "—"
        lines.append(f"- **{t('inc.report.' + r.report)}**：截止 due {r.due:%Y-%m-%d %H:%M} · 报告 reported {at} · "
                     + state_label(state))
    lines += ["", "| 时间 time | 事件 event | 说明 detail |", "|---|---|---|"]
    lines += [f"| {e.at:%Y-%m-%d %H:%M} | {EVENT_LABEL[e.event]} | {e.detail} |" for e in timeline(view, as_of)]
    return "\n".join(lines)


def open_table(views: list[IncidentView], as_of: dt.datetime) -> list[dict]:
    """One row per incident for the operator's table artifact."""
    return [{
        "事故 incident": f"#{v.id}", "单位 unit": v.unit, "发生 occurred": f"{v.occurred_at:%Y-%m-%d %H:%M}",
        "类别 category": v.category_name, "等级 severity": v.severity_name,
        "电话报告 phone": state_label(v.phone.state(as_of)),
        "书面报告 written": state_label(v.written.state(as_of)),
        "督办级别 level": v.level(),
    } for v in views] or [{"事故 incident": "—", "单位 unit": "无未结事故 / no open incident"}]
