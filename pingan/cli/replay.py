"""``pingan replay``: every scheduled flow of a range of days, at the times its deployment runs it.

The jobs are the deployments themselves (``deployments.build.all_specs``): each scheduled one
becomes a :class:`pingan.core.schedule.Job` with its cron expressions and the in-process run of
its flow's workflow — ``CYCLE`` for each duty, ``DISPATCH`` for the dispatcher at its digest
slots and sweeps, the hazard watch, the holiday watch, the incident sweep (and the clock's
follow-up runs at each deadline), the weekly digest and daily summary, the quarterly and annual
reports. :func:`pingan.core.schedule.replay` fires them in schedule order, so a replayed day is
the production day: the duty runs of 08:31–08:59 queue, the dispatcher sends at 09:00, the
holiday watch at each hour starts the dispatcher at once. Every step is idempotent, so a
second replay of the same days writes nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pingan.cli.app import UserError, command, console, parse_day, runtime
from pingan.core.i18n import locale, register, t
from pingan.core.schedule import Job, Tally

register({
    "replay.title": {"zh-CN": "回放 {start} 至 {end}：按各部署的计划运行全部流程",
                     "en": "Replay {start} to {end}: every flow at its deployments' schedules"},
    "replay.col.flow": {"zh-CN": "流程", "en": "flow"},
    "replay.col.runs": {"zh-CN": "运行", "en": "runs"},
    "replay.col.skipped": {"zh-CN": "无事跳过", "en": "idle, skipped"},
    "replay.col.did": {"zh-CN": "结果", "en": "what they did"},
    "replay.did.planned": {"zh-CN": "新建任务 {n}", "en": "tasks planned {n}"},
    "replay.did.reminders": {"zh-CN": "提醒 {n}", "en": "reminders {n}"},
    "replay.did.escalations": {"zh-CN": "督办 {n}", "en": "escalations {n}"},
    "replay.did.composed": {"zh-CN": "消息 {n}", "en": "messages {n}"},
    "replay.did.sent": {"zh-CN": "已发送 {n}", "en": "sent {n}"},
    "replay.did.failed": {"zh-CN": "失败 {n}", "en": "failed {n}"},
    "replay.did.checks": {"zh-CN": "风险点检查任务 {n}", "en": "risk checks planned {n}"},
    "replay.did.periods": {"zh-CN": "值守期 {n}", "en": "watch periods {n}"},
    "replay.did.incidents": {"zh-CN": "督办事故 {n} 次", "en": "incident escalations {n}"},
    "replay.did.digests": {"zh-CN": "简报 {n}", "en": "digests {n}"},
    "replay.did.files": {"zh-CN": "写入文件 {n}", "en": "files written {n}"},
    "replay.err.flows": {"zh-CN": "--flows：没有流程 {names}（可选：{known}）", "en": "--flows: no flow {names} (one of {known})"},
    "replay.err.duty": {"zh-CN": "--duty：没有按周期运行的职责 {keys}（见 pingan status）",
                        "en": "--duty: no scheduled duty {keys} (see pingan status)"},
    "replay.err.order": {"zh-CN": "--to 早于 --from", "en": "--to is before --from"},
    "replay.none": {"zh-CN": "所选流程在这些日期没有计划运行", "en": "the chosen flows have no scheduled run on these days"},
})


@dataclass(frozen=True)
class Flow:
    """How ``pingan replay`` runs one flow of ``flows/`` in this process."""

    name: str  # the Prefect flow's name (``--flows`` takes it)
    build: Callable  # (rt, spec) -> run(as_of) -> {step: summary}
    next_work: Callable | None = None  # (rt, as_of) -> datetime | None
    starts_dispatch: bool = False  # the flow starts the dispatcher when it released something (tasks.delivery.dispatch_released)
    follow_up: bool = False  # runs are scheduled at each deadline, not by cron (the incident clock)
    did: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (text key, tally keys summed) for the table


def _cycle(rt, spec):
    from pingan.duties.workflow import CYCLE

    return lambda as_of: CYCLE.run(rt, duty=spec.parameters["duty"], as_of=as_of)


def _with(workflow_path: str) -> Callable:
    """Runs of the workflow at ``workflow_path`` with the deployment's parameters."""
    def build(rt, spec):
        module, _, name = workflow_path.rpartition(".")
        workflow = getattr(importlib.import_module(module), name)
        params = {k: v for k, v in spec.parameters.items() if k != "as_of"}
        return lambda as_of: workflow.run(rt, as_of=as_of, **params)

    return build


def _dispatch_next(rt, as_of):
    from pingan.delivery.workflow import next_work

    return next_work(rt, as_of)


def _clock_next(rt, as_of):
    from pingan.incidents.workflow import next_work

    return next_work(rt, as_of)


CLOCK_DID = (("replay.did.incidents", ("escalate.incidents",)),)
DIGEST_DID = (("replay.did.digests", ("queue-weekly-digests.queued", "queue-daily-summary.queued")),)

# Every flow a deployment runs, by its entrypoint. A scheduled deployment whose flow is missing
# here cannot be replayed: ``jobs`` refuses it (and tests/test_replay.py checks the table).
FLOWS: dict[str, Flow] = {
    "flows/duty_cycle.py:duty_cycle": Flow("duty-cycle", _cycle, did=(
        ("replay.did.planned", ("plan.created",)), ("replay.did.reminders", ("remind.queued",)),
        ("replay.did.escalations", ("escalate.fired",)))),
    "flows/dispatch.py:outbox_dispatch": Flow("outbox-dispatch", _with("pingan.delivery.workflow.DISPATCH"),
                                              next_work=_dispatch_next, did=(
        ("replay.did.composed", ("deliver.composed",)), ("replay.did.sent", ("deliver.sent",)),
        ("replay.did.failed", ("deliver.failed",)))),
    "flows/hazards.py:hazard_watch": Flow("hazard-watch", _with("pingan.hazards.workflow.WATCH"), starts_dispatch=True, did=(
        ("replay.did.checks", ("advance.checks_planned",)),
        ("replay.did.reminders", ("remind.hazard_reminders", "remind.check_reminders", "remind.upload_reminders")),
        ("replay.did.escalations", ("escalate.hazard_escalations", "escalate.check_escalations")))),
    "flows/holiday_watch.py:holiday_watch": Flow("holiday-watch", _with("pingan.watch.workflow.WATCH"), starts_dispatch=True, did=(
        ("replay.did.periods", ("plan.new_periods",)), ("replay.did.planned", ("plan.planned",)),
        ("replay.did.reminders", ("remind.queued",)), ("replay.did.escalations", ("escalate.fired",)))),
    "flows/incident_clock.py:incident_sweep": Flow("incident-sweep", _with("pingan.incidents.workflow.CLOCK"),
                                                   next_work=_clock_next, starts_dispatch=True, did=CLOCK_DID),
    # Registering an incident schedules a run of its clock at each deadline (the clock evaluates
    # every open incident, so one job stands for the runs of all of them).
    "flows/incident_clock.py:incident_clock": Flow("incident-clock", _with("pingan.incidents.workflow.CLOCK"),
                                                   next_work=_clock_next, starts_dispatch=True, follow_up=True,
                                                   did=CLOCK_DID),
    "flows/digests.py:weekly_digest": Flow("weekly-digest", _with("pingan.reports.workflow.WEEKLY"),
                                           starts_dispatch=True, did=DIGEST_DID),
    "flows/digests.py:daily_summary": Flow("daily-summary", _with("pingan.reports.workflow.DAILY"),
                                           starts_dispatch=True, did=DIGEST_DID),
    "flows/compliance_report.py:compliance_report": Flow("compliance-report", _with("pingan.reports.workflow.REPORT"),
                                                         did=(("replay.did.files", ("write.written",)),)),
}
# Started by people, not by a schedule: nothing to replay.
UNSCHEDULED = {"flows/sensitive_period.py:sensitive_period", "flows/operator_alert.py:operator_alert"}
DISPATCH_ENTRYPOINT = "flows/dispatch.py:outbox_dispatch"


def jobs(rt, *, flows: set[str] | None = None, duties: set[str] | None = None, send: bool = True) -> list[Job]:
    """The deployments as jobs to replay, in the order of ``all_specs``: ``flows`` (flow names)
    and ``duties`` (duty keys) choose; without ``send`` the dispatcher is left out (what the
    flows queue then waits in the outbox for ``pingan dispatch``)."""
    from deployments.build import all_specs

    specs = all_specs(rt.catalog, rt.settings.catalog_dir)
    dispatcher = next(s.name for s in specs if s.entrypoint == DISPATCH_ENTRYPOINT)
    # the flows start the dispatcher at once only when it is replayed too
    dispatching = send and (flows is None or FLOWS[DISPATCH_ENTRYPOINT].name in flows)
    out = []
    for spec in specs:
        flow = FLOWS.get(spec.entrypoint)
        if flow is None:
            if spec.schedules and spec.entrypoint not in UNSCHEDULED:
                raise ValueError(f"deployment {spec.name!r} runs {spec.entrypoint}, which pingan replay does not know")
            continue
        if not (spec.schedules or flow.follow_up):
            continue
        if flows is not None and flow.name not in flows:
            continue
        if duties is not None and flow.name == "duty-cycle" and spec.parameters.get("duty") not in duties:
            continue
        if not send and spec.entrypoint == DISPATCH_ENTRYPOINT:
            continue
        next_work = flow.next_work
        out.append(Job(
            name=spec.name, flow=flow.name, crons=tuple(s.cron for s in spec.schedules), run=flow.build(rt, spec),
            timezone=spec.schedules[0].timezone if spec.schedules else Job.timezone,
            next_work=(lambda as_of, f=next_work: f(rt, as_of)) if next_work else None, follow_up=flow.follow_up,
            then=(dispatcher,) if flow.starts_dispatch and dispatching else (),
        ))
    return out


def flow_names() -> list[str]:
    return list(dict.fromkeys(f.name for f in FLOWS.values()))


def by_flow(chosen: list[Job], tallies: dict[str, Tally]) -> dict[str, Tally]:
    """The tallies of the jobs summed per flow, in the order the flows first appear."""
    out: dict[str, Tally] = {}
    for job in chosen:
        total = out.setdefault(job.flow, Tally())
        one = tallies[job.name]
        total.runs += one.runs
        total.skipped += one.skipped
        total.counts.update(one.counts)
    return out


def did(flow: str, tally: Tally) -> str:
    spec = next(f for f in FLOWS.values() if f.name == flow)
    return (", " if locale() == "en" else "，").join(t(key, n=sum(tally[k] for k in keys)) for key, keys in spec.did)


@command("replay")
def replay(
    start: str = typer.Option(..., "--from", help="起始日期 / first day, e.g. 2026-10-01"),
    end: str = typer.Option(..., "--to", help="结束日期（含）/ last day (included)"),
    flows: Optional[list[str]] = typer.Option(
        None, "--flows", help="只回放这些流程 / only these flows (comma-separated; default all): "
                              + ", ".join(flow_names())),
    duty: Optional[list[str]] = typer.Option(None, "--duty", help="只回放这些职责的周期 / only these duties' cycles"),
    send: bool = typer.Option(True, "--send/--no-send", help="按计划发送消息（默认演示发件箱）/ deliver messages at the dispatcher's slots"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出每个部署的运行与计数 / print every deployment's runs and counts"),
) -> None:
    """按各部署的计划回放全部流程（幂等）/ replay every scheduled flow day by day, in schedule order (idempotent)."""
    from pingan.core.schedule import replay as walk

    rt = runtime()
    first, last = parse_day("--from", start), parse_day("--to", end)
    if last < first:
        raise UserError(t("replay.err.order"))
    chosen_flows = None
    if flows:
        chosen_flows = {name.strip() for value in flows for name in value.split(",") if name.strip()}
        unknown = sorted(chosen_flows - set(flow_names()))
        if unknown:
            raise UserError(t("replay.err.flows", names=", ".join(unknown), known=", ".join(flow_names())))
    keys = None
    if duty:
        keys = {k.strip() for k in duty}
        unknown = sorted(keys - {d.key for d in rt.catalog.planned})
        if unknown:
            raise UserError(t("replay.err.duty", keys=", ".join(unknown)))
    chosen = jobs(rt, flows=chosen_flows, duties=keys, send=send)
    days = (last - first).days + 1
    seen: set[dt.date] = set()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=as_json) as progress:
        bar = progress.add_task(str(first), total=days)

        def on_run(job: Job, as_of: dt.datetime, steps: dict) -> None:
            if as_of.date() not in seen:
                seen.add(as_of.date())
                progress.update(bar, completed=(as_of.date() - first).days, description=f"{as_of:%Y-%m-%d}")

        tallies = walk(chosen, first, last, on_run=on_run)
    flows_done = by_flow(chosen, tallies)
    if as_json:
        console.print_json(json.dumps({
            "from": first.isoformat(), "to": last.isoformat(),
            "flows": {name: {"runs": x.runs, "skipped": x.skipped, **dict(sorted(x.counts.items()))}
                      for name, x in flows_done.items()},
            "deployments": {job.name: {"flow": job.flow, "runs": tallies[job.name].runs,
                                       "skipped": tallies[job.name].skipped, **dict(sorted(tallies[job.name].counts.items()))}
                            for job in chosen},
        }, ensure_ascii=False))
        return
    if not any(x.runs or x.skipped for x in flows_done.values()):
        console.print(t("replay.none"))
        return
    table = Table(title=t("replay.title", start=first, end=last))
    table.add_column(t("replay.col.flow"), no_wrap=True)
    table.add_column(t("replay.col.runs"), justify="right")
    table.add_column(t("replay.col.skipped"), justify="right")
    table.add_column(t("replay.col.did"), overflow="fold")
    for name, x in flows_done.items():
        table.add_row(name, str(x.runs), str(x.skipped), did(name, x))
    console.print(table)


def totals(tallies: dict[str, Tally]) -> Counter:
    """Every count of every job, summed (for tests and the bench)."""
    out: Counter = Counter()
    for tally in tallies.values():
        out.update(tally.counts)
    return out
