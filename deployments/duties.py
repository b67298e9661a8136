"""Deployments of the duty cycle (one per planned duty of the catalog) and the service flows
beside it: the outbox, key sensitive periods, and the operator alert with its trigger."""

from __future__ import annotations

from deployments.specs import Schedule, Spec, Trigger
from models.org import SCHOOL_KINDS, UnitKind
from tasks.names import DISPATCH_DEPLOYMENT_NAME
from pingan.duties.catalog import Catalog, DutySpec

DUTY_ENTRYPOINT = "flows/duty_cycle.py:duty_cycle"
DUTY_FLOW = "duty-cycle"  # the flow's name (flows/duty_cycle.py)
ALERT_DEPLOYMENT = "运行失败告警"
AUTOMATION_NAME = "pingan：职责流程失败告警 / duty run failed"
# Flows whose failure the operator must hear about: every flow tagged ``pingan`` (the alert is not).
WATCHED_STATES = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut")
ALERT_TRIGGER = Trigger(
    name=AUTOMATION_NAME,
    description="职责流程运行失败、崩溃或超时时，运行“运行失败告警”通知安全科 / "
                "runs the operator alert when a duty flow run fails, crashes or times out",
    expect=WATCHED_STATES,
    match={"prefect.resource.id": "prefect.flow-run.*"},
    match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.pingan"},
    parameters={
        "flow_run_id": "{{ event.resource.id }}",
        "flow_run_name": "{{ event.resource.name }}",
        "state": "{{ event.event.split('.')[-1] }}",
    },
)


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
    """The duty's short name (the UI's list cuts long names); Prefect refuses / % & > < in names."""
    return "".join("／" if ch == "/" else ch for ch in duty.label if ch not in "%&<>")


# Tags the operator filters the deployments on in the UI: who carries the duty, and its domain.
BUREAU_TAG, SCHOOL_TAG, HAZARD_TAG, INCIDENT_TAG, WATCH_TAG, REPORT_TAG = "局", "校", "隐患", "事故", "值守", "报告"


def operator_tags(duty: DutySpec) -> tuple[str, ...]:
    """局 when the bureau or its sections carry the duty, 校 when schools or kindergartens do, 隐患 for hazard checks."""
    kinds = set(duty.carrier.unit_kinds)
    tags = []
    if kinds & {UnitKind.bureau, UnitKind.department}:
        tags.append(BUREAU_TAG)
    if kinds & SCHOOL_KINDS:
        tags.append(SCHOOL_TAG)
    if "hazard" in duty.tags:
        tags.append(HAZARD_TAG)
    return tuple(tags)


def duty_deployment(catalog: Catalog, key: str) -> str:
    """``<flow>/<deployment>`` of a duty's deployment, for ``run_deployment`` (``pingan run``)."""
    return f"{DUTY_FLOW}/{deployment_name(catalog.duty(key))}"


def specs(catalog: Catalog) -> list[Spec]:
    duties = sorted(catalog.planned, key=lambda d: d.key)
    out = [
        Spec(
            name=deployment_name(duty),
            entrypoint=DUTY_ENTRYPOINT,
            description=describe(catalog, duty),
            parameters={"duty": duty.key},
            schedules=duty_schedules(i),
            tags=("pingan", *operator_tags(duty), f"duty:{duty.key}", f"cadence:{duty.cadence.every}", *duty.tags),
        )
        for i, duty in enumerate(duties)
    ]
    out += [
        Spec(
            name=DISPATCH_DEPLOYMENT_NAME,
            entrypoint="flows/dispatch.py:outbox_dispatch",
            description="统一发送：把到时的通知汇总成每人一条消息并发送（上午 9:00 汇总全部例行提醒与督办，下午 15:00 "
                        "只补当天到期的事项；紧急通知即刻发送；每 5 分钟补发重试与中断遗留的消息）/ the one dispatcher: one "
                        "message per person at the 09:00 digest, same-day items at 15:00, urgent notices at once, a "
                        "sweep every 5 minutes for retries and sends a crash left behind",
            schedules=(Schedule("0 9 * * *", "morning-digest"), Schedule("0 15 * * *", "afternoon-digest"),
                       Schedule("*/5 * * * *", "sweep")),
            tags=("pingan", "outbox"),
            concurrency_limit=1,
        ),
        Spec(
            name="重点敏感时期",
            entrypoint="flows/sensitive_period.py:sensitive_period",
            description="重点敏感时期：在指定日期和范围内加密选定职责的频次（在“自定义运行”中填写参数）/ "
                        "key sensitive period: tighten chosen duties for a date range and scope (use Custom Run)",
            tags=("pingan", BUREAU_TAG, SCHOOL_TAG, "sensitive-period"),
        ),
        Spec(
            name=ALERT_DEPLOYMENT,
            entrypoint="flows/operator_alert.py:operator_alert",
            description="职责流程运行失败或崩溃时通知安全科（由自动化触发）/ tells the safety section when a duty run fails or crashes",
            # Not tagged ``pingan``: the failure automation watches that tag, and must not
            # answer a failed alert with another alert.
            tags=("pingan-alert",),
            triggers=(ALERT_TRIGGER,),
        ),
    ]
    return out
