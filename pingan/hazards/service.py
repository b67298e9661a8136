"""The hazard closed loop (隐患排查、整改、销号) and the dual-prevention data it runs on.

``catalog/hazards.yaml`` says how risk levels are checked and how hazard levels are rectified;
it is validated here (file, entry and field in every error) and cross-checked with the duty
catalog. A hazard moves

    reported → rectifying → rectified (with evidence) → verified (by someone else) → closed (销号)

and a failed verification (or a later ``reopen``) sends it back to *rectifying* for a new
round with a new deadline. Each move is a conditional update on (id, state, round), so two
people acting at once cannot both move it, and each is a ``HazardEvent`` row. The daily watch
(``flows/hazards.py``) marks hazards overdue, reminds the rectifier before the deadline and
escalates up the chain after it, with the duty cycle's reminder and escalation rules
(``pingan.duties.rules``) and its outbox. A 重大隐患 notifies the bureau's safety section and the
bureau leader answering for the unit as soon as it is reported.

The functions taking a ``session`` are what the CLI, the evidence page and the Prefect tasks
share; they never commit (the caller's ``session_scope`` does, or rolls everything back).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlmodel import Session

from models import Audit, Evidence, Notice, NoticeKind, Occurrence, Person, Review, RoleKind, Unit, UnitKind, Waiver
from models.hazard import (
    Hazard, HazardEvent, HazardFile, HazardLevel, HazardSource, HazardState, PlatformUpload, RiskCategory, RiskLevel,
)
from pingan.delivery.workflow import dispatch
from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import (
    Cadence, Carrier, Catalog, CatalogError, DutySpec, Duration, EscalationPolicy, EscalationTarget, ReminderStep,
    Source, Window, parse_duration,
)
from pingan.core.db import insert_ignore
from pingan.core.i18n import MESSAGES, pick, register, t
from pingan.core.clock import TZ
from pingan.org.snapshot import Org
from pingan.duties.rules import TaskView, escalations_due, is_working_time, reminder_due, step_time
from pingan.duties.runtime import Runtime

H, HE, HF, PU = Hazard.__table__, HazardEvent.__table__, HazardFile.__table__, PlatformUpload.__table__
O, N = Occurrence.__table__, Notice.__table__

register({
    "hz.err.no_hazard": {"zh-CN": "没有编号为 {id} 的隐患", "en": "no hazard with id {id}"},
    "hz.err.state": {"zh-CN": "隐患 #{id} 当前为「{state}」，不能{action}", "en": "hazard #{id} is {state_en}: cannot {action_en}"},
    "hz.err.changed": {"zh-CN": "隐患 #{id} 的状态刚被他人更改，请刷新后重试", "en": "hazard #{id} was just changed by someone else: reload and try again"},
    "hz.err.same_person": {
        "zh-CN": "核验人不能是整改人（{name}）：隐患 #{id} 须由整改人以外的人员核验",
        "en": "the verifier must not be the rectifier ({name}): hazard #{id} must be verified by someone else"},
    "hz.err.unit": {"zh-CN": "没有在用单位 {unit}", "en": "no active unit {unit}"},
    "hz.err.person": {"zh-CN": "{role}：没有在职人员 {person}", "en": "{role_en}: no active person {person}"},
    "hz.err.text": {"zh-CN": "{field}不能为空（最多 {n} 字）", "en": "{field_en} must not be empty (at most {n} characters)"},
    "hz.err.level": {"zh-CN": "隐患等级 {value!r} 应为 {allowed}", "en": "hazard level {value!r} must be one of {allowed}"},
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
    "hz.reason.overdue": {"zh-CN": "逾期未完成整改", "en": "not rectified by the deadline"},
    "hz.major.text": {
        "zh-CN": "【重大隐患】{unit} 报告重大隐患 #{id}：{place}，{description}。整改责任人：{rectifier}，整改期限：{deadline}。"
                 "请安全科和包保（分管）领导督促整改。",
        "en": "[Major hazard] {unit} reported major hazard #{id}: {place}, {description}. Rectifier: {rectifier}; "
              "deadline {deadline}. The safety section and the responsible bureau leader are asked to supervise."},
    "upload.step": {"zh-CN": "尚未录入上传监管平台的编号，请上传并登记", "en": "not yet recorded as uploaded to the supervision platform"},
})

STATE_ZH = {"reported": "已上报", "rectifying": "整改中", "rectified": "待核验", "verified": "已核验",
            "closed": "已销号", "overdue": "逾期"}
OPEN_STATES = (HazardState.reported.value, HazardState.rectifying.value)
ACTION_ZH = {"start": "开始整改", "rectify": "提交整改", "verify": "核验", "close": "销号", "reopen": "重新打开"}


class HazardError(ValueError):
    """A request the loop refuses; the message is one line a person can act on. Nothing was changed."""


class HazardCatalogError(CatalogError):
    """A malformed ``hazards.yaml``; the message names the file, the entry and the field."""


# =========================================================================== the data file

class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quote(_Spec):
    document: str
    clause: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=4)


class CategorySpec(_Spec):
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()


def _clock(value: Any) -> Any:
    if isinstance(value, (int, float)):
        raise ValueError("write the time in quotes, like '17:30' (unquoted, YAML reads it as a number)")
    return value


class Deadline(_Spec):
    """``days`` working days (on the work calendar), or calendar days moved to the next working day."""

    days: int = Field(ge=0, le=366)
    count: Literal["working_days", "calendar_days"]
    time: Annotated[dt.time, BeforeValidator(_clock)] = dt.time(17, 30)


def _steps(value: Any) -> Any:
    """Reminder steps as the duty catalog writes them, plus ``{after_due: 2d}``."""
    if not isinstance(value, (list, tuple)):
        return value
    out = []
    for step in value:
        if isinstance(step, Mapping) and set(step) == {"after_due"}:
            d = parse_duration(step["after_due"])
            step = {"key": f"due+{_short(d)}", "anchor": "due", "offset": d}
        out.append(step)
    return out


def _short(d: dt.timedelta) -> str:
    seconds = int(d.total_seconds())
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else (f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m")


def _distinct(steps: tuple[ReminderStep, ...]) -> tuple[ReminderStep, ...]:
    keys = [s.key for s in steps]
    if len(keys) != len(set(keys)):
        raise ValueError(f"reminders repeat a step: {keys}")
    return steps


Steps = Annotated[tuple[ReminderStep, ...], BeforeValidator(_steps), AfterValidator(_distinct)]


class RiskLevelSpec(_Spec):
    name: str
    name_en: str
    color: Literal["red", "orange", "yellow", "blue"]
    color_zh: str
    aliases: tuple[str, ...] = ()
    check: Cadence
    window: Window = Window()
    reminders: Steps = ()
    escalation: str | EscalationPolicy

    @field_validator("check")
    @classmethod
    def _calendar_cadence(cls, value: Cadence) -> Cadence:
        if value.every in ("key_date", "holiday", "event"):
            raise ValueError(f"a risk point is checked at a calendar cadence, not {value.every!r}")
        return value


class HazardLevelSpec(_Spec):
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()
    deadline: Deadline
    reopen_deadline: Deadline
    reminders: Steps = ()
    escalation: str | EscalationPolicy
    verify_by: tuple[EscalationTarget, ...] = Field(min_length=1)
    notify_at_once: tuple[EscalationTarget, ...] = ()


class CheckDutyRef(_Spec):
    duty: str
    document: str
    clause: str


class PlatformSpec(_Spec):
    duties: tuple[CheckDutyRef, ...] = Field(min_length=1)
    reference_field: str
    date_field: str
    reminders: Steps = Field(min_length=1)
    stop_after: Duration


class TemplatePoint(_Spec):
    code: str = Field(min_length=1, max_length=64)
    category: RiskCategory
    level: RiskLevel
    place: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    measures: str = Field(min_length=1)


class HazardData(_Spec):
    description: str | None = None
    sources: dict[str, Quote]
    categories: dict[RiskCategory, CategorySpec]
    risk_levels: dict[RiskLevel, RiskLevelSpec]
    check_roles: tuple[RoleKind, ...] = Field(min_length=1)
    hazard_levels: dict[HazardLevel, HazardLevelSpec]
    rectify_min_files: int = Field(default=1, ge=0, le=20)
    half_monthly_checks: PlatformSpec
    risk_template: tuple[TemplatePoint, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> HazardData:
        for name, enum, have in (("categories", RiskCategory, self.categories), ("risk_levels", RiskLevel, self.risk_levels),
                                 ("hazard_levels", HazardLevel, self.hazard_levels)):
            missing = [e.value for e in enum if e not in have]
            if missing:
                raise ValueError(f"{name} must define {', '.join(missing)}")
        if "risk_register" not in self.sources:
            raise ValueError("sources must quote 'risk_register' (the clause the risk checks answer)")
        codes = Counter(p.code for p in self.risk_template)
        twice = sorted(c for c, n in codes.items() if n > 1)
        if twice:
            raise ValueError(f"risk_template repeats code(s) {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class HazardConfig:
    """hazards.yaml validated, with escalation policies resolved and the risk-check duties built."""

    data: HazardData
    path: Path
    hazard_levels: Mapping[HazardLevel, HazardLevelSpec]  # escalation resolved to a policy
    risk_levels: Mapping[RiskLevel, RiskLevelSpec]
    check_duties: Mapping[RiskLevel, DutySpec]  # flow: hazard — run by the hazard watch, never by the duty cycle
    upload_duties: tuple[str, ...]  # half-monthly check duties of the catalog, enabled ones first

    def policy(self, level: HazardLevel | str) -> EscalationPolicy:
        return self.hazard_levels[HazardLevel(level)].escalation  # type: ignore[return-value]

    def level_name(self, level: HazardLevel | str) -> str:
        spec = self.hazard_levels[HazardLevel(level)]
        return pick(spec.name, spec.name_en)

    def risk_name(self, level: RiskLevel | str) -> str:
        spec = self.risk_levels[RiskLevel(level)]
        return pick(spec.name, spec.name_en)

    def parse_hazard_level(self, text: str) -> HazardLevel:
        found = _parse_named(text, self.hazard_levels)
        if found is None:
            allowed = " / ".join(f"{s.name}({v.value})" for v, s in self.hazard_levels.items())
            raise HazardError(t("hz.err.level", value=text, allowed=allowed))
        return found

    def parse_risk_level(self, text: str) -> RiskLevel | None:
        return _parse_named(text, self.risk_levels)

    def parse_category(self, text: str) -> RiskCategory | None:
        return _parse_named(text, self.data.categories)


def _parse_named(text: Any, specs: Mapping):
    """The enum member whose value, name, English name, colour or alias is ``text`` (None if none is)."""
    value = str(getattr(text, "value", text) or "").strip()
    if not value:
        return None
    for member, spec in specs.items():
        names = {member.value, spec.name, spec.name_en.lower(), *spec.aliases}
        names |= {getattr(spec, "color", None), getattr(spec, "color_zh", None)} - {None}
        if value in names or value.lower() in names:
            return member
    return None


def _lines(text: str) -> dict[tuple, int]:
    """Line numbers of each section's entries: (section, key or index) → line."""
    out: dict[tuple, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(key.value,)] = key.start_mark.line + 1
            if isinstance(value, yaml.MappingNode):
                for k, v in value.value:
                    out[(key.value, k.value)] = k.start_mark.line + 1
            elif isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    out[(key.value, i)] = item.start_mark.line + 1
    return out


def _error_text(path: Path, exc: ValidationError, lines: dict[tuple, int]) -> str:
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not str(p).startswith("function-")]
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if not loc:
        return f"{path}: {msg}{extra}"
    section = str(loc[0])
    if len(loc) == 1:
        return f"{path}: field {section}: {msg}{extra}"
    entry, rest = loc[1], ".".join(str(p) for p in loc[2:] if not str(p).startswith(("str", "EscalationPolicy")))
    line = lines.get((section, entry))
    if isinstance(entry, int):
        where = f"{section} entry {entry + 1}"
    else:
        where = f"{section} {entry!r}"
    where += f" (line {line})" if line else ""
    return f"{path}: {where}: field {rest or '(entry)'}: {msg}{extra}"


def load_hazard_config(path: Path, catalog: Catalog) -> HazardConfig:
    """Read and check ``hazards.yaml``; raise ``HazardCatalogError`` naming file, entry and field."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except OSError as exc:
        raise HazardCatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise HazardCatalogError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise HazardCatalogError(f"{path}: must be a mapping (sources, categories, risk_levels, hazard_levels, …)")
    lines = _lines(text)
    try:
        data = HazardData.model_validate(raw)
    except ValidationError as exc:
        raise HazardCatalogError(_error_text(path, exc, lines)) from None

    def resolve(section: str, key: str, value: str | EscalationPolicy) -> EscalationPolicy:
        if isinstance(value, EscalationPolicy):
            return value
        if value not in catalog.policies:
            line = lines.get((section, key))
            raise HazardCatalogError(
                f"{path}: {section} {key!r}{f' (line {line})' if line else ''}: field escalation: "
                f"unknown escalation policy {value!r} (policies.yaml has {', '.join(sorted(catalog.policies))})")
        return catalog.policies[value]

    hazard_levels = {lvl: s.model_copy(update={"escalation": resolve("hazard_levels", lvl.value, s.escalation)})
                     for lvl, s in data.hazard_levels.items()}
    risk_levels = {lvl: s.model_copy(update={"escalation": resolve("risk_levels", lvl.value, s.escalation)})
                   for lvl, s in data.risk_levels.items()}
    platform = data.half_monthly_checks
    for i, ref in enumerate(platform.duties):
        where = f"{path}: half_monthly_checks.duties entry {i + 1}"
        duty = catalog.duties.get(ref.duty)
        if duty is None:
            raise HazardCatalogError(f"{where}: field duty: no duty {ref.duty!r} in the catalog")
        if (duty.source.document, duty.source.clause) != (ref.document, ref.clause):
            raise HazardCatalogError(
                f"{where}: field clause: the catalog cites {ref.duty!r} as {duty.source.document} {duty.source.clause}, "
                f"not {ref.document} {ref.clause}")
        fields = {f.key for k in duty.evidence if k in catalog.evidence_kinds for f in catalog.evidence_kinds[k].fields}
        for name in (platform.reference_field, platform.date_field):
            if name not in fields:
                raise HazardCatalogError(f"{where}: field duty: the evidence of {ref.duty!r} has no field {name!r}")
    for key, quote in data.sources.items():
        if quote.document not in catalog.documents:
            raise HazardCatalogError(f"{path}: sources {key!r}: field document: unknown document {quote.document!r}")
    quote = data.sources["risk_register"]
    checks = {}
    for lvl, spec in risk_levels.items():
        try:
            checks[lvl] = DutySpec(
                key=f"risk-check-{lvl.value}", name=f"{spec.name}点检查", name_en=f"{spec.name_en} point check",
                source=Source(document=quote.document, clause=quote.clause), text=quote.text,
                carrier=Carrier(scope="unit", unit_kinds=tuple(UnitKind), roles=data.check_roles),
                cadence=spec.check, window=spec.window, evidence=("self_check_record",), reminders=spec.reminders,
                escalation=spec.escalation, flow="hazard", tags=("risk",),
            )
        except ValidationError as exc:
            line = lines.get(("risk_levels", lvl.value))
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise HazardCatalogError(f"{path}: risk_levels {lvl.value!r}{f' (line {line})' if line else ''}: {message}") from None
    keys = [r.duty for r in platform.duties]
    upload_duties = tuple(sorted(keys, key=lambda k: not catalog.duties[k].enabled))
    return HazardConfig(data=data, path=path, hazard_levels=hazard_levels, risk_levels=risk_levels,
                        check_duties=checks, upload_duties=upload_duties)


_CONFIGS: dict[tuple[str, int, int], HazardConfig] = {}


def hazard_config(rt: Runtime) -> HazardConfig:
    """The runtime's ``hazards.yaml`` (in its catalog directory), loaded and checked once per process."""
    path = Path(rt.settings.catalog_dir) / "hazards.yaml"
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    mark = (str(path), mtime, id(rt.catalog))
    if mark not in _CONFIGS:
        _CONFIGS[mark] = load_hazard_config(path, rt.catalog)
    return _CONFIGS[mark]


# =========================================================================== pure decisions

def deadline_after(start: dt.datetime, rule: Deadline, calendar: WorkCalendar) -> dt.datetime:
    """The deadline of something found at ``start``: ``rule.days`` working days later (the day of
    ``start`` not counted), or calendar days moved to the next working day; at ``rule.time``."""
    day = start.astimezone(TZ).date()
    if rule.count == "working_days":
        counted = 0
        while counted < rule.days:
            day += dt.timedelta(days=1)
            counted += calendar.is_workday(day)
        if rule.days == 0:
            day = calendar.next_workday(day)
    else:
        day = calendar.next_workday(day + dt.timedelta(days=rule.days))
    return dt.datetime.combine(day, rule.time, tzinfo=TZ)


@dataclass(frozen=True)
class HazardView:
    """The columns of a hazard the decisions need."""

    id: int
    unit_id: int
    level: str
    state: str
    round: int
    found_at: dt.datetime
    deadline: dt.datetime
    rectifier_id: int

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def task(self, policy: EscalationPolicy) -> TaskView:
        """The hazard as a duty task: evidence "missing" while it waits for rectification."""
        return TaskView(
            id=self.id, duty_key="hazard", unit_id=self.unit_id, person_id=self.rectifier_id,
            period_key=f"r{self.round}", opens_at=self.found_at, due_at=self.deadline,
            escalate_at=self.deadline + policy.grace, review="none" if self.open else "accepted",
        )


def status(h: HazardView, as_of: dt.datetime) -> str:
    """The one place a hazard's shown state is derived: its state, or *overdue* past the deadline."""
    if h.open and as_of > h.deadline:
        return "overdue"
    return h.state


def age_days(found_at: dt.datetime, as_of: dt.datetime) -> int:
    return max(0, (as_of.astimezone(TZ).date() - found_at.astimezone(TZ).date()).days)


AGE_BUCKETS = ((7, "≤7天"), (30, "8–30天"), (None, ">30天"))


def age_bucket(days: int) -> str:
    for limit, label in AGE_BUCKETS:
        if limit is None or days <= limit:
            return label
    raise AssertionError


def fired_steps(steps: Iterable[str], round_: int) -> set[tuple[int, int]]:
    """(level, seq) of the escalation events recorded for ``round_`` (steps ``r2:e1.0``)."""
    out = set()
    prefix = f"r{round_}:e"
    for step in steps:
        if step and step.startswith(prefix):
            level, seq = step[len(prefix):].split(".")
            out.add((int(level), int(seq)))
    return out


MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("reported",), "rectifying"),
    "rectify": (("reported", "rectifying"), "rectified"),
    "verify": (("rectified",), "verified"),
    "fail": (("rectified",), "rectifying"),
    "close": (("verified",), "closed"),
    "reopen": (("verified", "closed"), "rectifying"),
}


def next_state(hazard_id: int, state: str, action: str) -> str:
    allowed, to = MOVES[action]
    if state not in allowed:
        key = "verify" if action == "fail" else action
        raise HazardError(t("hz.err.state", id=hazard_id, state=STATE_ZH.get(state, state), state_en=state,
                            action=ACTION_ZH[key], action_en=key))
    return to


# =========================================================================== files

def check_files(rt: Runtime, uploads: Sequence) -> list:
    """Check photos and evidence files as the evidence page does (type, size, content); nothing stored."""
    from pingan.evidence import files as evfiles

    limits = evfiles.Limits.of(rt.settings)
    uploads = [u for u in uploads if u.filename or _size(u)]
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


def _size(upload) -> int:
    upload.file.seek(0, 2)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def _store(rt: Runtime, session: Session, hazard_id: int, event_id: int, role: str, checked: Sequence) -> list[dict]:
    from pingan.evidence import files as evfiles

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


def _payload(cfg: HazardConfig, org: Org, h: HazardView, description: str, **extra) -> dict:
    unit = org.units.get(h.unit_id)
    person = org.persons.get(h.rectifier_id)
    return {
        "duty": t("hz.name", level=cfg.level_name(h.level), description=description[:80]),
        "unit": unit.name if unit else str(h.unit_id), "person": person.name if person else None,
        "period": f"#{h.id}", "due": h.deadline.isoformat(), "hazard": h.id, **extra,
    }


def _notices(session: Session, rows: list[dict]) -> int:
    return len(insert_ignore(session, N, rows, ["person_id", "dedupe_key"]))


def _notice(person_id: int, dedupe: str, kind: NoticeKind, step: str, payload: dict, as_of: dt.datetime, *,
            level: int | None = None, urgent: bool = False, duty_key: str = "hazard", occurrence_id: int | None = None) -> dict:
    return {"person_id": person_id, "dedupe_key": dedupe[:160], "kind": kind.value, "occurrence_id": occurrence_id,
            "duty_key": duty_key, "step": step[:32], "level": level, "urgent": urgent, "payload": payload, "created_at": as_of}


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
        from models.hazard import RiskPoint

        if session.scalar(sa.select(RiskPoint.unit_id).where(RiskPoint.id == risk_point_id)) != unit_id:
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
    payload = _payload(cfg, org, h, description, step=t("hz.step.assigned"))
    _notices(session, [_notice(rectifier_id, f"hz:{hazard_id}:r1:assigned", NoticeKind.reminder, "assigned", payload, as_of)])
    notified: list[int] = []
    if spec.notify_at_once:
        notified = org.escalation_targets(spec.notify_at_once, unit_id)
        text_zh, text_en = _both("hz.major.text", dict(
            unit=org.units[unit_id].name, id=hazard_id, place=place, description=description[:200],
            rectifier=org.persons[rectifier_id].name, deadline=f"{due:%Y-%m-%d %H:%M}"))
        _notices(session, [
            _notice(pid, f"hz:{hazard_id}:major", NoticeKind.announcement, "major",
                    {"text": text_zh, "text_en": text_en, "hazard": hazard_id, "due": due.isoformat()}, as_of, urgent=True)
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
    payload = _payload(cfg, org, h, hazard.description, step=t("hz.step.verify"))
    _notices(session, [_notice(pid, f"hz:{hazard_id}:r{hazard.round}:verify", NoticeKind.reminder, "verify", payload, as_of)
                       for pid in verifiers])
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
    payload = _payload(cfg, org, h, hazard.description, step=t("hz.step.reopened"), reason=note[:500])
    _notices(session, [_notice(hazard.rectifier_id, f"hz:{hazard.id}:r{round_}:reopened", NoticeKind.reminder,
                               "reopened", payload, as_of)])
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


# =========================================================================== the daily watch: hazards

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
    notices, events = [], []
    for h, description in _open_views(session, H.c.found_at <= as_of):
        spec = cfg.hazard_levels[HazardLevel(h.level)]
        step = reminder_due(spec.reminders, h.task(spec.escalation), as_of)
        if step is None or h.rectifier_id not in org.persons:
            continue
        payload = _payload(cfg, org, h, description, step=step.key)
        notices.append(_notice(h.rectifier_id, f"hz:{h.id}:r{h.round}:{step.key}", NoticeKind.reminder, step.key, payload, as_of))
        events.append({"hazard_id": h.id, "at": as_of, "actor": "system", "action": "reminded", "from_state": h.state,
                       "to_state": h.state, "round": h.round, "step": f"r{h.round}:{step.key}", "note": None,
                       "detail": {"recipients": [h.rectifier_id], "at": step_time(step, h.task(spec.escalation)).isoformat()}})
    insert_ignore(session, HE, events, ["hazard_id", "step"], returning=())
    return _notices(session, notices)


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
    notices, audits = [], []
    for row in inserted:
        h, description, event, recipients = plan[(row.hazard_id, row.step)]
        rectifier = org.persons.get(h.rectifier_id)
        payload = _payload(cfg, org, h, description, level=event.level, seq=event.seq, reason=t("hz.reason.overdue"),
                           assignees=[rectifier.name] if rectifier else [])
        step = f"L{event.level}" + (f"R{event.seq}" if event.seq else "")
        notices += [_notice(pid, f"hz:{h.id}:r{h.round}:e{event.level}.{event.seq}", NoticeKind.escalation, step, payload,
                            as_of, level=event.level, urgent=h.level == HazardLevel.major.value) for pid in recipients]
        audits.append({"at": as_of, "actor": "system", "action": "hazard.escalated", "object_type": "hazard",
                       "object_id": str(h.id), "detail": {"round": h.round, "level": event.level, "seq": event.seq,
                                                          "recipients": recipients}})
    _notices(session, notices)
    if audits:
        session.execute(sa.insert(Audit.__table__), audits)
    return len(inserted)


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


def sync_uploads(session: Session, rt: Runtime, as_of: dt.datetime) -> int:
    """Take the platform reference from half-monthly check evidence handed in (not rejected)."""
    cfg = hazard_config(rt)
    spec = cfg.data.half_monthly_checks
    EV = Evidence.__table__
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
        rows += [_notice(pid, f"u:{r.id}:{step.key}", NoticeKind.reminder, f"upload@{step.key}", payload, as_of,
                         duty_key=r.duty_key, occurrence_id=r.id)
                 for pid in org.assignees(duty.carrier, r.unit_id, r.person_id)]
    return _notices(session, rows)


# =========================================================================== what the operator sees

@dataclass(frozen=True)
class HazardRow:
    id: int
    unit: str
    unit_code: str
    place: str
    description: str
    level: str
    source: str
    state: str
    status: str
    round: int
    found_at: dt.datetime
    deadline: dt.datetime
    age: int
    rectifier: str | None

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["found_at"], out["deadline"] = self.found_at.isoformat(), self.deadline.isoformat()
        return out


def hazard_rows(session: Session, as_of: dt.datetime, *, unit_code: str | None = None, state: str | None = None,
                level: str | None = None, open_only: bool = False, limit: int | None = None) -> list[HazardRow]:
    U, P = Unit.__table__, Person.__table__
    query = (sa.select(H, U.c.name.label("unit"), U.c.code.label("unit_code"), P.c.name.label("rectifier"))
             .join(U, U.c.id == H.c.unit_id).outerjoin(P, P.c.id == H.c.rectifier_id).order_by(H.c.id))
    if unit_code:
        query = query.where(U.c.code == unit_code)
    if state and state != "overdue":
        query = query.where(H.c.state == state)
    if state == "overdue":
        query = query.where(H.c.state.in_(OPEN_STATES), H.c.deadline < as_of)
    if open_only:
        query = query.where(H.c.state != HazardState.closed.value)
    if level:
        query = query.where(H.c.level == level)
    if limit:
        query = query.limit(limit)
    out = []
    for r in session.execute(query):
        v = HazardView(r.id, r.unit_id, r.level, r.state, r.round, r.found_at, r.deadline, r.rectifier_id)
        out.append(HazardRow(r.id, r.unit, r.unit_code, r.place, r.description, r.level, r.source, r.state,
                             status(v, as_of), r.round, r.found_at, r.deadline, age_days(r.found_at, as_of), r.rectifier))
    return out


def by_unit(rows: Iterable[HazardRow]) -> list[dict]:
    """Open hazards (not yet closed) per unit: by level, by age and how many are overdue or wait."""
    table: dict[str, dict] = {}
    for r in rows:
        if r.state == HazardState.closed.value:
            continue
        row = table.setdefault(r.unit_code, {
            "单位 unit": r.unit, "一般隐患 general": 0, "重大隐患 major": 0, "逾期 overdue": 0,
            "待核验 to verify": 0, "待销号 to close": 0, **{f"{label} age": 0 for _, label in AGE_BUCKETS},
            "最久(天) oldest days": 0,
        })
        row["一般隐患 general" if r.level == "general" else "重大隐患 major"] += 1
        row["逾期 overdue"] += r.status == "overdue"
        row["待核验 to verify"] += r.state == "rectified"
        row["待销号 to close"] += r.state == "verified"
        row[f"{age_bucket(r.age)} age"] += 1
        row["最久(天) oldest days"] = max(row["最久(天) oldest days"], r.age)
    return [table[k] for k in sorted(table)]


def history(session: Session, hazard_id: int) -> list[dict]:
    rows = session.execute(sa.select(HE).where(HE.c.hazard_id == hazard_id).order_by(HE.c.at, HE.c.id)).all()
    files = defaultdict(list)
    for f in session.execute(sa.select(HF).where(HF.c.hazard_id == hazard_id).order_by(HF.c.id)):
        files[f.event_id].append({"id": f.id, "role": f.role, "name": f.filename, "sha256": f.sha256, "size": f.size,
                                  "content_type": f.content_type})
    return [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "from": r.from_state, "to": r.to_state,
             "round": r.round, "step": r.step, "note": r.note, "detail": r.detail, "files": files.get(r.id, [])}
            for r in rows]


def upload_rows(session: Session, rt: Runtime, as_of: dt.datetime) -> list[dict]:
    """Half-monthly checks due in the last ``stop_after`` and whether each was uploaded."""
    cfg = hazard_config(rt)
    U = Unit.__table__
    since = as_of - cfg.data.half_monthly_checks.stop_after - dt.timedelta(days=16)
    query = (sa.select(O.c.id, O.c.period_key, O.c.due_at, U.c.name, U.c.code, PU.c.reference, PU.c.uploaded_on)
             .join(U, U.c.id == O.c.unit_id).outerjoin(PU, PU.c.occurrence_id == O.c.id)
             .where(O.c.duty_key.in_(cfg.upload_duties), O.c.due_at >= since, O.c.opens_at <= as_of)
             .order_by(U.c.code, O.c.period_key))
    return [{"单位 unit": r.name, "周期 period": r.period_key, "截止 due": f"{r.due_at:%Y-%m-%d %H:%M}",
             "已上传 uploaded": "是 yes" if r.reference else ("否 no" if r.due_at <= as_of else "—"),
             "上传编号 reference": r.reference or "", "上传日期 date": r.uploaded_on.isoformat() if r.uploaded_on else ""}
            for r in session.execute(query)]


def summary_markdown(cfg: HazardConfig, rows: Sequence[HazardRow], as_of: dt.datetime, run: Mapping[str, int],
                     warnings: int = 0, uploads_missing: int = 0) -> str:
    """The watch's summary for the operator, citing the clauses it answers."""
    open_rows = [r for r in rows if r.state != HazardState.closed.value]
    by_level = Counter(r.level for r in open_rows)
    by_status = Counter(r.status for r in open_rows)
    src = cfg.data.sources
    lines = [
        f"# 隐患排查治理与风险点巡查 · {as_of:%Y-%m-%d}",
        f"*Hazard closed loop and risk-point checks* — as of {as_of:%Y-%m-%d %H:%M} (Asia/Shanghai)",
        "",
        *(f"**依据 / source**：`{q.document}` {q.clause} —— {' '.join(q.text.split())}"
          for q in (src.get("closed_loop"), src.get("risk_register"), src.get("leaders_supervise")) if q),
        "",
        "| 未销号隐患 open hazards | 数量 count |", "|---|---:|",
        *(f"| {cfg.level_name(lvl)} {lvl.value} | {by_level.get(lvl.value, 0)} |" for lvl in HazardLevel),
        *(f"| {STATE_ZH[s]} {s} | {by_status.get(s, 0)} |" for s in ("reported", "rectifying", "overdue", "rectified", "verified")),
        "",
        f"本次运行 / this run: 新建风险点检查 checks planned **{run.get('checks_planned', 0)}**, "
        f"新逾期 newly overdue **{run.get('overdue_marked', 0)}**, "
        f"隐患提醒 hazard reminders **{run.get('hazard_reminders', 0)}**, 隐患督办 hazard escalations **{run.get('hazard_escalations', 0)}**, "
        f"检查提醒 check reminders **{run.get('check_reminders', 0)}**, 检查督办 check escalations **{run.get('check_escalations', 0)}**, "
        f"上传提醒 upload reminders **{run.get('upload_reminders', 0)}**, 已发送 sent **{run.get('sent', 0)}**.",
    ]
    if not run.get("working_time", True):
        lines.append("\n非工作时间：提醒与督办将在下一个工作时段发送 / outside working time: nothing was queued.")
    if warnings:
        lines.append(f"\n⚠ 风险点预警 / risk points in warning (check overdue): **{warnings}**")
    if uploads_missing:
        lines.append(f"\n⚠ 半月排查未登记上传监管平台 / half-monthly checks not uploaded: **{uploads_missing}**")
    return "\n".join(lines)


# =========================================================================== the watch, without Prefect

@dataclass
class WatchResult:
    as_of: dt.datetime
    uploads_synced: int = 0
    checks_planned: int = 0
    overdue_marked: int = 0
    working_time: bool = True
    hazard_reminders: int = 0
    hazard_escalations: int = 0
    check_reminders: int = 0
    check_escalations: int = 0
    upload_reminders: int = 0
    sent: int = 0
    failed: int = 0

    def merge(self, other: WatchResult) -> None:
        for name in ("uploads_synced", "checks_planned", "overdue_marked", "hazard_reminders", "hazard_escalations",
                     "check_reminders", "check_escalations", "upload_reminders", "sent", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def advance(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, result: WatchResult) -> None:
    """What happens at any hour: uploads taken from evidence, risk checks planned, overdue hazards marked."""
    from pingan.hazards import risks

    result.uploads_synced = sync_uploads(session, rt, as_of)
    result.checks_planned = risks.plan_checks(session, rt, org, as_of)
    result.overdue_marked = mark_overdue(session, rt, as_of)


def remind(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, result: WatchResult) -> None:
    from pingan.hazards import risks

    result.hazard_reminders = queue_hazard_reminders(session, rt, org, as_of)
    result.check_reminders = risks.queue_check_reminders(session, rt, org, as_of)
    result.upload_reminders = queue_upload_reminders(session, rt, org, as_of)


def escalate(session: Session, rt: Runtime, org: Org, as_of: dt.datetime, result: WatchResult) -> None:
    from pingan.hazards import risks

    result.hazard_escalations = queue_hazard_escalations(session, rt, org, as_of)
    result.check_escalations = risks.queue_check_escalations(session, rt, org, as_of)


def in_working_time(rt: Runtime, as_of: dt.datetime) -> bool:
    s = rt.settings
    return is_working_time(as_of, rt.calendar, s.work_start, s.work_end)


def watch(rt: Runtime, as_of: dt.datetime, *, send_messages: bool = True) -> WatchResult:
    """One run of the daily hazard watch in one transaction, then the outbox (the flow's steps in a row)."""
    from pingan.core.db import get_engine, session_scope
    from pingan.core.clock import local
    from pingan.org.snapshot import load_org

    as_of = local(as_of)
    result = WatchResult(as_of=as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        org = load_org(session)
        advance(session, rt, org, as_of, result)
        result.working_time = in_working_time(rt, as_of)
        if result.working_time:
            remind(session, rt, org, as_of, result)
            escalate(session, rt, org, as_of, result)
    if send_messages:
        report = dispatch(rt, as_of)
        result.sent, result.failed = report.sent, report.failed
    return result


def act(rt: Runtime, work, *, as_of: dt.datetime, dispatch: bool = True):
    """Run one loop action (``work(session, org)``) in a transaction, then send what it queued.

    The evidence page and the CLI call this: a refused action raises ``HazardError`` and
    changes nothing; an accepted one is committed before anything is sent.
    """
    from pingan.core.db import get_engine, session_scope
    from pingan.org.snapshot import load_org

    with session_scope(get_engine(rt.settings.db_url)) as session:
        out = work(session, load_org(session))
    if dispatch:
        dispatch(rt, as_of)
    return out
