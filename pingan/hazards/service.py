"""The hazard closed loop (隐患排查、整改、销号), the supervision-platform uploads, the risk-point
checks and the import of the risk register: what the CLI, the evidence page and the watch share.

A hazard moves along ``pingan.hazards.rules.MOVES``; each move is a conditional update on
(id, state, round), so two people acting at once cannot both move it, and each is a
``HazardEvent`` row. A 重大隐患 notifies the bureau's safety section and the bureau leader
answering for the unit as soon as it is reported. Photos and evidence files are checked and
stored as the evidence page's (``pingan.evidence.files``); every notice is queued with
``pingan.delivery.notices``.

The functions taking a ``session`` never commit (the caller's ``session_scope`` does, or rolls
everything back); :func:`act` is that caller for one person's action, and sends what it queued.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, NoticeKind, Occurrence
from models.hazard import Hazard, HazardEvent, HazardFile, HazardLevel, HazardSource, HazardState, PlatformUpload, RiskCheck, RiskPoint
from pingan.core.clock import TZ
from pingan.core.db import get_engine, insert_ignore, session_scope
from pingan.core.i18n import MESSAGES, register, t
from pingan.delivery import notices
from pingan.duties.runtime import Runtime
from pingan.evidence import files as evfiles
from pingan.hazards.rules import HazardConfig, HazardError, HazardView, deadline_after, hazard_config, next_state
from pingan.hazards.sheets import read_points
from pingan.org.snapshot import Org, load_org

H, HE, HF, PU = Hazard.__table__, HazardEvent.__table__, HazardFile.__table__, PlatformUpload.__table__
RP, RC, O = RiskPoint.__table__, RiskCheck.__table__, Occurrence.__table__

register({
    "hz.err.no_hazard": {"zh-CN": "没有编号为 {id} 的隐患", "en": "no hazard with id {id}"},
    "hz.err.changed": {"zh-CN": "隐患 #{id} 的状态刚被他人更改，请刷新后重试", "en": "hazard #{id} was just changed by someone else: reload and try again"},
    "hz.err.same_person": {
        "zh-CN": "核验人不能是整改人（{name}）：隐患 #{id} 须由整改人以外的人员核验",
        "en": "the verifier must not be the rectifier ({name}): hazard #{id} must be verified by someone else"},
    "hz.err.unit": {"zh-CN": "没有在用单位 {unit}", "en": "no active unit {unit}"},
    "hz.err.person": {"zh-CN": "{role}：没有在职人员 {person}", "en": "{role_en}: no active person {person}"},
    "hz.err.text": {"zh-CN": "{field}不能为空（最多 {n} 字）", "en": "{field_en} must not be empty (at most {n} characters)"},
    "hz.err.source": {"zh-CN": "隐患来源 {value!r} 应为 {allowed}", "en": "hazard source {value!r} must be one of {allowed}"},
    "hz.err.deadline": {"zh-CN": "整改期限 {deadline} 不能早于发现时间 {found}", "en": "the deadline {deadline} is before the hazard was found ({found})"},
    "hz.err.files": {"zh-CN": "整改完成须上传至少 {n} 个整改材料（整改后照片等）", "en": "a rectification needs at least {n} evidence file(s) (photos after the work …)"},
    "hz.err.note": {"zh-CN": "{what}须填写说明", "en": "{what_en} needs a note"},
    "hz.err.task": {"zh-CN": "任务 #{task} 不是本单位的半月隐患排查任务", "en": "task #{task} is not a half-monthly hazard check of this unit"},
    "hz.err.point": {"zh-CN": "风险点 #{point} 不属于该单位", "en": "risk point #{point} does not belong to that unit"},
    "hz.err.upload_task": {"zh-CN": "任务 #{task} 不是半月隐患排查任务（监管平台上传只记录在这类任务上）",
                           "en": "task #{task} is not a half-monthly hazard check (platform uploads belong to those)"},
    "hz.err.reference": {"zh-CN": "监管平台上传编号不能为空（最多 100 字）", "en": "the platform reference must not be empty (at most 100 characters)"},
    "hz.err.upload_date": {"zh-CN": "上传日期 {day} 晚于今天", "en": "the upload date {day} is in the future"},
    "hz.name": {"zh-CN": "{level}整改：{description}", "en": "{level} to rectify: {description}"},
    "hz.step.assigned": {"zh-CN": "新隐患，请按期整改", "en": "new hazard: rectify it by the deadline"},
    "hz.step.reopened": {"zh-CN": "核验未通过，请重新整改", "en": "verification failed: rectify it again"},
    "hz.step.verify": {"zh-CN": "整改已完成，请核验（整改人以外的人员）", "en": "rectified: please verify (someone other than the rectifier)"},
    "hz.major.text": {
        "zh-CN": "【重大隐患】{unit} 报告重大隐患 #{id}：{place}，{description}。整改责任人：{rectifier}，整改期限：{deadline}。"
                 "请安全科和包保（分管）领导督促整改。",
        "en": "[Major hazard] {unit} reported major hazard #{id}: {place}, {description}. Rectifier: {rectifier}; "
              "deadline {deadline}. The safety section and the responsible bureau leader are asked to supervise."},
    "risk.err.no_point": {"zh-CN": "没有风险点 {point}", "en": "no risk point {point}"},
    "risk.err.inactive": {"zh-CN": "风险点 {point} 已停用", "en": "risk point {point} is inactive"},
    "risk.err.no_check": {"zh-CN": "风险点 {point} 当前没有待完成的检查（下一检查周期尚未开始）",
                          "en": "risk point {point} has no check waiting (its next period has not begun)"},
    "risk.err.result": {"zh-CN": "检查结果应为 ok（正常）或 hazard（发现隐患）", "en": "the result must be ok or hazard"},
    "risk.err.hazard": {"zh-CN": "发现隐患时须填写隐患描述、等级和整改责任人", "en": "a hazard found needs its description, level and rectifier"},
})


# =========================================================================== files (checked and stored as the evidence page does)

def check_files(rt: Runtime, uploads: Sequence) -> list[evfiles.CheckedFile]:
    """Check photos and evidence files as the evidence page does (type, size, content); nothing stored."""
    limits = evfiles.Limits.of(rt.settings)
    uploads = [u for u in uploads if u.filename or evfiles.upload_size(u)]
    if len(uploads) > limits.max_files:
        raise HazardError(t("ev.err.max_files", n=limits.max_files))
    checked, errors = [], []
    for upload in uploads:
        try:
            checked.append(evfiles.check_file(upload, limits))
        except evfiles.EvidenceError as exc:
            errors.extend(exc.messages)
    if errors:
        raise HazardError("; ".join(errors))
    return checked


def _store(rt: Runtime, session: Session, hazard_id: int, event_id: int, role: str, checked: Sequence) -> list[dict]:
    rows = []
    for f in checked:
        evfiles.store_file(rt.settings.evidence_dir, f)
        rows.append({"hazard_id": hazard_id, "event_id": event_id, "role": role, "sha256": f.sha256,
                     "filename": f.filename, "content_type": f.content_type, "size": f.size})
    if rows:
        session.execute(sa.insert(HF), rows)
    return [{"sha256": r["sha256"], "name": r["filename"], "size": r["size"]} for r in rows]


# =========================================================================== the loop

@dataclass(frozen=True)
class Reported:
    hazard_id: int
    created: bool
    deadline: dt.datetime
    notified: tuple[int, ...] = ()  # persons told at once (major hazards)


def _text(value: str | None, field_zh: str, field_en: str, limit: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        raise HazardError(t("hz.err.text", field=field_zh, field_en=field_en, n=limit))
    return value


def _person(org: Org, person_id: int | None, role_zh: str, role_en: str) -> int:
    if person_id is None or person_id not in org.persons:
        raise HazardError(t("hz.err.person", role=role_zh, role_en=role_en, person=person_id))
    return person_id


def _event(session: Session, hazard_id: int, *, at: dt.datetime, actor: str, action: str, round_: int,
           from_state: str | None = None, to_state: str | None = None, note: str | None = None,
           detail: dict | None = None, step: str | None = None) -> int | None:
    row = {"hazard_id": hazard_id, "at": at, "actor": actor, "action": action, "from_state": from_state,
           "to_state": to_state, "round": round_, "step": step, "note": note, "detail": detail or {}}
    if step is None:
        return session.execute(sa.insert(HE).values(**row).returning(HE.c.id)).scalar_one()
    inserted = insert_ignore(session, HE, [row], ["hazard_id", "step"])
    return inserted[0].id if inserted else None


def _audit(session: Session, *, at: dt.datetime, actor: str, action: str, hazard_id: int, detail: dict) -> None:
    session.execute(sa.insert(Audit.__table__), [{"at": at, "actor": actor[:100], "action": action,
                                                   "object_type": "hazard", "object_id": str(hazard_id), "detail": detail}])


def hazard_payload(cfg: HazardConfig, org: Org, h: HazardView, description: str, **extra) -> dict:
    """What a notice of a hazard shows (the messages treat it as a duty task: name, unit, person, due)."""
    unit = org.units.get(h.unit_id)
    person = org.persons.get(h.rectifier_id)
    return {
        "duty": t("hz.name", level=cfg.level_name(h.level), description=description[:80]),
        "unit": unit.name if unit else str(h.unit_id), "person": person.name if person else None,
        "period": f"#{h.id}", "due": h.deadline.isoformat(), "hazard": h.id, **extra,
    }


def load(session: Session, hazard_id: int) -> sa.Row:
    """The hazard's row as it is in the database now (a plain row: moves are conditional updates)."""
    row = session.execute(sa.select(H).where(H.c.id == hazard_id)).first()
    if row is None:
        raise HazardError(t("hz.err.no_hazard", id=hazard_id))
    return row


def view_of(h) -> HazardView:
    return HazardView(id=h.id, unit_id=h.unit_id, level=str(h.level), state=str(h.state), round=h.round,
                      found_at=h.found_at, deadline=h.deadline, rectifier_id=h.rectifier_id)


def _both(key: str, values: dict) -> tuple[str, str]:
    """A registered text in both languages (announcements carry both; the reader's locale picks)."""
    return MESSAGES[key]["zh-CN"].format(**values), MESSAGES[key]["en"].format(**values)


def report(
    session: Session, rt: Runtime, org: Org, *, unit_id: int, place: str, description: str, level: HazardLevel | str,
    rectifier_id: int, actor: str, as_of: dt.datetime, source: HazardSource | str = HazardSource.ad_hoc,
    reporter_id: int | None = None, deadline: dt.datetime | None = None, photos: Sequence = (),
    occurrence_id: int | None = None, risk_point_id: int | None = None, client_key: str | None = None,
) -> Reported:
    """Record a hazard found at ``as_of``; tell the rectifier, and for a 重大隐患 the safety section
    and the responsible bureau leader at once. With ``client_key``, a repeated report is the same hazard."""
    cfg = hazard_config(rt)
    level = cfg.parse_hazard_level(level)
    try:
        source = HazardSource(source)
    except ValueError:
        raise HazardError(t("hz.err.source", value=source, allowed=", ".join(s.value for s in HazardSource))) from None
    if client_key:
        existing = session.execute(sa.select(H.c.id, H.c.deadline).where(H.c.client_key == client_key)).first()
        if existing:
            return Reported(existing.id, False, existing.deadline)
    if unit_id not in org.units:
        raise HazardError(t("hz.err.unit", unit=unit_id))
    place = _text(place, "隐患部位", "the place", 200)
    description = _text(description, "隐患描述", "the description", 5000)
    _person(org, rectifier_id, "整改责任人", "rectifier")
    if reporter_id is not None:
        _person(org, reporter_id, "报告人", "reporter")
    if occurrence_id is not None:
        occ = session.execute(sa.select(O.c.duty_key, O.c.unit_id).where(O.c.id == occurrence_id)).first()
        if occ is None or occ.duty_key not in cfg.upload_duties or occ.unit_id != unit_id:
            raise HazardError(t("hz.err.task", task=occurrence_id))
    if risk_point_id is not None:
        if session.scalar(sa.select(RP.c.unit_id).where(RP.c.id == risk_point_id)) != unit_id:
            raise HazardError(t("hz.err.point", point=risk_point_id))
    spec = cfg.hazard_levels[level]
    due = deadline or deadline_after(as_of, spec.deadline, rt.calendar)
    if due <= as_of:
        raise HazardError(t("hz.err.deadline", deadline=f"{due:%Y-%m-%d %H:%M}", found=f"{as_of:%Y-%m-%d %H:%M}"))
    checked = check_files(rt, photos)

    row = {
        "unit_id": unit_id, "place": place, "description": description, "level": level.value, "source": source.value,
        "state": HazardState.reported.value, "occurrence_id": occurrence_id, "risk_point_id": risk_point_id,
        "reporter_id": reporter_id, "reported_by": actor[:100], "rectifier_id": rectifier_id, "found_at": as_of,
        "deadline": due, "round": 1, "client_key": client_key, "created_at": as_of, "updated_at": as_of,
    }
    inserted = insert_ignore(session, H, [row], ["client_key"]) if client_key else \
        [session.execute(sa.insert(H).values(**row).returning(H.c.id)).one()]
    if not inserted:  # a concurrent twin with the same key won
        existing = session.execute(sa.select(H.c.id, H.c.deadline).where(H.c.client_key == client_key)).one()
        return Reported(existing.id, False, existing.deadline)
    hazard_id = inserted[0].id
    h = HazardView(hazard_id, unit_id, level.value, HazardState.reported.value, 1, as_of, due, rectifier_id)
    event_id = _event(session, hazard_id, at=as_of, actor=actor, action="reported", round_=1,
                      to_state=HazardState.reported.value,
                      detail={"level": level.value, "source": source.value, "deadline": due.isoformat(),
                              "rectifier": rectifier_id, "reporter": reporter_id, "place": place})
    files = _store(rt, session, hazard_id, event_id, "photo", checked)
    _audit(session, at=as_of, actor=actor, action="hazard.reported", hazard_id=hazard_id,
           detail={"level": level.value, "unit": unit_id, "deadline": due.isoformat(), "files": files})
    payload = hazard_payload(cfg, org, h, description, step=t("hz.step.assigned"))
    notices.queue(session, [notices.notice(rectifier_id, f"hz:{hazard_id}:r1:assigned", NoticeKind.reminder, "assigned",
                                           payload, as_of, duty_key="hazard")])
    notified: list[int] = []
    if spec.notify_at_once:
        notified = org.escalation_targets(spec.notify_at_once, unit_id)
        text_zh, text_en = _both("hz.major.text", dict(
            unit=org.units[unit_id].name, id=hazard_id, place=place, description=description[:200],
            rectifier=org.persons[rectifier_id].name, deadline=f"{due:%Y-%m-%d %H:%M}"))
        notices.queue(session, [
            notices.notice(pid, f"hz:{hazard_id}:major", NoticeKind.announcement, "major",
                           {"text": text_zh, "text_en": text_en, "hazard": hazard_id, "due": due.isoformat()}, as_of,
                           duty_key="hazard", urgent=True)
            for pid in notified
        ])
        _event(session, hazard_id, at=as_of, actor="system", action="notified", round_=1, step="major",
               detail={"recipients": notified, "targets": list(spec.notify_at_once)})
    return Reported(hazard_id, True, due, tuple(notified))


def _move(session: Session, hazard: sa.Row, old: str, action: str, as_of: dt.datetime, **values) -> str:
    """Claim the move with a conditional update on (id, state, round); refuse if someone moved first."""
    new = next_state(hazard.id, old, action)
    changed = session.execute(
        sa.update(H).where(H.c.id == hazard.id, H.c.state == old, H.c.round == hazard.round)
        .values(state=new, updated_at=as_of, **values).returning(H.c.id)
    ).first()
    if changed is None:
        raise HazardError(t("hz.err.changed", id=hazard.id))
    return new


def start(session: Session, rt: Runtime, org: Org, hazard_id: int, *, person_id: int | None, actor: str,
          as_of: dt.datetime, note: str | None = None) -> str:
    """The rectifier (or someone for them) starts the work: reported → rectifying."""
    hazard = load(session, hazard_id)
    new = _move(session, hazard, hazard.state, "start", as_of)
    _event(session, hazard_id, at=as_of, actor=actor, action="started", round_=hazard.round,
           from_state=hazard.state, to_state=new, note=(note or "").strip() or None, detail={"person": person_id})
    return new


def rectify(session: Session, rt: Runtime, org: Org, hazard_id: int, *, person_id: int, note: str | None,
            files: Sequence, actor: str, as_of: dt.datetime) -> str:
    """The work is done, with evidence: → rectified; the verifiers are asked to verify."""
    cfg = hazard_config(rt)
    hazard = load(session, hazard_id)
    next_state(hazard_id, hazard.state, "rectify")
    _person(org, person_id, "整改人", "rectifier")
    note = _text(note, "整改说明", "the rectification note", 5000)
    checked = check_files(rt, files)
    if len(checked) < cfg.data.rectify_min_files:
        raise HazardError(t("hz.err.files", n=cfg.data.rectify_min_files))
    old = hazard.state
    if old == HazardState.reported.value:  # rectified straight away: the work started, implicitly
        old = _move(session, hazard, old, "start", as_of)
        _event(session, hazard_id, at=as_of, actor=actor, action="started", round_=hazard.round,
               from_state=hazard.state, to_state=old, detail={"person": person_id, "implicit": True})
    new = _move(session, hazard, old, "rectify", as_of, rectified_at=as_of, rectified_by_id=person_id)
    event_id = _event(session, hazard_id, at=as_of, actor=actor, action="rectified", round_=hazard.round,
                      from_state=old, to_state=new, note=note, detail={"person": person_id})
    stored = _store(rt, session, hazard_id, event_id, "rectification", checked)
    _audit(session, at=as_of, actor=actor, action="hazard.rectified", hazard_id=hazard_id,
           detail={"round": hazard.round, "files": stored})
    h = view_of(hazard)
    spec = cfg.hazard_levels[HazardLevel(h.level)]
    verifiers = [p for p in org.escalation_targets(spec.verify_by, h.unit_id) if p not in (person_id, h.rectifier_id)]
    payload = hazard_payload(cfg, org, h, hazard.description, step=t("hz.step.verify"))
    notices.queue(session, [notices.notice(pid, f"hz:{hazard_id}:r{hazard.round}:verify", NoticeKind.reminder, "verify",
                                           payload, as_of, duty_key="hazard") for pid in verifiers])
    return new


def verify(session: Session, rt: Runtime, org: Org, hazard_id: int, *, person_id: int, passed: bool,
           note: str | None, actor: str, as_of: dt.datetime, files: Sequence = ()) -> str:
    """Someone other than the rectifier checks the work: → verified, or back to rectifying (a new round)."""
    cfg = hazard_config(rt)
    hazard = load(session, hazard_id)
    next_state(hazard_id, hazard.state, "verify")
    _person(org, person_id, "核验人", "verifier")
    if person_id in (hazard.rectified_by_id, hazard.rectifier_id):
        raise HazardError(t("hz.err.same_person", name=org.persons[person_id].name, id=hazard_id))
    note = (note or "").strip() or None
    if not passed and not note:
        raise HazardError(t("hz.err.note", what="核验未通过", what_en="a failed verification"))
    checked = check_files(rt, files)
    if not passed:
        return _reopen(session, rt, org, cfg, hazard, action="fail", event="verification_failed", person_id=person_id,
                       note=note, actor=actor, as_of=as_of, checked=checked)
    new = _move(session, hazard, hazard.state, "verify", as_of, verified_at=as_of, verified_by_id=person_id)
    event_id = _event(session, hazard_id, at=as_of, actor=actor, action="verified", round_=hazard.round,
                      from_state=hazard.state, to_state=new, note=note, detail={"person": person_id})
    stored = _store(rt, session, hazard_id, event_id, "verification", checked)
    _audit(session, at=as_of, actor=actor, action="hazard.verified", hazard_id=hazard_id,
           detail={"round": hazard.round, "files": stored})
    return new


def _reopen(session: Session, rt: Runtime, org: Org, cfg: HazardConfig, hazard: sa.Row, *, action: str, event: str,
            person_id: int | None, note: str, actor: str, as_of: dt.datetime, checked: Sequence = ()) -> str:
    spec = cfg.hazard_levels[HazardLevel(hazard.level)]
    due = max(hazard.deadline, deadline_after(as_of, spec.reopen_deadline, rt.calendar))
    round_ = hazard.round + 1
    new = _move(session, hazard, hazard.state, action, as_of, round=round_, deadline=due, rectified_at=None,
                rectified_by_id=None, verified_at=None, verified_by_id=None, closed_at=None, closed_by=None)
    event_id = _event(session, hazard.id, at=as_of, actor=actor, action=event, round_=round_, from_state=hazard.state,
                      to_state=new, note=note, detail={"person": person_id, "deadline": due.isoformat()})
    stored = _store(rt, session, hazard.id, event_id, "verification", checked)
    _audit(session, at=as_of, actor=actor, action=f"hazard.{event}", hazard_id=hazard.id,
           detail={"round": round_, "deadline": due.isoformat(), "reason": note, "files": stored})
    h = HazardView(hazard.id, hazard.unit_id, hazard.level, new, round_, hazard.found_at, due, hazard.rectifier_id)
    payload = hazard_payload(cfg, org, h, hazard.description, step=t("hz.step.reopened"), reason=note[:500])
    notices.queue(session, [notices.notice(hazard.rectifier_id, f"hz:{hazard.id}:r{round_}:reopened", NoticeKind.reminder,
                                           "reopened", payload, as_of, duty_key="hazard")])
    return new


def close(session: Session, rt: Runtime, org: Org, hazard_id: int, *, person_id: int | None, actor: str,
          as_of: dt.datetime, note: str | None = None) -> str:
    """销号: a verified hazard is closed."""
    hazard = load(session, hazard_id)
    new = _move(session, hazard, hazard.state, "close", as_of, closed_at=as_of, closed_by=actor[:100])
    _event(session, hazard_id, at=as_of, actor=actor, action="closed", round_=hazard.round, from_state=hazard.state,
           to_state=new, note=(note or "").strip() or None, detail={"person": person_id})
    _audit(session, at=as_of, actor=actor, action="hazard.closed", hazard_id=hazard_id, detail={"round": hazard.round})
    return new


def reopen(session: Session, rt: Runtime, org: Org, hazard_id: int, *, person_id: int | None, reason: str | None,
           actor: str, as_of: dt.datetime) -> str:
    """A verified or closed hazard is back (found again, or the rectification did not hold)."""
    cfg = hazard_config(rt)
    hazard = load(session, hazard_id)
    next_state(hazard_id, hazard.state, "reopen")
    reason = (reason or "").strip()
    if not reason:
        raise HazardError(t("hz.err.note", what="重新打开", what_en="re-opening"))
    return _reopen(session, rt, org, cfg, hazard, action="reopen", event="reopened", person_id=person_id,
                   note=reason, actor=actor, as_of=as_of)


# =========================================================================== supervision platform uploads

def record_upload(session: Session, rt: Runtime, *, occurrence_id: int, reference: str, uploaded_on: dt.date,
                  actor: str, as_of: dt.datetime, source: str = "cli") -> bool:
    """Record that a half-monthly check was uploaded to the supervision platform; a correction
    replaces the reference (the audit keeps the old one). Returns True when something changed."""
    cfg = hazard_config(rt)
    duty_key = session.scalar(sa.select(O.c.duty_key).where(O.c.id == occurrence_id))
    if duty_key not in cfg.upload_duties:
        raise HazardError(t("hz.err.upload_task", task=occurrence_id))
    reference = (reference or "").strip()
    if not reference or len(reference) > 100:
        raise HazardError(t("hz.err.reference"))
    if uploaded_on > as_of.astimezone(TZ).date():
        raise HazardError(t("hz.err.upload_date", day=uploaded_on.isoformat()))
    old = session.execute(sa.select(PU.c.reference, PU.c.uploaded_on).where(PU.c.occurrence_id == occurrence_id)).first()
    if old is not None and (old.reference, old.uploaded_on) == (reference, uploaded_on):
        return False
    row = {"occurrence_id": occurrence_id, "reference": reference, "uploaded_on": uploaded_on, "recorded_at": as_of,
           "recorded_by": actor[:100], "source": source}
    if old is None:
        insert_ignore(session, PU, [row], ["occurrence_id"], returning=())
    else:
        session.execute(sa.update(PU).where(PU.c.occurrence_id == occurrence_id).values(**row))
    session.add(Audit(at=as_of, actor=actor[:100], action="upload.recorded", object_type="occurrence",
                      object_id=str(occurrence_id), detail={"reference": reference, "uploaded_on": uploaded_on.isoformat(),
                                                            "previous": old.reference if old else None}))
    return True


# =========================================================================== risk points: checks and the register

@dataclass(frozen=True)
class CheckRecorded:
    checks: tuple[int, ...]
    hazard_id: int | None


def find_point(session: Session, org: Org, ref: str | int) -> sa.Row:
    """A risk point by id, or by ``UNIT/CODE``."""
    text = str(ref).strip()
    query = sa.select(RP)
    if text.isdigit():
        query = query.where(RP.c.id == int(text))
    elif "/" in text:
        unit_code, code = text.split("/", 1)
        unit = next((u for u in org.units.values() if u.code == unit_code), None)
        query = query.where(RP.c.unit_id == (unit.id if unit else -1), RP.c.code == code)
    else:
        raise HazardError(t("risk.err.no_point", point=text))
    row = session.execute(query).first()
    if row is None:
        raise HazardError(t("risk.err.no_point", point=text))
    return row


def record_check(
    session: Session, rt: Runtime, org: Org, *, risk_point_id: int, person_id: int, result: str, actor: str,
    as_of: dt.datetime, note: str | None = None, hazard: dict | None = None, photos: Sequence = (),
) -> CheckRecorded:
    """Record the check of a point: every check of it waiting at ``as_of`` is done. A hazard found
    goes into the closed loop (``hazard``: description, level, rectifier_id, optional place/deadline)."""
    point = session.execute(sa.select(RP).where(RP.c.id == risk_point_id)).first()
    if point is None:
        raise HazardError(t("risk.err.no_point", point=risk_point_id))
    label = f"#{point.id} {point.code}"
    if not point.active:
        raise HazardError(t("risk.err.inactive", point=label))
    if result not in ("ok", "hazard"):
        raise HazardError(t("risk.err.result"))
    if person_id not in org.persons:
        raise HazardError(t("hz.err.person", role="检查人", role_en="checker", person=person_id))
    waiting = session.scalars(sa.select(RC.c.id).where(
        RC.c.risk_point_id == point.id, RC.c.checked_at.is_(None), RC.c.level == point.level, RC.c.opens_at <= as_of,
    ).order_by(RC.c.period_start)).all()
    if not waiting:
        raise HazardError(t("risk.err.no_check", point=label))
    hazard_id = None
    if result == "hazard":
        if not hazard or not hazard.get("description") or not hazard.get("level") or not hazard.get("rectifier_id"):
            raise HazardError(t("risk.err.hazard"))
        hazard_id = report(session, rt, org, unit_id=point.unit_id, place=hazard.get("place") or point.place,
                           description=hazard["description"], level=hazard["level"],
                           rectifier_id=hazard["rectifier_id"], actor=actor, as_of=as_of, source="risk_check",
                           reporter_id=person_id, deadline=hazard.get("deadline"), photos=photos,
                           risk_point_id=point.id).hazard_id
    done = session.execute(
        sa.update(RC).where(RC.c.id.in_(waiting), RC.c.checked_at.is_(None))
        .values(checked_at=as_of, checker_id=person_id, checked_by=actor[:100], result=result,
                note=(note or "").strip() or None, hazard_id=hazard_id).returning(RC.c.id)
    ).scalars().all()
    session.add(Audit(at=as_of, actor=actor[:100], action="risk.checked", object_type="risk_point",
                      object_id=str(point.id), detail={"checks": sorted(done), "result": result, "hazard": hazard_id}))
    return CheckRecorded(tuple(sorted(done)), hazard_id)


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    deactivated: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)


_FIELDS = ("category", "place", "description", "measures", "level", "owner_id", "active")


def import_points(session: Session, rt: Runtime, org: Org, path: Path, *, actor: str, as_of: dt.datetime,
                  unit_code: str | None = None, replace: bool = False, dry_run: bool = False,
                  name: str | None = None) -> ImportResult:
    """Upsert the file's risk points by (unit, code); with ``replace``, deactivate the points of the
    file's units that the file leaves out. Raises ``RiskImportError`` before writing anything."""
    cfg = hazard_config(rt)
    rows = read_points(path, org, cfg, unit_code=unit_code, name=name)
    unit_ids = {r.unit_id for r in rows}
    existing = {(r.unit_id, r.code): r for r in session.execute(sa.select(RP).where(RP.c.unit_id.in_(unit_ids)))}
    inserts, updates, unchanged = [], [], 0
    for r in rows:
        values = {"category": r.category.value, "place": r.place, "description": r.description, "measures": r.measures,
                  "level": r.level.value, "owner_id": r.owner_id, "active": r.active}
        old = existing.get((r.unit_id, r.code))
        if old is None:
            inserts.append({"unit_id": r.unit_id, "code": r.code, **values, "created_at": as_of, "updated_at": as_of})
        elif any(getattr(old, k) != v for k, v in values.items()):
            updates.append({"pid": old.id, **values, "updated_at": as_of})
        else:
            unchanged += 1
    keep = {(r.unit_id, r.code) for r in rows}
    stale = [r.id for key, r in existing.items() if replace and key not in keep and r.active]
    result = ImportResult(len(inserts), len(updates), unchanged, len(stale))
    if dry_run or not result.changed:
        return result
    if inserts:
        insert_ignore(session, RP, inserts, ["unit_id", "code"], returning=())
    if updates:
        session.execute(
            sa.update(RP).where(RP.c.id == sa.bindparam("pid"))
            .values(**{k: sa.bindparam(k) for k in (*_FIELDS, "updated_at")})
            .execution_options(synchronize_session=False), updates)
    if stale:
        session.execute(sa.update(RP).where(RP.c.id.in_(stale)).values(active=False, updated_at=as_of))
    session.add(Audit(at=as_of, actor=actor[:100], action="risk.imported", object_type="risk_register",
                      object_id=(name or Path(path).name)[:64],
                      detail={"created": result.created, "updated": result.updated, "deactivated": result.deactivated,
                              "units": sorted(org.units[u].code for u in unit_ids)}))
    return result


# =========================================================================== one person's action

T = TypeVar("T")


def act(rt: Runtime, work: Callable[[Session, Org], T]) -> T:
    """Run one action (``work(session, org)``) in a transaction of its own.

    The evidence page and the CLI call this: a refused action raises ``HazardError`` and
    changes nothing; an accepted one is committed, and its notices wait for the dispatcher.
    """
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return work(session, load_org(session))
