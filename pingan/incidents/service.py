"""The incident-report clock (事故报告时限): phone report in 30 minutes, written report in 2 hours.

An incident is registered with its unit, time of occurrence, category and severity. Its two
reports become two occurrences of the incident duty (``catalog/flows/incident.yaml`` names it:
the Dehui list, 七（十）), due at the deadlines of the unit's jurisdiction; from then on the one
escalation engine (``pingan.duties.cycle.queue_escalations``, policy ``immediate``) escalates a missing
report at once and the outbox sends each notice exactly once, day and night.

Nothing waits in a process: registering schedules follow-up runs of the ``incident-clock``
deployment at each escalation time when a Prefect API is configured, and a sweep every few
minutes evaluates every open incident, so a lost schedule costs minutes, not a report.

Pure parts (rules, deadlines, follow-up times, report states, the timeline) take their inputs;
the service functions take a session and ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from models import Audit, Escalation, Evidence, Incident, Occurrence, Person, Unit
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import CatalogError, Duration, DutySpec, EscalationPolicy, read_data_file
from pingan.duties.cycle import queue_escalations
from pingan.core.db import get_engine, insert_ignore, session_scope
from pingan.core.i18n import pick, register as register_texts, t
from pingan.core.clock import local
from pingan.org.snapshot import Org, load_org
from pingan.duties.rules import escalation_schedule
from pingan.duties.runtime import Runtime

log = logging.getLogger("pingan.incidents.service")

I, O, E = Incident.__table__, Occurrence.__table__, Escalation.__table__
REPORTS = ("phone", "written")
# "<flow name>/<deployment name>" of the follow-up runs (deployments/incidents.py builds it).
INCIDENT_CLOCK_FLOW = "incident-clock"
INCIDENT_CLOCK_DEPLOYMENT_NAME = "事故报告时限"
INCIDENT_CLOCK_DEPLOYMENT = f"{INCIDENT_CLOCK_FLOW}/{INCIDENT_CLOCK_DEPLOYMENT_NAME}"
# Follow-up runs are scheduled for escalation events this long after a deadline at most
# (policies with repeats would otherwise schedule forever; the sweep covers the rest).
FOLLOW_UP_HORIZON = dt.timedelta(days=2)

register_texts({
    "inc.err.unit": {"zh-CN": "--unit：没有单位 {code!r}", "en": "--unit: no unit {code!r}"},
    "inc.err.carrier": {"zh-CN": "--unit：单位 {code}（{name}）不承担「{duty}」",
                        "en": "--unit: unit {code} ({name}) does not carry “{duty}”"},
    "inc.err.future": {"zh-CN": "--at：发生时间 {at} 晚于现在", "en": "--at: the time of occurrence {at} is in the future"},
    "inc.err.choice": {"zh-CN": "{option}：{value!r} 不是可选值（{choices}）",
                       "en": "{option}: {value!r} is not one of {choices}"},
    "inc.err.summary": {"zh-CN": "--summary：简要情况过长（最多 {n} 字）", "en": "--summary: too long (at most {n} characters)"},
    "inc.err.none": {"zh-CN": "没有编号为 {id} 的事故", "en": "no incident with id {id}"},
    "inc.err.before": {"zh-CN": "{option}：报告时间 {at} 早于事故发生时间 {occurred}",
                       "en": "{option}: the report time {at} is before the incident occurred ({occurred})"},
    "inc.err.after": {"zh-CN": "{option}：报告时间 {at} 晚于现在", "en": "{option}: the report time {at} is in the future"},
    "inc.report.phone": {"zh-CN": "电话报告", "en": "phone report"},
    "inc.report.written": {"zh-CN": "书面报告", "en": "written report"},
})


class IncidentError(ValueError):
    """A bad incident registration or report; the message names the field."""


# --------------------------------------------------------------------------- rules (data)

class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Rule):
    name: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=64)


class Jurisdiction(_Rule):
    duty: str | None = None
    phone: Duration | None = None
    written: Duration | None = None


class IncidentRules(_Rule):
    """``catalog/flows/incident.yaml``: the default deadlines, jurisdictions, categories, severities."""

    duty: str
    phone: Duration
    written: Duration
    jurisdictions: dict[str, Jurisdiction] = Field(default_factory=dict)
    categories: dict[str, Named] = Field(min_length=1)
    severities: dict[str, Named] = Field(min_length=1)

    @model_validator(mode="after")
    def _positive(self) -> IncidentRules:
        for where, rule in [("", self), *((f"jurisdictions.{k}.", j) for k, j in self.jurisdictions.items())]:
            for name in ("phone", "written"):
                value = getattr(rule, name)
                if value is not None and value <= dt.timedelta(0):
                    raise ValueError(f"{where}{name}: a deadline must be longer than zero")
        return self

    @property
    def duty_keys(self) -> list[str]:
        keys = [self.duty, *(j.duty for j in self.jurisdictions.values() if j.duty)]
        return list(dict.fromkeys(keys))


def rules_path(rt: Runtime) -> Path:
    return Path(rt.settings.catalog_dir) / "flows" / "incident.yaml"


def read_rules(path: Path, duties: Mapping[str, DutySpec]) -> IncidentRules:
    """Read and check the file; a bad file raises ``CatalogError`` naming the file and field."""
    rules = read_data_file(path, IncidentRules)
    for where, key in [("duty", rules.duty), *((f"jurisdictions.{c}.duty", j.duty) for c, j in rules.jurisdictions.items() if j.duty)]:
        duty = duties.get(key)
        if duty is None or duty.flow != "incident":
            raise CatalogError(f"{path}: field {where}: {key!r} is not a catalog duty with flow: incident")
        if not duty.enabled:
            raise CatalogError(f"{path}: field {where}: duty {key!r} is switched off (enabled: false)")
    return rules


def load_rules(rt: Runtime) -> IncidentRules:
    return read_rules(rules_path(rt), rt.catalog.duties)


# --------------------------------------------------------------------------- pure decisions

@dataclass(frozen=True)
class Deadlines:
    duty_key: str
    jurisdiction: str  # the unit code whose rule applied, "" for the default
    phone: dt.timedelta
    written: dt.timedelta


def deadlines_for(rules: IncidentRules, org: Org, unit_id: int) -> Deadlines:
    """The deadlines of the unit's nearest jurisdiction (itself, then its parents), else the default."""
    unit, seen = org.units.get(unit_id), set()
    while unit is not None and unit.id not in seen:
        rule = rules.jurisdictions.get(unit.code)
        if rule is not None:
            return Deadlines(rule.duty or rules.duty, unit.code, rule.phone or rules.phone, rule.written or rules.written)
        seen.add(unit.id)
        unit = org.units.get(unit.parent_id) if unit.parent_id else None
    return Deadlines(rules.duty, "", rules.phone, rules.written)


def report_key(incident_id: int, report: str) -> str:
    """The period key of a report's occurrence: what reminders and escalations call it."""
    return f"事故#{incident_id}·{'电话报告' if report == 'phone' else '书面报告'}"


def follow_up_times(dues: list[dt.datetime], policy: EscalationPolicy) -> list[dt.datetime]:
    """Every instant an escalation of these deadlines can fall due: when the clock must run."""
    out: set[dt.datetime] = set()
    for due in dues:
        start = due + policy.grace
        for event in escalation_schedule(policy, start):
            if event.at > start + FOLLOW_UP_HORIZON:
                break
            out.add(event.at)
    return sorted(out)


def choose(value: str, options: Mapping[str, Named], option: str) -> str:
    """A category or severity given by key, Chinese or English name → its key."""
    wanted = value.strip().lower()
    for key, named in options.items():
        if wanted in (key.lower(), named.name.lower(), named.name_en.lower()):
            return key
    choices = "、".join(f"{k}（{n.name}）" for k, n in options.items())
    raise IncidentError(t("inc.err.choice", option=option, value=value, choices=choices))


REPORT_STATES = ("pending", "on_time", "late", "missing")
REPORT_STATE_ZH = {"pending": "未到时限", "on_time": "按时", "late": "迟报", "missing": "未报（已超时）"}


def report_state(due: dt.datetime, at: dt.datetime | None, as_of: dt.datetime) -> str:
    """One report's state at ``as_of``: pending, on_time, late or missing."""
    if at is not None and at <= as_of:
        return "on_time" if at <= due else "late"
    return "pending" if as_of < due else "missing"


# --------------------------------------------------------------------------- registration

@dataclass(frozen=True)
class IncidentRequest:
    unit: str  # unit code
    occurred_at: dt.datetime
    category: str  # key, or Chinese or English name
    severity: str
    summary: str | None = None
    phoned_at: dt.datetime | None = None  # the phone report came with the registration


@dataclass(frozen=True)
class Registered:
    id: int
    created: bool
    phone_due_at: dt.datetime
    written_due_at: dt.datetime
    follow_ups: tuple[dt.datetime, ...]


MAX_SUMMARY = 2000


def register(
    session: Session, rt: Runtime, org: Org, req: IncidentRequest, as_of: dt.datetime, *, actor: str,
    rules: IncidentRules | None = None,
) -> Registered:
    """Record the incident and its two report tasks (idempotent on unit, time and category)."""
    rules = rules or load_rules(rt)
    unit = next((u for u in org.units.values() if u.code == req.unit.strip()), None)
    if unit is None:
        raise IncidentError(t("inc.err.unit", code=req.unit))
    deadlines = deadlines_for(rules, org, unit.id)
    duty = rt.catalog.duty(deadlines.duty_key)
    if not org.matches(duty.carrier, unit):
        raise IncidentError(t("inc.err.carrier", code=unit.code, name=unit.name, duty=pick(duty.name, duty.name_en)))
    occurred = local(req.occurred_at).replace(microsecond=0)
    if occurred > as_of:
        raise IncidentError(t("inc.err.future", at=f"{occurred:%Y-%m-%d %H:%M}"))
    category = choose(req.category, rules.categories, "--category")
    severity = choose(req.severity, rules.severities, "--severity")
    summary = (req.summary or "").strip() or None
    if summary and len(summary) > MAX_SUMMARY:
        raise IncidentError(t("inc.err.summary", n=MAX_SUMMARY))
    if req.phoned_at is not None:
        _check_report_time(local(req.phoned_at), occurred, as_of, "--phoned-at")

    phone_due, written_due = occurred + deadlines.phone, occurred + deadlines.written
    follow_ups = tuple(follow_up_times([phone_due, written_due], duty.escalation))
    inserted = insert_ignore(session, I, [{
        "unit_id": unit.id, "occurred_at": occurred, "category": category, "severity": severity,
        "summary": summary, "duty_key": duty.key, "jurisdiction": deadlines.jurisdiction,
        "phone_due_at": phone_due, "written_due_at": written_due, "registered_by": actor[:100],
        "registered_at": as_of,
    }], ["unit_id", "occurred_at", "category"])
    if not inserted:
        found = session.execute(sa.select(I.c.id, I.c.phone_due_at, I.c.written_due_at).where(
            I.c.unit_id == unit.id, I.c.occurred_at == occurred, I.c.category == category)).one()
        return Registered(found.id, False, found.phone_due_at, found.written_due_at, follow_ups)

    incident_id = inserted[0].id
    rows = [{
        "duty_key": duty.key, "unit_id": unit.id, "person_id": None, "person_key": 0,
        "period_key": report_key(incident_id, report), "period_start": occurred.date(), "period_end": occurred.date(),
        "opens_at": occurred, "due_at": due, "escalate_at": due + duty.escalation.grace, "created_at": as_of,
    } for report, due in (("phone", phone_due), ("written", written_due))]
    tasks = {r.period_key: r.id for r in insert_ignore(
        session, O, rows, ["duty_key", "unit_id", "person_key", "period_key"], returning=("id", "period_key"))}
    session.execute(sa.update(I).where(I.c.id == incident_id).values(
        phone_occurrence_id=tasks.get(report_key(incident_id, "phone")),
        written_occurrence_id=tasks.get(report_key(incident_id, "written")),
    ))
    session.add(Audit(at=as_of, actor=actor[:100], action="incident.registered", object_type="incident",
                      object_id=str(incident_id), detail={
                          "unit": unit.code, "occurred_at": occurred.isoformat(), "category": category,
                          "severity": severity, "duty": duty.key, "jurisdiction": deadlines.jurisdiction,
                          "phone_due": phone_due.isoformat(), "written_due": written_due.isoformat(),
                      }))
    if req.phoned_at is not None:
        record_report(session, incident_id, "phone", req.phoned_at, as_of, actor=actor)
    return Registered(incident_id, True, phone_due, written_due, follow_ups)


def _check_report_time(at: dt.datetime, occurred: dt.datetime, as_of: dt.datetime, option: str = "--at") -> None:
    if at < occurred:
        raise IncidentError(t("inc.err.before", option=option, at=f"{at:%Y-%m-%d %H:%M}", occurred=f"{occurred:%Y-%m-%d %H:%M}"))
    if at > as_of:
        raise IncidentError(t("inc.err.after", option=option, at=f"{at:%Y-%m-%d %H:%M}"))


def record_report(
    session: Session, incident_id: int, report: str, at: dt.datetime, as_of: dt.datetime, *, actor: str,
) -> tuple[bool, dt.datetime]:
    """Record that the phone or written report came in at ``at``; the first record stands.

    Returns (recorded now, the time on record). The report's task is accepted, so its
    escalation stops; escalations already fired stay in the timeline.
    """
    if report not in REPORTS:
        raise ValueError(f"report must be one of {REPORTS}")
    row = session.execute(sa.select(I).where(I.c.id == incident_id)).first()
    if row is None:
        raise IncidentError(t("inc.err.none", id=incident_id))
    at = local(at).replace(microsecond=0)
    _check_report_time(at, row.occurred_at, as_of)
    at_col, by_col = I.c[f"{report}_at"], I.c[f"{report}_by"]
    done = session.execute(
        sa.update(I).where(I.c.id == incident_id, at_col.is_(None)).values({at_col: at, by_col: actor[:100]})
        .returning(I.c.id)
    ).first()
    if done is None:
        return False, session.scalar(sa.select(at_col).where(I.c.id == incident_id))
    task = getattr(row, f"{report}_occurrence_id")
    if task is not None:
        session.execute(sa.update(O).where(O.c.id == task, O.c.review != "accepted").values(review="accepted", closed_at=at))
    session.add(Audit(at=as_of, actor=actor[:100], action=f"incident.{report}_reported", object_type="incident",
                      object_id=str(incident_id), detail={"at": at.isoformat(), "due": getattr(row, f"{report}_due_at").isoformat()}))
    return True, at


# --------------------------------------------------------------------------- the clock

def evaluate(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, *, rules: IncidentRules | None = None) -> list[int]:
    """Fire every escalation of a missing report that is due at ``as_of``; return the incidents concerned.

    Runs at any hour: an incident does not wait for working time.
    """
    rules = rules or load_rules(rt)
    fired = 0
    for key in rules.duty_keys:
        fired += queue_escalations(session, rt, rt.catalog.duty(key), org, as_of)
    if not fired:
        return []
    query = (
        sa.select(I.c.id).distinct()
        .join(E, sa.or_(E.c.occurrence_id == I.c.phone_occurrence_id, E.c.occurrence_id == I.c.written_occurrence_id))
        .where(E.c.fired_at == as_of).order_by(I.c.id)
    )
    return list(session.scalars(query))


def open_incident_ids(session: Session) -> list[int]:
    """Incidents with a report still missing (or rejected on the evidence page)."""
    waiting = sa.select(O.c.id).where(O.c.review.in_(("none", "rejected")))
    query = sa.select(I.c.id).where(sa.or_(
        I.c.phone_occurrence_id.in_(waiting), I.c.written_occurrence_id.in_(waiting),
    )).order_by(I.c.id)
    return list(session.scalars(query))


# --------------------------------------------------------------------------- reading and the timeline

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
    for e in view.escalations:
        what = t("inc.report." + e.report)
        repeat = f"（第 {e.seq} 次重复）" if e.seq else ""
        out.append(TimelineEntry(e.fired, "escalation",
                                 f"{what}未报 · 第 {e.level} 级{repeat} → {'、'.join(e.recipients) or '（已提醒的责任人，无新增 / nobody new）'}",
                                 order=4))
    return sorted((e for e in out if e.at <= as_of or e.event.endswith("_due")), key=lambda e: (e.at, e.order))


def timeline_markdown(rt: Runtime, view: IncidentView, as_of: dt.datetime) -> str:
    duty = rt.catalog.duties.get(view.duty_key)
    lines = [
        f"# 事故 #{view.id} {view.unit} · {view.category_name}（{view.severity_name}）",
        f"*Incident #{view.id} at {view.unit} ({view.unit_code})* — as of {as_of:%Y-%m-%d %H:%M} (Asia/Shanghai)",
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
                     f"{REPORT_STATE_ZH[state]} {state}")
    lines += ["", "| 时间 time | 事件 event | 说明 detail |", "|---|---|---|"]
    lines += [f"| {e.at:%Y-%m-%d %H:%M} | {EVENT_LABEL[e.event]} | {e.detail} |" for e in timeline(view, as_of)]
    return "\n".join(lines)


def open_table(views: list[IncidentView], as_of: dt.datetime) -> list[dict]:
    """One row per incident for the operator's table artifact."""
    return [{
        "事故 incident": f"#{v.id}", "单位 unit": v.unit, "发生 occurred": f"{v.occurred_at:%Y-%m-%d %H:%M}",
        "类别 category": v.category_name, "等级 severity": v.severity_name,
        "电话报告 phone": f"{REPORT_STATE_ZH[v.phone.state(as_of)]} {v.phone.state(as_of)}",
        "书面报告 written": f"{REPORT_STATE_ZH[v.written.state(as_of)]} {v.written.state(as_of)}",
        "督办级别 level": v.level(),
    } for v in views] or [{"事故 incident": "—", "单位 unit": "无未结事故 / no open incident"}]


# --------------------------------------------------------------------------- services (own transaction)

def prefect_configured() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))


Runner = Callable[..., object]


def schedule_follow_ups(incident_id: int, times: list[dt.datetime] | tuple[dt.datetime, ...], as_of: dt.datetime, *,
                        runner: Runner | None = None) -> list[dt.datetime]:
    """Schedule a run of the incident-clock deployment at each future ``times``; return those scheduled.

    Without a Prefect API (and no ``runner``) nothing is scheduled: the sweep deployment, or
    ``pingan incident sweep``, evaluates the clock instead. Failures are logged, not raised:
    the incident is registered either way and the sweep catches up.
    """
    future = [when for when in times if when > as_of]
    if not future:
        return []
    if runner is None:
        if not prefect_configured():
            return []
        from prefect.deployments import run_deployment

        def runner(name, **kwargs):
            return run_deployment(name, as_subflow=False, **kwargs)

    done = []
    for when in future:
        try:
            runner(INCIDENT_CLOCK_DEPLOYMENT, parameters={"incident_id": incident_id}, scheduled_time=when, timeout=0,
                   idempotency_key=f"incident-{incident_id}-{when.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S}")
            done.append(when)
        except Exception as exc:  # noqa: BLE001 — the sweep covers a follow-up that could not be scheduled
            log.warning("incident %s: could not schedule the follow-up at %s (%s); the sweep will evaluate it",
                        incident_id, when.isoformat(), type(exc).__name__)
    return done


@dataclass
class ReportResult:
    registered: Registered
    escalated: list[int] = field(default_factory=list)
    sent: int = 0
    scheduled: list[dt.datetime] = field(default_factory=list)


def report_incident(rt: Runtime, req: IncidentRequest, as_of: dt.datetime, *, actor: str, schedule: bool = True,
                    runner: Runner | None = None) -> ReportResult:
    """Register an incident (CLI, web page, API): record it, evaluate its clock at once, send,
    and schedule the follow-up runs. One transaction for the records; nothing changes on error."""
    from pingan.duties import service

    as_of = local(as_of)
    service.ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        registered = register(session, rt, load_org(session), req, as_of, actor=actor)
    escalated, sent, scheduled = start_clock(rt, registered.id, as_of, schedule=schedule and registered.created, runner=runner)
    return ReportResult(registered, escalated, sent, scheduled)


def start_clock(rt: Runtime, incident_id: int, as_of: dt.datetime, *, schedule: bool = True,
                runner: Runner | None = None) -> tuple[list[int], int, list[dt.datetime]]:
    """After registering: escalate at once what is already late, send, and schedule the follow-up
    runs; return (incidents escalated, messages sent, follow-ups scheduled)."""

    as_of = local(as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        escalated = evaluate(session, rt, load_org(session), as_of)
        row = session.execute(sa.select(I.c.duty_key, I.c.phone_due_at, I.c.written_due_at).where(I.c.id == incident_id)).one()
    sent = dispatch(rt, as_of).sent
    scheduled: list[dt.datetime] = []
    if schedule:
        times = follow_up_times([row.phone_due_at, row.written_due_at], rt.catalog.duty(row.duty_key).escalation)
        scheduled = schedule_follow_ups(incident_id, times, as_of, runner=runner)
        if scheduled:
            with session_scope(get_engine(rt.settings.db_url)) as session:
                session.add(Audit(at=as_of, actor="system", action="incident.follow_ups_scheduled", object_type="incident",
                                  object_id=str(incident_id), detail={"times": [w.isoformat() for w in scheduled]}))
    return escalated, sent, scheduled


def record(rt: Runtime, incident_id: int, report: str, at: dt.datetime, as_of: dt.datetime, *, actor: str) -> tuple[bool, dt.datetime]:
    """Record the phone or written report of an incident (own transaction)."""
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return record_report(session, incident_id, report, at, local(as_of), actor=actor)


def exists(rt: Runtime, incident_id: int) -> bool:
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return session.scalar(sa.select(I.c.id).where(I.c.id == incident_id)) is not None


def clock(rt: Runtime, as_of: dt.datetime) -> list[int]:
    """Evaluate every incident's clock at ``as_of`` (own transaction); return the incidents escalated."""
    from pingan.duties import service

    service.ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return evaluate(session, rt, load_org(session), local(as_of))
