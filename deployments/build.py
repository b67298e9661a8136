"""Deployments derived from the catalog: one per planned duty, plus the service flows.

``specs()`` is plain data — name, entrypoint, parameters, schedules, tags, description — so
the served deployments (``deployments/serve.py``) and ``prefect.yaml`` (for a work pool and
``prefect deploy --all``) come from the same place, and a test fails when they drift apart.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pingan.core.clock import TZ_NAME
from pingan.duties.catalog import Catalog, DutySpec

DUTY_ENTRYPOINT = "flows/duty_cycle.py:duty_cycle"
ALERT_DEPLOYMENT = "运行失败告警"


@dataclass(frozen=True)
class Schedule:
    cron: str
    slug: str
    timezone: str = TZ_NAME


@dataclass(frozen=True)
class Spec:
    name: str
    entrypoint: str
    description: str
    parameters: dict = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    tags: tuple[str, ...] = ()

    def load_flow(self):
        """The flow object behind ``entrypoint`` (``flows/x.py:name`` → ``flows.x.name``)."""
        path, _, attr = self.entrypoint.partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        return getattr(module, attr)

    @property
    def flow_name(self) -> str:
        return self.load_flow().name


def duty_schedules(index: int) -> tuple[Schedule, ...]:
    """Every duty runs each morning and each afternoon, staggered by a minute or two per duty.

    Planning happens on every run (weekends too); reminders and escalations wait for working
    time, so the morning run sends what came due overnight and the afternoon run sends the
    same-day reminders of daily duties. Staggering keeps the runs from starting all at once.
    """
    minute = 31 + (index * 7) % 29
    return (Schedule(f"{minute} 8 * * *", "morning"), Schedule(f"{minute} 14 * * *", "afternoon"))


def describe(catalog: Catalog, duty: DutySpec) -> str:
    title = catalog.documents.get(duty.source.document, duty.source.document)
    return (
        f"{duty.name}（{duty.name_en}）\n"
        f"依据 / source：《{title}》{duty.source.clause}（{duty.source.document}）\n"
        f"原文：{duty.text}"
    )


def deployment_name(duty: DutySpec) -> str:
    # Prefect refuses / % & > < in names; the catalog's Chinese names never need them.
    return "".join("／" if ch == "/" else ch for ch in duty.name if ch not in "%&<>")


def specs(catalog: Catalog) -> list[Spec]:
    duties = sorted(catalog.planned, key=lambda d: d.key)
    out = [
        Spec(
            name=deployment_name(duty),
            entrypoint=DUTY_ENTRYPOINT,
            description=describe(catalog, duty),
            parameters={"duty": duty.key},
            schedules=duty_schedules(i),
            tags=("pingan", f"duty:{duty.key}", f"cadence:{duty.cadence.every}", *duty.tags),
        )
        for i, duty in enumerate(duties)
    ]
    out += [
        Spec(
            name="发送待发消息",
            entrypoint="flows/dispatch.py:outbox_dispatch",
            description="发件箱清扫：发送到期重试的消息与异常中断遗留的消息 / outbox sweeper: retries and messages a crash left sending",
            schedules=(Schedule("*/15 8-18 * * *", "working-hours"),),
            tags=("pingan", "outbox"),
        ),
        Spec(
            name="重点敏感时期",
            entrypoint="flows/sensitive_period.py:sensitive_period",
            description="重点敏感时期：在指定日期和范围内加密选定职责的频次（在“自定义运行”中填写参数）/ "
                        "key sensitive period: tighten chosen duties for a date range and scope (use Custom Run)",
            tags=("pingan", "sensitive-period"),
        ),
        Spec(
            name=ALERT_DEPLOYMENT,
            entrypoint="flows/operator_alert.py:operator_alert",
            description="职责流程运行失败或崩溃时通知安全科（由自动化触发）/ tells the safety section when a duty run fails or crashes",
            # Not tagged ``pingan``: the failure automation watches that tag, and must not
            # answer a failed alert with another alert.
            tags=("pingan-alert",),
        ),
    ]
    return out


def all_specs(catalog: Catalog) -> list[Spec]:
    """Every deployment pingan serves and ``prefect.yaml`` lists: the duties, then the flows
    of hazards, incidents and holidays, and reports, each declared beside its feature."""
    from deployments import hazards, incidents, reports

    return [*specs(catalog), *hazards.specs(), *incidents.specs(), *reports.specs()]
