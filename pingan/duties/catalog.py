"""The duty catalog: YAML files in ``catalog/`` validated into typed, frozen specs.

Layout of the catalog directory:

- ``evidence.yaml``  — ``evidence_kinds``: what each kind of evidence must contain;
- ``policies.yaml``  — ``escalation_policies``, ``reminder_sets`` and ``key_dates``;
- one file per source document — ``document``, ``title`` and its ``duties``;
- ``local/*.yaml``   — a locality's ``overrides`` (deep-merged into duties by key) and
  extra ``duties``; they are applied before validation, so they are checked the same way.

Loading is all or nothing: the first malformed entry raises ``CatalogError`` naming the
file, the entry and the field, and no catalog is returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from pingan.core.cadence import KEY_PATTERN, Cadence, Duration, KeyDate, Window, parse_duration
from pingan.core.cadence import Spec as _Spec
from pingan.org.snapshot import Carrier, EscalationTarget


# --------------------------------------------------------------------------- evidence

class EvidenceField(_Spec):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    label_en: str
    type: Literal["text", "textarea", "date", "datetime", "int", "minutes", "persons", "units", "reference"] = "text"
    required: bool = True


class EvidenceKind(_Spec):
    key: str = Field(pattern=KEY_PATTERN)
    name: str
    name_en: str
    must_contain: str
    must_contain_en: str
    fields: tuple[EvidenceField, ...] = ()
    min_files: int = Field(default=1, ge=0, le=20)



class ReminderStep(_Spec):
    """One reminder: ``{at: open}``, ``{at: due}``, ``{before_due: 7d}`` or ``{after_open: 2d}``."""

    key: str
    anchor: Literal["open", "due"]
    offset: dt.timedelta  # signed, from the anchor

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or "anchor" in value:
            return value
        if set(value) == {"at"} and value["at"] in ("open", "due"):
            return {"key": value["at"], "anchor": value["at"], "offset": dt.timedelta(0)}
        if set(value) == {"before_due"}:
            d = parse_duration(value["before_due"])
            return {"key": f"due-{_short(d)}", "anchor": "due", "offset": -d}
        if set(value) == {"after_open"}:
            d = parse_duration(value["after_open"])
            return {"key": f"open+{_short(d)}", "anchor": "open", "offset": d}
        raise ValueError("a reminder is {at: open}, {at: due}, {before_due: 7d} or {after_open: 2d}")


def _short(d: dt.timedelta) -> str:
    if d.total_seconds() % 86400 == 0:
        return f"{d.days}d"
    if d.total_seconds() % 3600 == 0:
        return f"{int(d.total_seconds() // 3600)}h"
    return f"{int(d.total_seconds() // 60)}m"




class EscalationLevel(_Spec):
    level: int = Field(ge=1, le=9)
    after: Duration  # from the moment escalation starts (due + grace)
    to: tuple[EscalationTarget, ...] = Field(min_length=1)


class Repeat(_Spec):
    """After the last level: repeat it every ``every``, the interval doubling up to ``max_every``."""

    every: Duration
    max_every: Duration
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)

    @model_validator(mode="after")
    def _cap(self) -> Repeat:
        if self.every <= dt.timedelta(0) or self.max_every < self.every:
            raise ValueError("repeat needs 0 < every <= max_every")
        return self


class EscalationPolicy(_Spec):
    key: str = Field(pattern=KEY_PATTERN)
    grace: Duration = dt.timedelta(days=1)
    levels: tuple[EscalationLevel, ...] = Field(min_length=1)
    repeat: Repeat | None = None

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicy:
        numbers = [lvl.level for lvl in self.levels]
        afters = [lvl.after for lvl in self.levels]
        if numbers != sorted(set(numbers)) or afters != sorted(afters):
            raise ValueError("levels must be numbered upwards with non-decreasing 'after'")
        return self


# --------------------------------------------------------------------------- duties

class Source(_Spec):
    document: str
    clause: str = Field(min_length=1, max_length=40)


class Sensitive(_Spec):
    """How a key sensitive period tightens the duty: the cadence it runs at inside the period."""

    every: Literal["daily", "weekly", "half_monthly", "monthly"]


FlowName = Literal["cycle", "hazard", "incident", "holiday"]
LocalDefault = Literal["cadence", "window", "sensitive", "carrier"]


class DutySpec(_Spec):
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=2, max_length=200)
    name_en: str = Field(min_length=2, max_length=200)
    # The deployment's name in the Prefect UI's list, which cuts names after about ten characters:
    # short and distinct (the full name and clause are in its description). Default: ``name``.
    short: str | None = Field(default=None, min_length=2, max_length=12)
    source: Source
    text: str = Field(min_length=4, description="the original wording of the clause")
    carrier: Carrier
    cadence: Cadence
    window: Window = Window()
    evidence: tuple[str, ...] = Field(min_length=1)
    reminders: tuple[ReminderStep, ...] = ()
    escalation: EscalationPolicy
    sensitive: Sensitive | None = None
    flow: FlowName = "cycle"
    enabled: bool = Field(default=True, description="a locality switches a duty off with an override")
    default_note: str | None = Field(default=None, description="why a default was chosen where the text says 定期")
    # The parts of this entry whose numbers are the installation's defaults, not the document's
    # (a cadence where the text says 定期, any due window, the tightening in a sensitive period):
    # shown to the operator as such (pingan catalog list/show), so they are not taken for the law.
    local_defaults: tuple[LocalDefault, ...] = ()
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> DutySpec:
        keys = [step.key for step in self.reminders]
        if len(keys) != len(set(keys)):
            raise ValueError(f"reminders repeat a step: {keys}")
        if self.cadence.every in ("holiday", "event") and self.flow == "cycle":
            raise ValueError(f"cadence {self.cadence.every} is run by a special flow: set flow")
        return self

    @property
    def label(self) -> str:
        """What lists show of the duty: its short name, else its name (the UI's deployment list, choices)."""
        return self.short or self.name

    @property
    def planned(self) -> bool:
        """Planned period by period by the duty cycle (not clock- or event-driven, not switched off)."""
        return self.enabled and self.flow == "cycle"

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Catalog:
    duties: Mapping[str, DutySpec]
    evidence_kinds: Mapping[str, EvidenceKind]
    policies: Mapping[str, EscalationPolicy]
    key_dates: Mapping[str, KeyDate]
    documents: Mapping[str, str]  # file name → title

    def duty(self, key: str) -> DutySpec:
        try:
            return self.duties[key]
        except KeyError:
            raise CatalogError(f"no duty {key!r} in the catalog") from None

    @property
    def planned(self) -> list[DutySpec]:
        return [d for d in self.duties.values() if d.planned]


class CatalogError(ValueError):
    """A malformed catalog; the message names the file, the entry and the field."""


# --------------------------------------------------------------------------- loading

def _read_yaml(path: Path) -> tuple[Any, dict[int, int]]:
    """The document and, for a top-level ``duties`` list, each item's line number."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    lines: dict[int, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "duties" and isinstance(value, yaml.SequenceNode):
                lines = {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return data if data is not None else {}, lines


BaseModelT = TypeVar("BaseModelT", bound=BaseModel)


_DATA_FILES: dict[tuple, BaseModel] = {}


def read_data_file(path: Path, model: type[BaseModelT]) -> BaseModelT:
    """A YAML data file beside the catalog (``catalog/flows/*.yaml``) checked by ``model``;
    a bad file raises ``CatalogError`` naming the file and the first bad field.

    Read once per version of the file (its size and modification time) while the process runs:
    the flows read their rules on every run, and a replay runs them thousands of times. The
    models are frozen, so the one instance is shared safely."""
    try:
        stat = path.stat()
        mark = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, model)
    except OSError:
        mark = None
    if mark is not None and mark in _DATA_FILES:
        return _DATA_FILES[mark]  # type: ignore[return-value]
    found = _read_data_file(path, model)
    if mark is not None and getattr(model, "model_config", {}).get("frozen"):
        if len(_DATA_FILES) >= 32:
            _DATA_FILES.pop(next(iter(_DATA_FILES)))
        _DATA_FILES[mark] = found
    return found


def _read_data_file(path: Path, model: type[BaseModelT]) -> BaseModelT:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise CatalogError(f"{path}: field {loc or '(file)'}: {err['msg'].removeprefix('Value error, ')}") from None


def _where(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"field {loc or '(entry)'}: {msg}{extra}"


def _mapping(path: Path, data: Any, key: str) -> dict:
    value = data.get(key, {}) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise CatalogError(f"{path}: '{key}' must be a mapping")
    return value


def _named(path: Path, section: str, raw: dict, model: type[BaseModel]) -> dict:
    out = {}
    for key, body in raw.items():
        if not isinstance(body, dict):
            raise CatalogError(f"{path}: {section} {key!r}: must be a mapping")
        try:
            out[key] = model.model_validate({"key": key, **body})
        except ValidationError as exc:
            raise CatalogError(f"{path}: {section} {key!r}: {_where(exc)}") from None
    return out


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def load_catalog(directory: Path | None = None, *, seeds: Path | None = None) -> Catalog:
    """Load and validate the whole catalog; raise ``CatalogError`` on the first bad entry.

    With ``seeds``, every duty's ``text`` must be found (whitespace aside) in its source document.
    """
    if directory is None:
        from pingan.core.settings import get_settings

        directory = get_settings().catalog_dir
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError(f"{directory}: catalog directory not found")

    evidence_path, policies_path = directory / "evidence.yaml", directory / "policies.yaml"
    evidence_data, _ = _read_yaml(evidence_path)
    policies_data, _ = _read_yaml(policies_path)
    kinds = _named(evidence_path, "evidence kind", _mapping(evidence_path, evidence_data, "evidence_kinds"), EvidenceKind)
    policies = _named(policies_path, "escalation policy", _mapping(policies_path, policies_data, "escalation_policies"), EscalationPolicy)
    key_dates = _named(policies_path, "key date", _mapping(policies_path, policies_data, "key_dates"), KeyDate)
    reminder_sets = _mapping(policies_path, policies_data, "reminder_sets")

    # Raw entries from every document file, then locality files merged over them.
    raw: dict[str, tuple[Path, int, int | None, dict]] = {}
    documents: dict[str, str] = {}
    # hazards.yaml is the dual-prevention data (levels, deadlines), read by pingan.hazards.rules;
    # coverage.yaml maps the documents' clauses to duties (pingan.duties.coverage).
    doc_files = sorted(p for p in directory.glob("*.yaml")
                       if p not in (evidence_path, policies_path) and p.name not in ("hazards.yaml", "coverage.yaml"))
    local_files = sorted((directory / "local").glob("*.yaml"))
    for path in doc_files + local_files:
        data, lines = _read_yaml(path)
        if not isinstance(data, dict):
            raise CatalogError(f"{path}: must be a mapping with 'duties'")
        is_local = path in local_files
        if not is_local:
            if not isinstance(data.get("document"), str) or not isinstance(data.get("title"), str):
                raise CatalogError(f"{path}: needs 'document' (the source file name) and 'title'")
            documents[data["document"]] = data["title"]
        allowed = {"overrides", "duties", "description"} if is_local else {"document", "title", "duties", "description"}
        unknown = set(data) - allowed
        if unknown:
            raise CatalogError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
        entries = data.get("duties") or []
        if not isinstance(entries, list):
            raise CatalogError(f"{path}: 'duties' must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise CatalogError(f"{path}: entry {index + 1} (line {lines.get(index, '?')}): needs a 'key'")
            if entry["key"] in raw:
                first = raw[entry["key"]][0]
                raise CatalogError(f"{path}: duty {entry['key']!r}: key already defined in {first.name}")
            if not is_local and (entry.get("source") or {}).get("document") != data["document"]:
                raise CatalogError(
                    f"{path}: duty {entry['key']!r} (line {lines.get(index, '?')}): field source.document: "
                    f"must be {data['document']!r}, the document this file transcribes"
                )
            raw[entry["key"]] = (path, index + 1, lines.get(index), entry)
        if is_local:
            for key, over in _mapping(path, data, "overrides").items():
                if key not in raw:
                    raise CatalogError(f"{path}: overrides: no duty {key!r} to override")
                if not isinstance(over, dict):
                    raise CatalogError(f"{path}: overrides: duty {key!r}: must be a mapping")
                p, i, line, entry = raw[key]
                merged = _merge(entry, over)
                # what a locality changes is by definition its own default, not the document's
                changed = [part for part in ("cadence", "window", "sensitive", "carrier") if part in over]
                if changed:
                    merged["local_defaults"] = list(dict.fromkeys([*(merged.get("local_defaults") or []), *changed]))
                raw[key] = (path, i, None, merged)

    duties: dict[str, DutySpec] = {}
    for key, (path, index, line, entry) in raw.items():
        where = f"{path}: duty {key!r} (entry {index}{f', line {line}' if line else ''})"
        entry = dict(entry)
        try:
            entry["escalation"] = _resolve(entry.get("escalation", "standard"), policies, "escalation policy")
            entry["reminders"] = _resolve(entry.get("reminders", "periodic"), reminder_sets, "reminder set")
        except KeyError as exc:
            raise CatalogError(f"{where}: {exc.args[0]}") from None
        try:
            duty = DutySpec.model_validate(entry)
        except ValidationError as exc:
            raise CatalogError(f"{where}: {_where(exc)}") from None
        for kind in duty.evidence:
            if kind not in kinds:
                raise CatalogError(f"{where}: field evidence: unknown evidence kind {kind!r}")
        for name in duty.cadence.key_dates:
            if name not in key_dates:
                raise CatalogError(f"{where}: field cadence.key_dates: unknown key date {name!r}")
        if duty.source.document not in documents:
            raise CatalogError(f"{where}: field source.document: unknown document {duty.source.document!r}")
        shown = duty.label
        same = next((other.key for other in duties.values() if other.label == shown), None)
        if same:
            raise CatalogError(f"{where}: field short: {shown!r} is already the name of duty {same!r}")
        duties[key] = duty

    if seeds is not None:
        check_wording(duties.values(), seeds)
    return Catalog(duties=duties, evidence_kinds=kinds, policies=policies, key_dates=key_dates, documents=documents)


def _resolve(value: Any, named: Mapping[str, Any], what: str) -> Any:
    if isinstance(value, str):
        if value not in named:
            raise KeyError(f"field {what.split()[0]}: unknown {what} {value!r}")
        return named[value]
    return value


_SPACE = re.compile(r"\s+")


def check_wording(duties, seeds: Path) -> None:
    """Each duty's ``text`` must stand in its source document (line breaks and spaces aside)."""
    cache: dict[str, str] = {}
    for duty in duties:
        doc = duty.source.document
        if doc not in cache:
            path = seeds / doc
            if not path.is_file():
                raise CatalogError(f"duty {duty.key!r}: field source.document: {path} not found")
            cache[doc] = _SPACE.sub("", path.read_text(encoding="utf-8"))
        if _SPACE.sub("", duty.text) not in cache[doc]:
            raise CatalogError(f"duty {duty.key!r}: field text: not found verbatim in {doc}")
