"""The dual-prevention data file and the decisions it drives, without a database.

``catalog/hazards.yaml`` says how risk levels are checked and how hazard levels are rectified;
it is validated here (file, entry and field in every error) and cross-checked with the duty
catalog: the half-monthly check duties it names, the documents it quotes, the escalation
policies it refers to. Each risk level becomes a check duty (``flow: hazard``, run by the
hazard watch, never by the duty cycle).

The decisions are pure: a hazard's deadline on the work calendar, the state machine

    reported → rectifying → rectified (with evidence) → verified (by someone else) → closed (销号)

(a failed verification or a ``reopen`` sends it back to *rectifying* for a new round), the state
shown (*overdue* past the deadline), its age, and which escalation steps a round has fired.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator, model_validator

from models import RoleKind, UnitKind
from models.hazard import HazardLevel, HazardState, RiskCategory, RiskLevel
from pingan.core.cadence import Cadence, Clock, Duration, Spec, Window, parse_duration
from pingan.core.calendar import WorkCalendar
from pingan.core.clock import TZ
from pingan.core.i18n import pick, register, t
from pingan.duties.catalog import (
    Catalog, CatalogError, DutySpec, EscalationPolicy, EscalationTarget, ReminderStep, Source,
)
from pingan.duties.rules import TaskView
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import Carrier, Org

register({
    "hz.err.level": {"zh-CN": "隐患等级 {value!r} 应为 {allowed}", "en": "hazard level {value!r} must be one of {allowed}"},
    "hz.err.state": {"zh-CN": "隐患 #{id} 当前为「{state}」，不能{action}", "en": "hazard #{id} is {state_en}: cannot {action_en}"},
    # A hazard's state as shown (``overdue`` is derived: an open hazard past its deadline).
    "hz.state.reported": {"zh-CN": "已上报", "en": "reported"},
    "hz.state.rectifying": {"zh-CN": "整改中", "en": "rectifying"},
    "hz.state.rectified": {"zh-CN": "待核验", "en": "to verify"},
    "hz.state.verified": {"zh-CN": "已核验", "en": "verified"},
    "hz.state.closed": {"zh-CN": "已销号", "en": "closed"},
    "hz.state.overdue": {"zh-CN": "逾期", "en": "overdue"},
    # What a person asks of the loop.
    "hz.action.start": {"zh-CN": "开始整改", "en": "start"},
    "hz.action.rectify": {"zh-CN": "提交整改", "en": "rectify"},
    "hz.action.verify": {"zh-CN": "核验", "en": "verify"},
    "hz.action.close": {"zh-CN": "销号", "en": "close"},
    "hz.action.reopen": {"zh-CN": "重新打开", "en": "reopen"},
})

OPEN_STATES = (HazardState.reported.value, HazardState.rectifying.value)


class HazardError(ValueError):
    """A request the loop refuses; the message is one line a person can act on. Nothing was changed."""


class HazardCatalogError(CatalogError):
    """A malformed ``hazards.yaml``; the message names the file, the entry and the field."""


# =========================================================================== the data file

class Quote(Spec):
    document: str
    clause: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=4)


class CategorySpec(Spec):
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()


class Deadline(Spec):
    """``days`` working days (on the work calendar), or calendar days moved to the next working day."""

    days: int = Field(ge=0, le=366)
    count: Literal["working_days", "calendar_days"]
    time: Clock = dt.time(17, 30)


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


class RiskLevelSpec(Spec):
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


class HazardLevelSpec(Spec):
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()
    deadline: Deadline
    reopen_deadline: Deadline
    # True where the deadlines are the installation's defaults, not a document's (shown as such).
    local_default: bool = False
    reminders: Steps = ()
    escalation: str | EscalationPolicy
    verify_by: tuple[EscalationTarget, ...] = Field(min_length=1)
    notify_at_once: tuple[EscalationTarget, ...] = ()


class CheckDutyRef(Spec):
    duty: str
    document: str
    clause: str


class PlatformSpec(Spec):
    duties: tuple[CheckDutyRef, ...] = Field(min_length=1)
    reference_field: str
    date_field: str
    reminders: Steps = Field(min_length=1)
    stop_after: Duration


class TemplatePoint(Spec):
    code: str = Field(min_length=1, max_length=64)
    category: RiskCategory
    level: RiskLevel
    place: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    measures: str = Field(min_length=1)


class HazardData(Spec):
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


# =========================================================================== pure decisions: hazards

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
        raise HazardError(t("hz.err.state", id=hazard_id, state=t(f"hz.state.{state}"), state_en=state,
                            action=t(f"hz.action.{key}"), action_en=key))
    return to


# =========================================================================== pure decisions: risk checks

@dataclass(frozen=True)
class CheckView:
    """The columns of a risk check (and its point) the decisions need."""

    id: int
    risk_point_id: int
    unit_id: int
    level: str
    period_key: str
    opens_at: dt.datetime
    due_at: dt.datetime
    escalate_at: dt.datetime
    escalation_level: int
    escalation_seq: int
    place: str
    code: str
    owner_id: int | None

    def task(self) -> TaskView:
        return TaskView(self.id, f"risk-check-{self.level}", self.unit_id, self.owner_id, self.period_key,
                        self.opens_at, self.due_at, self.escalate_at, "none")


def assignees(org: Org, cfg: HazardConfig, unit_id: int, owner_id: int | None) -> list[int]:
    """The point's owner, else the unit's holders of the check roles, else its principal."""
    if owner_id is not None and owner_id in org.persons:
        return [owner_id]
    return org.holders(unit_id, *cfg.data.check_roles) or org.holders(unit_id, RoleKind.principal)


def fired_from(policy: EscalationPolicy, level: int, seq: int) -> set[tuple[int, int]]:
    """The (level, seq) steps behind a check's last fired step: levels are never skipped."""
    out = {(lvl.level, 0) for lvl in policy.levels if lvl.level <= level}
    last = policy.levels[-1].level
    return out | {(last, s) for s in range(1, seq + 1)} if level == last else out
