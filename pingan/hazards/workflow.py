"""The daily hazard watch (双重预防) as a workflow — advance → remind → escalate.

For an instant ``as_of`` it advances — takes platform upload references from the half-monthly
check evidence, plans the risk-point checks whose periods are open, marks hazards that passed
their deadline — then, in working time, reminds (rectifiers before the deadline, risk-point
owners, checks not yet uploaded to the supervision platform) and escalates (overdue hazards,
missed checks) up the chain, with the duty cycle's reminder and escalation rules
(``pingan.duties.rules``). Each step is one transaction of its own and returns its counts.

The Prefect flow ``hazard-watch`` runs these steps as task runs; ``pingan hazard watch --local``
and the tests run them with ``WATCH.run`` — the same functions, the same transactions. Sending
is the dispatcher's job (``pingan.delivery.workflow``).

Each reminder step and escalation level reaches a person once: hazard steps are claimed by a
``HazardEvent`` unique on (hazard, step); a risk check's escalation by a conditional update of
its last fired step, so overlapping runs cannot fire it twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Evidence, NoticeKind, Occurrence, Review, Waiver
from models.hazard import Hazard, HazardEvent, HazardLevel, PlatformUpload, RiskCheck, RiskLevel, RiskPoint
from pingan.core.clock import TZ, local
from pingan.core.db import get_engine, insert_ignore, session_scope
from pingan.core.i18n import register, t
from pingan.core.workflow import Step, Workflow
from pingan.delivery import notices
from pingan.duties.rules import TaskView, escalations_due, open_periods, reminder_due, step_time
from pingan.duties.runtime import Runtime
from pingan.duties.workflow import in_working_time
from pingan.hazards.rules import (
    OPEN_STATES, CheckView, HazardConfig, HazardView, assignees, fired_from, fired_steps, hazard_config,
)
from pingan.hazards.service import hazard_payload
from pingan.org.snapshot import Org, load_org

H, HE, PU = Hazard.__table__, HazardEvent.__table__, PlatformUpload.__table__
RP, RC, O, EV = RiskPoint.__table__, RiskCheck.__table__, Occurrence.__table__, Evidence.__table__

register({
    "hz.reason.overdue": {"zh-CN": "逾期未完成整改", "en": "not rectified by the deadline"},
    "upload.step": {"zh-CN": "尚未录入上传监管平台的编号，请上传并登记", "en": "not yet recorded as uploaded to the supervision platform"},
    "rc.name": {"zh-CN": "{level}点检查：{place}", "en": "{level} point check: {place}"},
    "rc.reason": {"zh-CN": "逾期未检查", "en": "not checked in time"},
})


# =========================================================================== the steps

def advance(rt: Runtime, as_of: dt.datetime) -> dict:
    """Take platform uploads from evidence, plan the risk checks now open, mark hazards past their deadline."""
    as_of = local(as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        org = load_org(session)
        uploads = sync_uploads(session, rt, as_of)
        checks = plan_checks(session, rt, org, as_of)
        overdue = mark_overdue(session, rt, as_of)
    return {"uploads_synced": uploads, "checks_planned": checks, "overdue_marked": overdue}


def remind(rt: Runtime, as_of: dt.datetime) -> dict:
    """Reminders of hazards, risk checks and missing platform uploads (working time only)."""
    as_of = local(as_of)
    if not in_working_time(rt, as_of):
        return {"hazard_reminders": 0, "check_reminders": 0, "upload_reminders": 0, "working_time": False}
    with session_scope(get_engine(rt.settings.db_url)) as session:
        org = load_org(session)
        hazards = queue_hazard_reminders(session, rt, org, as_of)
        checks = queue_check_reminders(session, rt, org, as_of)
        uploads = queue_upload_reminders(session, rt, org, as_of)
    return {"hazard_reminders": hazards, "check_reminders": checks, "upload_reminders": uploads, "working_time": True}


def escalate(rt: Runtime, as_of: dt.datetime) -> dict:
    """Escalations of overdue hazards and missed risk checks (working time only)."""
    as_of = local(as_of)
    if not in_working_time(rt, as_of):
        return {"hazard_escalations": 0, "check_escalations": 0, "working_time": False}
    with session_scope(get_engine(rt.settings.db_url)) as session:
        org = load_org(session)
        hazards = queue_hazard_escalations(session, rt, org, as_of)
        checks = queue_check_escalations(session, rt, org, as_of)
    return {"hazard_escalations": hazards, "check_escalations": checks, "working_time": True}


WATCH = Workflow("hazard-watch", (Step("advance", advance), Step("remind", remind), Step("escalate", escalate)))


# =========================================================================== hazards

def _open_views(session: Session, where=None) -> list[tuple[HazardView, str]]:
    query = sa.select(H.c.id, H.c.unit_id, H.c.level, H.c.state, H.c.round, H.c.found_at, H.c.deadline,
                      H.c.rectifier_id, H.c.description).where(H.c.state.in_(OPEN_STATES))
    if where is not None:
        query = query.where(where)
    return [(HazardView(r.id, r.unit_id, r.level, r.state, r.round, r.found_at, r.deadline, r.rectifier_id), r.description)
            for r in session.execute(query.order_by(H.c.id))]


def mark_overdue(session: Session, rt: Runtime, as_of: dt.datetime) -> int:
    """Record, once per round, that an open hazard has passed its deadline; return how many."""
    rows = [{"hazard_id": h.id, "at": as_of, "actor": "system", "action": "overdue", "from_state": h.state,
             "to_state": h.state, "round": h.round, "step": f"r{h.round}:overdue", "note": None,
             "detail": {"deadline": h.deadline.isoformat()}}
            for h, _ in _open_views(session, H.c.deadline < as_of)]
    return len(insert_ignore(session, HE, rows, ["hazard_id", "step"]))


def queue_hazard_reminders(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """The due reminder step of every open hazard, to its rectifier, once per round and step."""
    cfg = hazard_config(rt)
    owed, events = [], []
    for h, description in _open_views(session, H.c.found_at <= as_of):
        spec = cfg.hazard_levels[HazardLevel(h.level)]
        step = reminder_due(spec.reminders, h.task(spec.escalation), as_of)
        if step is None or h.rectifier_id not in org.persons:
            continue
        payload = hazard_payload(cfg, org, h, description, step=step.key)
        owed.append(notices.notice(h.rectifier_id, f"hz:{h.id}:r{h.round}:{step.key}", NoticeKind.reminder, step.key, payload,
                                   as_of, duty_key="hazard", release_at=rt.release_at(as_of, due_at=h.deadline)))
        events.append({"hazard_id": h.id, "at": as_of, "actor": "system", "action": "reminded", "from_state": h.state,
                       "to_state": h.state, "round": h.round, "step": f"r{h.round}:{step.key}", "note": None,
                       "detail": {"recipients": [h.rectifier_id], "at": step_time(step, h.task(spec.escalation)).isoformat()}})
    insert_ignore(session, HE, events, ["hazard_id", "step"], returning=())
    return notices.queue(session, owed)


def queue_hazard_escalations(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """Fire the escalation levels due for overdue hazards; each level reaches its leaders once."""
    cfg = hazard_config(rt)
    views = _open_views(session, H.c.deadline <= as_of)
    if not views:
        return 0
    steps: dict[int, list[str]] = defaultdict(list)
    for row in session.execute(sa.select(HE.c.hazard_id, HE.c.step).where(
            HE.c.hazard_id.in_([h.id for h, _ in views]), HE.c.step.is_not(None))):
        steps[row.hazard_id].append(row.step)
    events, plan = [], {}
    for h, description in views:
        policy = cfg.policy(h.level)
        for event in escalations_due(policy, h.task(policy), as_of, fired_steps(steps[h.id], h.round)):
            recipients = [p for p in org.escalation_targets(event.targets, h.unit_id) if p != h.rectifier_id]
            step = f"r{h.round}:e{event.level}.{event.seq}"
            events.append({"hazard_id": h.id, "at": as_of, "actor": "system", "action": "escalated", "from_state": h.state,
                           "to_state": h.state, "round": h.round, "step": step, "note": None,
                           "detail": {"level": event.level, "seq": event.seq, "recipients": recipients,
                                      "targets": list(event.targets), "due": event.at.isoformat()}})
            plan[(h.id, step)] = (h, description, event, recipients)
    inserted = insert_ignore(session, HE, events, ["hazard_id", "step"], returning=("id", "hazard_id", "step"))
    owed, audits = [], []
    for row in inserted:
        h, description, event, recipients = plan[(row.hazard_id, row.step)]
        rectifier = org.persons.get(h.rectifier_id)
        payload = hazard_payload(cfg, org, h, description, level=event.level, seq=event.seq, reason=t("hz.reason.overdue"),
                                 assignees=[rectifier.name] if rectifier else [])
        step = f"L{event.level}" + (f"R{event.seq}" if event.seq else "")
        major = h.level == HazardLevel.major.value  # a major hazard past its deadline cannot wait for a digest
        owed += [notices.notice(pid, f"hz:{h.id}:r{h.round}:e{event.level}.{event.seq}", NoticeKind.escalation, step, payload,
                                as_of, duty_key="hazard", level=event.level, urgent=major,
                                release_at=rt.release_at(as_of, urgent=major))
                 for pid in recipients]
        audits.append({"at": as_of, "actor": "system", "action": "hazard.escalated", "object_type": "hazard",
                       "object_id": str(h.id), "detail": {"round": h.round, "level": event.level, "seq": event.seq,
                                                          "recipients": recipients}})
    notices.queue(session, owed)
    if audits:
        session.execute(sa.insert(Audit.__table__), audits)
    return len(inserted)


# =========================================================================== supervision platform uploads

def sync_uploads(session: Session, rt: Runtime, as_of: dt.datetime) -> int:
    """Take the platform reference from half-monthly check evidence handed in (not rejected)."""
    cfg = hazard_config(rt)
    spec = cfg.data.half_monthly_checks
    query = (
        sa.select(EV.c.occurrence_id, EV.c.fields, EV.c.submitted_at, EV.c.version)
        .join(O, O.c.id == EV.c.occurrence_id)
        .outerjoin(PU, PU.c.occurrence_id == EV.c.occurrence_id)
        .where(O.c.duty_key.in_(cfg.upload_duties), PU.c.id.is_(None), EV.c.status != Review.rejected.value)
        .order_by(EV.c.occurrence_id, EV.c.version.desc())
    )
    rows, seen = [], set()
    for r in session.execute(query):
        if r.occurrence_id in seen:
            continue
        reference = str((r.fields or {}).get(spec.reference_field) or "").strip()
        if not reference:
            continue
        seen.add(r.occurrence_id)
        try:
            day = dt.date.fromisoformat(str((r.fields or {}).get(spec.date_field)))
        except ValueError:
            day = r.submitted_at.astimezone(TZ).date()
        rows.append({"occurrence_id": r.occurrence_id, "reference": reference[:100], "uploaded_on": day,
                     "recorded_at": as_of, "recorded_by": "system", "source": "evidence"})
    return len(insert_ignore(session, PU, rows, ["occurrence_id"]))


def queue_upload_reminders(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """Remind the people of a half-monthly check that has no platform upload recorded."""
    cfg = hazard_config(rt)
    spec = cfg.data.half_monthly_checks
    waived = (sa.select(sa.func.max(Waiver.until)).where(Waiver.occurrence_id == O.c.id, Waiver.revoked_at.is_(None))
              .scalar_subquery())
    first = min(step.offset for step in spec.reminders)
    query = (
        sa.select(O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.opens_at, O.c.due_at,
                  O.c.escalate_at, O.c.review, waived.label("waived_until"))
        .outerjoin(PU, PU.c.occurrence_id == O.c.id)
        .where(O.c.duty_key.in_(cfg.upload_duties), PU.c.id.is_(None),
               O.c.due_at <= as_of - first,
               O.c.due_at > as_of - spec.stop_after)
    )
    rows = []
    for r in session.execute(query):
        duty = rt.catalog.duties.get(r.duty_key)
        if duty is None or (r.waived_until is not None and as_of < r.waived_until):
            continue
        task = TaskView(r.id, r.duty_key, r.unit_id, r.person_id, r.period_key, r.opens_at, r.due_at,
                        r.due_at + spec.stop_after, "none")
        step = reminder_due(spec.reminders, task, as_of)
        if step is None:
            continue
        unit = org.units.get(r.unit_id)
        payload = {"duty": r.duty_key, "unit": unit.name if unit else str(r.unit_id), "person": None,
                   "period": r.period_key, "due": r.due_at.isoformat(), "step": t("upload.step")}
        rows += [notices.notice(pid, f"u:{r.id}:{step.key}", NoticeKind.reminder, f"upload@{step.key}", payload, as_of,
                                duty_key=r.duty_key, occurrence_id=r.id, release_at=rt.release_at(as_of))
                 for pid in org.assignees(duty.carrier, r.unit_id, r.person_id)]
    return notices.queue(session, rows)


# =========================================================================== risk-point checks

def plan_checks(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """One check per active point for each open period of its level's cadence; return how many were new.

    A point owes no check for a period whose deadline passed before the point was registered.
    """
    cfg = hazard_config(rt)
    points = session.execute(sa.select(RP.c.id, RP.c.unit_id, RP.c.level, RP.c.created_at).where(RP.c.active.is_(True))).all()
    by_level: dict[str, list] = defaultdict(list)
    for p in points:
        if p.unit_id in org.units:
            by_level[p.level].append(p)
    rows = []
    for level, pts in by_level.items():
        duty = cfg.check_duties[RiskLevel(level)]
        for period, opens_at, due_at, escalate_at in open_periods(duty, as_of, rt.ctx):
            rows += [{"risk_point_id": p.id, "unit_id": p.unit_id, "level": level, "period_key": period.key,
                      "period_start": period.start, "period_end": period.end, "opens_at": opens_at, "due_at": due_at,
                      "escalate_at": escalate_at, "escalation_level": 0, "escalation_seq": 0, "created_at": as_of}
                     for p in pts if due_at >= p.created_at]
    return len(insert_ignore(session, RC, rows, ["risk_point_id", "period_key"]))


def _open_checks(session: Session, *where) -> list[CheckView]:
    """Unchecked checks of active points still at the level they were planned for."""
    query = (sa.select(RC.c.id, RC.c.risk_point_id, RC.c.unit_id, RC.c.level, RC.c.period_key, RC.c.opens_at,
                       RC.c.due_at, RC.c.escalate_at, RC.c.escalation_level, RC.c.escalation_seq, RP.c.place,
                       RP.c.code, RP.c.owner_id)
             .join(RP, RP.c.id == RC.c.risk_point_id)
             .where(RC.c.checked_at.is_(None), RP.c.active.is_(True), RP.c.level == RC.c.level, *where)
             .order_by(RC.c.id))
    return [CheckView(**r._mapping) for r in session.execute(query)]


def _check_payload(cfg: HazardConfig, org: Org, c: CheckView, **extra) -> dict:
    unit = org.units.get(c.unit_id)
    owner = org.persons.get(c.owner_id) if c.owner_id else None
    return {"duty": t("rc.name", level=cfg.risk_name(c.level), place=c.place[:80]),
            "unit": unit.name if unit else str(c.unit_id), "person": owner.name if owner else None,
            "period": c.period_key, "due": c.due_at.isoformat(), "risk_point": c.risk_point_id, "check": c.id, **extra}


def queue_check_reminders(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """The due reminder step of every open check, to the point's owner (or the unit's check roles)."""
    cfg = hazard_config(rt)
    rows = []
    for c in _open_checks(session, RC.c.opens_at <= as_of, RC.c.escalate_at > as_of):
        duty = cfg.check_duties[RiskLevel(c.level)]
        step = reminder_due(duty.reminders, c.task(), as_of)
        if step is None:
            continue
        payload = _check_payload(cfg, org, c, step=step.key)
        rows += [notices.notice(pid, f"rc:{c.id}:{step.key}", NoticeKind.reminder, step.key, payload, as_of, duty_key=duty.key,
                                release_at=rt.release_at(as_of, due_at=c.due_at))
                 for pid in assignees(org, cfg, c.unit_id, c.owner_id)]
    return notices.queue(session, rows)


def queue_check_escalations(session: Session, rt: Runtime, org: Org, as_of: dt.datetime) -> int:
    """Fire the due escalation steps of missed checks; return the events fired."""
    cfg = hazard_config(rt)
    fired = 0
    owed, audits = [], []
    for c in _open_checks(session, RC.c.escalate_at <= as_of):
        duty = cfg.check_duties[RiskLevel(c.level)]
        events = escalations_due(duty.escalation, c.task(), as_of, fired_from(duty.escalation, c.escalation_level, c.escalation_seq))
        if not events:
            continue
        last = events[-1]
        claimed = session.execute(
            sa.update(RC).where(RC.c.id == c.id, RC.c.escalation_level == c.escalation_level,
                                RC.c.escalation_seq == c.escalation_seq)
            .values(escalation_level=last.level, escalation_seq=last.seq).returning(RC.c.id)
        ).first()
        if claimed is None:  # another run fired them
            continue
        fired += len(events)
        owners = set(assignees(org, cfg, c.unit_id, c.owner_id))
        names = [org.persons[p].name for p in sorted(owners) if p in org.persons]
        for event in events:
            recipients = [p for p in org.escalation_targets(event.targets, c.unit_id) if p not in owners]
            payload = _check_payload(cfg, org, c, level=event.level, seq=event.seq, reason=t("rc.reason"), assignees=names)
            step = f"L{event.level}" + (f"R{event.seq}" if event.seq else "")
            owed += [notices.notice(pid, f"rc:{c.id}:e{event.level}.{event.seq}", NoticeKind.escalation, step, payload, as_of,
                                    level=event.level, duty_key=duty.key, release_at=rt.release_at(as_of))
                     for pid in recipients]
            audits.append({"at": as_of, "actor": "system", "action": "risk_check.escalated", "object_type": "risk_check",
                           "object_id": str(c.id), "detail": {"level": event.level, "seq": event.seq,
                                                              "recipients": recipients, "due": event.at.isoformat()}})
    notices.queue(session, owed)
    if audits:
        session.execute(sa.insert(Audit.__table__), audits)
    return fired
