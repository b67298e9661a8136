"""The incident clock's rules: the data file (``catalog/flows/incident.yaml``) and the pure decisions.

Which deadlines apply to a unit (its nearest jurisdiction, else the default), what a report's
occurrence is called, when the clock must run again (every escalation time of the deadlines),
which category or severity an operator means, and a report's state at an instant. Nothing here
reads the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from pingan.core.cadence import Duration, Spec
from pingan.core.i18n import register as register_texts
from pingan.core.i18n import t
from pingan.duties.catalog import CatalogError, DutySpec, EscalationPolicy, read_data_file
from pingan.duties.rules import escalation_schedule
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import Org

REPORTS = ("phone", "written")
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
    # a report's state (``report_state``); artifacts show it as f"{t('inc.state.' + s)} {s}"
    "inc.state.pending": {"zh-CN": "未到时限", "en": "not yet due"},
    "inc.state.on_time": {"zh-CN": "按时", "en": "on time"},
    "inc.state.late": {"zh-CN": "迟报", "en": "late"},
    "inc.state.missing": {"zh-CN": "未报（已超时）", "en": "missing (overdue)"},
})


class IncidentError(ValueError):
    """A bad incident registration or report; the message names the field."""


# --------------------------------------------------------------------------- rules (data)

class Named(Spec):
    name: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=64)


class Jurisdiction(Spec):
    duty: str | None = None
    phone: Duration | None = None
    written: Duration | None = None


class IncidentRules(Spec):
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


def report_state(due: dt.datetime, at: dt.datetime | None, as_of: dt.datetime) -> str:
    """One report's state at ``as_of``: pending, on_time, late or missing."""
    if at is not None and at <= as_of:
        return "on_time" if at <= due else "late"
    return "pending" if as_of < due else "missing"

