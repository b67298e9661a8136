"""Evidence: checking a hand-in, storing its files immutably, recording it, and reviewing it.

Pure of the web: the evidence page (``pingan.web``) and ``pingan evidence …`` call these same
functions. A hand-in is checked completely before anything is written (bad input stores
nothing); then its files go to ``<home>/evidence/<sha[:2]>/<sha>`` — content-addressed,
written to a temporary name and linked into place, so a file is never half-written,
overwritten or deleted — and one transaction records the evidence version, its files, the
task's new review state and an audit row.

Review decides a task's fate for the duty cycle (``pingan.duties.rules``): *accepted* closes it, so
reminders and escalation stop; *rejected* re-opens it, queues a notice telling the people
why, and the escalation clock goes on (its reason becomes "rejected").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from models import Audit, Evidence, EvidenceFile, Notice, NoticeKind, Occurrence, Person, Review, Unit
from pingan.evidence.files import (
    CheckedFile, EvidenceError, Limits, Upload, check_file, human_size, store_file, upload_size,
)
from pingan.duties.catalog import DutySpec, EvidenceKind
from pingan.core.db import insert_ignore
from pingan.delivery import notices
from pingan.core.i18n import pick, register, t
from pingan.core.clock import TZ
from pingan.duties.rules import TaskView, state
from pingan.duties.runtime import Runtime

O, EV, EF = Occurrence.__table__, Evidence.__table__, EvidenceFile.__table__

register({
    "ev.err.empty": {"zh-CN": "没有提交任何内容：请填写表单并上传文件", "en": "Nothing was handed in: fill in the form and add the files"},
    "ev.err.required": {"zh-CN": "「{label}」为必填项", "en": "“{label}” is required"},
    "ev.err.too_long": {"zh-CN": "「{label}」过长（最多 {n} 字）", "en": "“{label}” is too long (at most {n} characters)"},
    "ev.err.date": {"zh-CN": "「{label}」应为日期，如 2026-11-23", "en": "“{label}” must be a date like 2026-11-23"},
    "ev.err.datetime": {"zh-CN": "「{label}」应为日期和时间，如 2026-11-23 09:30", "en": "“{label}” must be a date and time like 2026-11-23 09:30"},
    "ev.err.int": {"zh-CN": "「{label}」应为 {low} 至 {high} 之间的整数", "en": "“{label}” must be a whole number from {low} to {high}"},
    "ev.err.names": {"zh-CN": "「{label}」最多填写 {n} 项", "en": "“{label}” takes at most {n} names"},
    "ev.err.note": {"zh-CN": "说明过长（最多 {n} 字）", "en": "The note is too long (at most {n} characters)"},
    "ev.err.kind": {"zh-CN": "此任务不接受这类材料", "en": "This task does not take this kind of evidence"},
    "ev.err.min_files": {"zh-CN": "请至少上传 {n} 个文件（{what}）", "en": "Add at least {n} file(s) ({what})"},
    "ev.err.accepted": {"zh-CN": "此任务的材料已审核通过，无需再提交", "en": "This task's evidence has been accepted: nothing more to hand in"},
    "ev.err.busy": {"zh-CN": "同一任务正有其他提交，请稍后重试", "en": "Another hand-in for this task is under way: try again in a moment"},
    "ev.err.no_evidence": {"zh-CN": "没有编号为 {id} 的材料", "en": "No evidence with id {id}"},
    "ev.err.reviewed": {"zh-CN": "材料 #{id} 已审核（{status}），不能再次审核", "en": "Evidence #{id} has already been reviewed ({status})"},
    "ev.err.superseded": {"zh-CN": "材料 #{id} 已被第 {version} 版（#{latest}）取代，请审核最新版本",
                          "en": "Evidence #{id} was superseded by version {version} (#{latest}): review the latest"},
    "ev.err.reason": {"zh-CN": "退回必须填写理由", "en": "A rejection needs a reason"},
    "ev.err.reason_long": {"zh-CN": "退回理由过长（最多 {n} 字）", "en": "The reason is too long (at most {n} characters)"},
})

# --------------------------------------------------------------------------- errors


# --------------------------------------------------------------------------- file types


# --------------------------------------------------------------------------- checking a hand-in

MAX_TEXT, MAX_TEXTAREA, MAX_REFERENCE, MAX_NOTE, MAX_NAMES, MAX_REASON = 200, 5000, 100, 5000, 500, 2000
_NAME_SPLIT = re.compile(r"[,，、;；\n\r]+")


@dataclass(frozen=True)
class CheckedHandIn:
    kind: str
    fields: dict
    note: str | None
    files: list[CheckedFile]


def _clean_value(f, raw: str) -> tuple[object | None, str | None]:
    """(value, error) of one form field by its catalog type."""
    label = pick(f.label, f.label_en)
    value = (raw or "").strip()
    if not value:
        return None, (t("ev.err.required", label=label) if f.required else None)
    if f.type in ("text", "textarea", "reference"):
        limit = {"text": MAX_TEXT, "textarea": MAX_TEXTAREA, "reference": MAX_REFERENCE}[f.type]
        return (value, None) if len(value) <= limit else (None, t("ev.err.too_long", label=label, n=limit))
    if f.type == "date":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return None, t("ev.err.date", label=label)
        return (day.isoformat(), None) if 2000 <= day.year <= 2100 else (None, t("ev.err.date", label=label))
    if f.type == "datetime":
        try:
            moment = dt.datetime.fromisoformat(value.replace(" ", "T"))
        except ValueError:
            return None, t("ev.err.datetime", label=label)
        if not 2000 <= moment.year <= 2100:
            return None, t("ev.err.datetime", label=label)
        moment = moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment.astimezone(TZ)
        return moment.isoformat(timespec="minutes"), None
    if f.type in ("int", "minutes"):
        low, high = (1, 100_000) if f.type == "minutes" else (0, 1_000_000)
        try:
            number = int(value)
        except ValueError:
            return None, t("ev.err.int", label=label, low=low, high=high)
        return (number, None) if low <= number <= high else (None, t("ev.err.int", label=label, low=low, high=high))
    if f.type in ("persons", "units"):
        names = [n.strip() for n in _NAME_SPLIT.split(value) if n.strip()]
        if len(names) > MAX_NAMES:
            return None, t("ev.err.names", label=label, n=MAX_NAMES)
        if any(len(n) > MAX_TEXT for n in names):
            return None, t("ev.err.too_long", label=label, n=MAX_TEXT)
        return names, None
    raise AssertionError(f"unknown field type {f.type}")  # the catalog loader allows no other


def check_hand_in(
    duty: DutySpec, kinds: Mapping[str, EvidenceKind], kind_key: str, raw: Mapping[str, str], note: str | None,
    uploads: Iterable[Upload], limits: Limits,
) -> CheckedHandIn:
    """Everything a hand-in must satisfy, checked before anything is written; all problems at once."""
    if kind_key not in duty.evidence or kind_key not in kinds:
        raise EvidenceError(t("ev.err.kind"))
    kind = kinds[kind_key]
    uploads = [u for u in uploads if u.filename or upload_size(u)]  # an empty file input sends a nameless, empty part
    note = (note or "").strip() or None
    if not uploads and not note and not any((raw.get(f.key) or "").strip() for f in kind.fields):
        raise EvidenceError(t("ev.err.empty"))
    errors: list[EvidenceError] = []
    files: list[CheckedFile] = []
    if len(uploads) > limits.max_files:
        errors.append(EvidenceError(t("ev.err.max_files", n=limits.max_files), status=413))
    else:
        for upload in uploads:
            try:
                files.append(check_file(upload, limits))
            except EvidenceError as exc:
                errors.append(exc)
        if sum(f.size for f in files) > limits.max_total:
            errors.append(EvidenceError(t("ev.err.total_size", limit=human_size(limits.max_total)), status=413))
    if not errors and len(files) < kind.min_files:
        errors.append(EvidenceError(t("ev.err.min_files", n=kind.min_files, what=pick(kind.name, kind.name_en))))
    values: dict = {}
    for f in kind.fields:
        value, error = _clean_value(f, raw.get(f.key, ""))
        if error:
            errors.append(EvidenceError(error))
        elif value is not None:
            values[f.key] = value
    if note and len(note) > MAX_NOTE:
        errors.append(EvidenceError(t("ev.err.note", n=MAX_NOTE)))
    if errors:
        raise EvidenceError([m for e in errors for m in e.messages], status=errors[0].status)
    return CheckedHandIn(kind=kind_key, fields=values, note=note, files=files)


# --------------------------------------------------------------------------- storage


# --------------------------------------------------------------------------- the task behind a link

@dataclass(frozen=True)
class Task:
    """An occurrence as the hand-in page and the review show it."""

    id: int
    duty: DutySpec | None
    duty_key: str
    unit_id: int
    unit: str
    person_id: int | None
    period: str
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime
    review: str

    def view(self) -> TaskView:
        return TaskView(self.id, self.duty_key, self.unit_id, self.person_id, self.period, self.opens_at,
                        self.due_at, self.escalate_at, self.review)

    def state(self, as_of: dt.datetime) -> str:
        return state(self.view(), as_of)


def load_task(session: Session, rt: Runtime, occurrence_id: int) -> Task | None:
    U = Unit.__table__
    row = session.execute(
        sa.select(O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.opens_at, O.c.due_at,
                  O.c.escalate_at, O.c.review, U.c.name.label("unit"))
        .join(U, U.c.id == O.c.unit_id).where(O.c.id == occurrence_id)
    ).first()
    if row is None:
        return None
    return Task(row.id, rt.catalog.duties.get(row.duty_key), row.duty_key, row.unit_id, row.unit, row.person_id,
                row.period_key, row.opens_at, row.due_at, row.escalate_at, row.review)


def may_hand_in(session: Session, rt: Runtime, task: Task, person_id: int) -> Person | None:
    """The person, if a link for ``task`` may be theirs: active, and reminded of it or responsible for it."""
    person = session.get(Person, person_id)
    if person is None or not person.active:
        return None
    N = Notice.__table__
    notified = session.scalar(sa.select(N.c.id).where(N.c.person_id == person_id, N.c.occurrence_id == task.id).limit(1))
    if notified is not None:
        return person
    if task.duty is not None and person_id in _assignees(session, task):
        return person
    return None


def _assignees(session: Session, task: Task) -> list[int]:
    from pingan.org.snapshot import load_org

    if task.duty is None:
        return []
    return load_org(session).assignees(task.duty.carrier, task.unit_id, task.person_id)


# --------------------------------------------------------------------------- recording a hand-in

def hand_in(
    session: Session, rt: Runtime, *, task: Task, person: Person, checked: CheckedHandIn, as_of: dt.datetime,
) -> Evidence:
    """Store the files and record the next evidence version; the task becomes *submitted*.

    Call inside one transaction (``session_scope``): the conditional update of the task locks
    its row, so two hand-ins for one task get consecutive versions, and an accepted task
    stays closed.
    """
    locked = session.execute(
        sa.update(O).where(O.c.id == task.id, O.c.review != Review.accepted.value)
        .values(review=Review.submitted.value, closed_at=None).returning(O.c.id)
    ).first()
    if locked is None:
        raise EvidenceError(t("ev.err.accepted"), status=409)
    for f in checked.files:
        store_file(rt.settings.evidence_dir, f)
    version = (session.scalar(sa.select(sa.func.max(EV.c.version)).where(EV.c.occurrence_id == task.id)) or 0) + 1
    inserted = insert_ignore(session, EV, [{
        "occurrence_id": task.id, "person_id": person.id, "version": version, "kind": checked.kind,
        "fields": checked.fields, "note": checked.note, "submitted_at": as_of, "status": Review.submitted.value,
    }], ["occurrence_id", "version"])
    if not inserted:
        raise EvidenceError(t("ev.err.busy"), status=409)
    evidence_id = inserted[0].id
    if checked.files:
        session.execute(sa.insert(EF), [
            {"evidence_id": evidence_id, "sha256": f.sha256, "filename": f.filename, "content_type": f.content_type,
             "size": f.size} for f in checked.files
        ])
    session.add(Audit(at=as_of, actor=f"person:{person.code}", action="evidence.submitted", object_type="evidence",
                      object_id=str(evidence_id), detail={
                          "occurrence": task.id, "duty": task.duty_key, "version": version, "kind": checked.kind,
                          "files": [{"sha256": f.sha256, "name": f.filename, "size": f.size} for f in checked.files],
                      }))
    session.flush()
    return session.get(Evidence, evidence_id)


# --------------------------------------------------------------------------- listing and showing

@dataclass(frozen=True)
class EvidenceRow:
    id: int
    occurrence_id: int
    duty_key: str
    duty: str
    unit_id: int
    unit: str
    person: str | None
    period: str
    due_at: dt.datetime
    version: int
    kind: str
    status: str
    submitted_at: dt.datetime
    files: int
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None
    latest: bool

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("due_at", "submitted_at", "reviewed_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


@dataclass(frozen=True)
class StoredFileRow:
    id: int
    sha256: str
    filename: str
    content_type: str
    size: int
    unit_id: int | None = None  # the unit of the task the file was handed in for


@dataclass(frozen=True)
class EvidenceDetail:
    row: EvidenceRow
    fields: list[tuple[str, str]]  # (label, value as text) in the kind's order
    note: str | None
    files: list[StoredFileRow]
    versions: list[EvidenceRow]  # every version of the task, newest first
    task: Task


STATUSES = ("submitted", "accepted", "rejected")


def _newest_version() -> sa.ScalarSelect:
    other = EV.alias("newer")
    return sa.select(sa.func.max(other.c.version)).where(other.c.occurrence_id == EV.c.occurrence_id).scalar_subquery()


def _rows(session: Session, rt: Runtime, where: list, limit: int | None = None) -> list[EvidenceRow]:
    U, P = Unit.__table__, Person.__table__
    files = sa.select(sa.func.count()).where(EF.c.evidence_id == EV.c.id).scalar_subquery()
    newest = _newest_version()
    query = (
        sa.select(EV.c.id, EV.c.occurrence_id, O.c.duty_key, O.c.unit_id, U.c.name.label("unit"), P.c.name.label("person"),
                  O.c.period_key, O.c.due_at, EV.c.version, EV.c.kind, EV.c.status, EV.c.submitted_at,
                  files.label("files"), EV.c.reviewed_by, EV.c.reviewed_at, EV.c.review_reason,
                  (EV.c.version == newest).label("latest"))
        .join(O, O.c.id == EV.c.occurrence_id).join(U, U.c.id == O.c.unit_id)
        .outerjoin(P, P.c.id == EV.c.person_id)
        .where(*where).order_by(EV.c.submitted_at.desc(), EV.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    out = []
    for r in session.execute(query):
        duty = rt.catalog.duties.get(r.duty_key)
        out.append(EvidenceRow(
            id=r.id, occurrence_id=r.occurrence_id, duty_key=r.duty_key,
            duty=pick(duty.name, duty.name_en) if duty else r.duty_key, unit_id=r.unit_id, unit=r.unit, person=r.person,
            period=r.period_key, due_at=r.due_at, version=r.version, kind=r.kind, status=r.status,
            submitted_at=r.submitted_at, files=r.files, reviewed_by=r.reviewed_by, reviewed_at=r.reviewed_at,
            review_reason=r.review_reason, latest=bool(r.latest),
        ))
    return out


def list_evidence(
    session: Session, rt: Runtime, *, status: str | None = "submitted", duty: str | None = None,
    latest_only: bool = True, limit: int = 500, units: Collection[int] | None = None,
) -> list[EvidenceRow]:
    """Evidence by status (``None``: any), newest first; by default only each task's latest version;
    ``units``: only tasks of these units (a reviewer's scope), every unit when None."""
    where: list = []
    if units is not None:
        where.append(O.c.unit_id.in_(sorted(units)) if units else sa.false())
    if status:
        where.append(EV.c.status == status)
    if duty:
        where.append(O.c.duty_key == duty)
    if latest_only:
        where.append(EV.c.version == _newest_version())
    return _rows(session, rt, where, limit)


def versions_of(session: Session, rt: Runtime, occurrence_id: int) -> list[EvidenceRow]:
    """Every evidence version of a task, newest first."""
    return sorted(_rows(session, rt, [EV.c.occurrence_id == occurrence_id]), key=lambda r: -r.version)


def evidence_detail(session: Session, rt: Runtime, evidence_id: int) -> EvidenceDetail | None:
    found = _rows(session, rt, [EV.c.id == evidence_id])
    if not found:
        return None
    row = found[0]
    evidence = session.get(Evidence, evidence_id)
    kind = rt.catalog.evidence_kinds.get(evidence.kind)
    fields = []
    if kind:
        for f in kind.fields:
            if f.key in evidence.fields:
                fields.append((pick(f.label, f.label_en), format_value(evidence.fields[f.key])))
    known = {f.key for f in kind.fields} if kind else set()
    fields += [(key, format_value(value)) for key, value in evidence.fields.items() if key not in known]
    files = [StoredFileRow(r.id, r.sha256, r.filename, r.content_type, r.size) for r in session.execute(
        sa.select(EF.c.id, EF.c.sha256, EF.c.filename, EF.c.content_type, EF.c.size)
        .where(EF.c.evidence_id == evidence_id).order_by(EF.c.id))]
    return EvidenceDetail(row, fields, evidence.note, files, versions_of(session, rt, row.occurrence_id),
                          load_task(session, rt, row.occurrence_id))


def format_value(value: object) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d\d:\d\d", value):
        return value[:16].replace("T", " ")
    return str(value)


def stored_file(session: Session, file_id: int) -> StoredFileRow | None:
    r = session.execute(sa.select(EF.c.id, EF.c.sha256, EF.c.filename, EF.c.content_type, EF.c.size, O.c.unit_id)
                        .join(EV, EV.c.id == EF.c.evidence_id).join(O, O.c.id == EV.c.occurrence_id)
                        .where(EF.c.id == file_id)).first()
    return StoredFileRow(r.id, r.sha256, r.filename, r.content_type, r.size, r.unit_id) if r else None


# --------------------------------------------------------------------------- review

@dataclass(frozen=True)
class ReviewOutcome:
    evidence_id: int
    occurrence_id: int
    status: str
    notified: list[int]  # persons told why (rejections)


def review(
    session: Session, rt: Runtime, *, evidence_id: int, accept: bool, reason: str | None, actor: str,
    as_of: dt.datetime, reviewer: str | None = None, units: Collection[int] | None = None,
) -> ReviewOutcome:
    """Accept or reject the latest version of a task's evidence; one transaction with its audit row.

    Accepting closes the task. Rejecting re-opens it (the cycle reminds and escalates it again,
    with reason "rejected") and queues a notice to the submitter and the task's assignees.
    ``actor`` names who in the audit trail (``person:<code>``), ``reviewer`` how the evidence
    shows it (default ``actor``); ``units`` limits the review to tasks of those units (a
    reviewer's scope): any other evidence is "not found".
    """
    evidence = session.get(Evidence, evidence_id)
    if evidence is not None and units is not None:
        unit_id = session.scalar(sa.select(O.c.unit_id).where(O.c.id == evidence.occurrence_id))
        evidence = evidence if unit_id in units else None
    if evidence is None:
        raise EvidenceError(t("ev.err.no_evidence", id=evidence_id), status=404)
    reason = (reason or "").strip() or None
    if not accept and not reason:
        raise EvidenceError(t("ev.err.reason"))
    if reason and len(reason) > MAX_REASON:
        raise EvidenceError(t("ev.err.reason_long", n=MAX_REASON))
    latest = session.execute(
        sa.select(EV.c.id, EV.c.version).where(EV.c.occurrence_id == evidence.occurrence_id)
        .order_by(EV.c.version.desc()).limit(1)
    ).first()
    if latest.id != evidence_id:
        raise EvidenceError(t("ev.err.superseded", id=evidence_id, version=latest.version, latest=latest.id), status=409)
    decided = Review.accepted if accept else Review.rejected
    claimed = session.execute(
        sa.update(EV).where(EV.c.id == evidence_id, EV.c.status == Review.submitted.value)
        .values(status=decided.value, reviewed_by=(reviewer or actor)[:100], reviewed_at=as_of, review_reason=reason)
        .returning(EV.c.id)
    ).first()
    if claimed is None:
        raise EvidenceError(t("ev.err.reviewed", id=evidence_id, status=evidence.status), status=409)
    session.execute(
        sa.update(O).where(O.c.id == evidence.occurrence_id)
        .values(review=decided.value, closed_at=as_of if accept else None)
    )
    notified: list[int] = []
    if not accept:
        notified = _notify_rejection(session, rt, evidence, reason, as_of)
    session.add(Audit(at=as_of, actor=actor[:100], action=f"evidence.{decided.value}", object_type="evidence",
                      object_id=str(evidence_id), detail={
                          "occurrence": evidence.occurrence_id, "version": evidence.version, "reason": reason,
                          "notified": notified, **({"reviewer": reviewer} if reviewer else {}),
                      }))
    session.flush()
    session.expire(evidence)
    return ReviewOutcome(evidence_id, evidence.occurrence_id, decided.value, notified)


def _notify_rejection(session: Session, rt: Runtime, evidence: Evidence, reason: str, as_of: dt.datetime) -> list[int]:
    task = load_task(session, rt, evidence.occurrence_id)
    people = list(dict.fromkeys(([evidence.person_id] if evidence.person_id else []) + _assignees(session, task)))
    if not people:
        return []
    person_name = session.scalar(sa.select(Person.name).where(Person.id == task.person_id)) if task.person_id else None
    payload = {
        "duty": task.duty_key, "unit": task.unit, "person": person_name, "period": task.period,
        "due": task.due_at.isoformat(), "reason": reason, "version": evidence.version,
    }
    # Released at once: the person is waiting to hear what to hand in again.
    notices.queue(session, [notices.notice(pid, f"v:{evidence.id}", NoticeKind.review, "rejected", payload, as_of,
                                           occurrence_id=task.id, duty_key=task.duty_key) for pid in people])
    return people

