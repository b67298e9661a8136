"""``pingan run | dispatch | status | outbox | waive``: the duty cycle from the shell (``pingan replay``: pingan.cli.replay)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Optional

import sqlalchemy as sa
import typer
from rich import box
from rich.table import Table

from models import Audit, Channel, Message, Occurrence, Person, Waiver
from pingan.core.clock import now
from pingan.duties.catalog import CatalogError
from pingan.cli.app import UserError, command, console, parse_as_of, parse_day, runtime, say, send_released
from pingan.core.i18n import pick, register, t
from pingan.core.clock import TZ

register({
    "run.done": {"zh-CN": "「{duty}」已运行：新建任务 {planned}，提醒 {reminders}，督办 {escalations}，即刻发送 {sent}",
                 "en": "“{duty}” ran: tasks planned {planned}, reminders {reminders}, escalations {escalations}, sent now {sent}"},
    "run.deployment": {"zh-CN": "「{duty}」已由部署 {deployment} 运行：{run}（{url}）",
                       "en": "“{duty}” ran as a run of the deployment {deployment}: {run} ({url})"},
    "run.no_deployment": {"zh-CN": "无法运行部署 {name}（{why}）：主程序 pingan up 是否在运行？或加 --local 直接运行",
                          "en": "cannot run the deployment {name} ({why}): is the main job (pingan up) running? Or add --local"},
    "run.failed": {"zh-CN": "运行 {name} 未完成（{state}）：见 {url}", "en": "run {name} did not complete ({state}): see {url}"},
    "run.sent": {"zh-CN": "即刻发送 {sent}", "en": "sent now: {sent}"},
    "run.waiting": {"zh-CN": "另有 {n} 条通知等待汇总发送，最早 {at}（届时由统一发送发出，或运行 pingan dispatch --as-of {at}）",
                    "en": "{n} notice(s) wait for their digest slot, the first at {at} (the dispatcher sends them then; or pingan dispatch --as-of {at})"},
    "dispatch.done": {"zh-CN": "统一发送：已发送 {sent}，等待限速时段 {deferred}，重试中 {retrying}，失败 {failed}（接管中断 {recovered}，可能重复 {repeats}）",
                      "en": "dispatcher: {sent} sent, {deferred} waiting for their pacing slot, {retrying} retrying, {failed} failed ({recovered} recovered, {repeats} possible repeats)"},
    "status.col.duty": {"zh-CN": "职责编号 · 名称（依据）", "en": "duty key · name (clause)"},
    "status.title": {"zh-CN": "职责状态（截至 {as_of}）", "en": "Duty status (as of {as_of})"},
    "outbox.col.status": {"zh-CN": "状态", "en": "status"},
    "outbox.col.code": {"zh-CN": "收件人编码", "en": "to (code)"},
    "outbox.col.name": {"zh-CN": "姓名", "en": "name"},
    "outbox.col.title": {"zh-CN": "标题", "en": "title"},
    "outbox.col.message": {"zh-CN": "内容", "en": "message"},
    "outbox.col.channel": {"zh-CN": "渠道", "en": "channel"},
    "outbox.col.at": {"zh-CN": "时间", "en": "at"},
    "outbox.col.error": {"zh-CN": "错误", "en": "error"},
    "outbox.title": {"zh-CN": "发件箱（最近 {n} 条）", "en": "Outbox (latest {n})"},
    "waive.done": {"zh-CN": "任务 {task} 已豁免至 {until}", "en": "task {task} waived until {until}"},
    "waive.revoked": {"zh-CN": "任务 {task} 的豁免已撤销", "en": "waiver of task {task} revoked"},
    "err.task": {"zh-CN": "没有编号为 {task} 的任务", "en": "no task with id {task}"},
    "err.date": {"zh-CN": "{option}：{value!r} 不是日期（如 2026-11-23）", "en": "{option}: {value!r} is not a date like 2026-11-23"},
})






def _duty(rt, key: str):
    try:
        return rt.catalog.duty(key)
    except CatalogError:
        known = ", ".join(sorted(d.key for d in rt.catalog.planned)[:8])
        raise UserError(say(f"没有职责 {key!r}（如 {known} 等；职责编号见 pingan status）",
                            f"no duty {key!r} (e.g. {known}, …; see `pingan status`)")) from None


@command("run")
def run(
    duty: str = typer.Argument(..., help="职责编号 / duty key (see `pingan status`)"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="时刻 / instant, e.g. 2026-11-23 or 2026-11-23T09:00"),
    local: bool = typer.Option(False, "--local", help="不经 Prefect，直接运行 / run in-process without Prefect"),
) -> None:
    """运行一项职责（规划、提醒、督办），通知交统一发送 / run one duty now: plan, remind, escalate; notices go to the dispatcher."""
    rt = runtime()
    spec = _duty(rt, duty)
    moment = parse_as_of(as_of)
    if os.environ.get("PREFECT_API_URL") and not local:
        _run_deployment(rt, spec, moment)
        _say_waiting(rt, moment)
        return
    from pingan.duties.workflow import cycle

    done = cycle(rt, spec.key, moment)
    planned, reminders, escalations, why = done.planned, done.reminders, done.escalations, done.why
    sent = send_released(rt, moment)
    from pingan.duties.views import count_why

    console.print(t("run.done", duty=pick(spec.name, spec.name_en), planned=count_why(rt, planned, why.get("planned")),
                    reminders=count_why(rt, reminders, why.get("reminders")),
                    escalations=count_why(rt, escalations, why.get("escalations")), sent=sent))
    _say_waiting(rt, moment)


def _run_deployment(rt, spec, moment) -> None:
    """``pingan run`` with a Prefect API: a run of the duty's own deployment, so the operator
    finds it on the duty's page with its artifacts; waits for it and prints its summary."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_UI_URL
    from rich.markdown import Markdown

    from deployments.duties import duty_deployment

    name = duty_deployment(rt.catalog, spec.key)
    try:
        run = run_deployment(name, parameters={"as_of": moment.isoformat()}, timeout=None, poll_interval=2,
                             as_subflow=False, tags=["cli"])
    except Exception as exc:  # noqa: BLE001 — no such deployment (main job not started), server gone
        raise UserError(t("run.no_deployment", name=name, why=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")) from None
    url = f"{(PREFECT_UI_URL.value() or '').rstrip('/')}/runs/flow-run/{run.id}"
    if not run.state or not run.state.is_completed():
        raise UserError(t("run.failed", name=run.name, state=run.state.name if run.state else "?", url=url))
    console.print(t("run.deployment", duty=pick(spec.name, spec.name_en), deployment=name, run=run.name, url=url))
    summary = _summary_artifact(run.id, spec.key)
    if summary:
        console.print(Markdown(summary))
    sent = send_released(rt, moment)
    if sent:
        console.print(t("run.sent", sent=sent))


def _summary_artifact(run_id, duty_key: str) -> str | None:
    """The run's summary artifact (what the UI shows for it), or None."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from pingan.duties.views import artifact_key

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
            key=ArtifactFilterKey(any_=[artifact_key(duty_key, "summary")])), limit=1)
    return found[0].data if found and isinstance(found[0].data, str) else None


def _say_waiting(rt, moment) -> None:
    """What waits for a later digest slot, and when it goes."""
    import sqlalchemy as sa

    from models import Notice
    from pingan.core.db import session_scope

    N = Notice.__table__
    with session_scope() as session:
        row = session.execute(sa.select(sa.func.count(), sa.func.min(N.c.release_at)).where(
            N.c.message_id.is_(None), N.c.release_at > moment)).one()
    if row[0]:
        console.print(t("run.waiting", n=row[0], at=f"{row[1]:%Y-%m-%d %H:%M}"))


@command("dispatch")
def dispatch_(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="时刻：发送到此时已到发送时间的通知 / instant: send what is released by then"),
) -> None:
    """统一发送：把到时的通知汇总为每人一条消息并发送 / the dispatcher: one message per person for what is released, sent now."""
    from pingan.delivery.workflow import dispatch

    rt = runtime()
    moment = parse_as_of(as_of)
    report = dispatch(rt, moment)
    console.print(t("dispatch.done", sent=report.sent, deferred=report.deferred, retrying=report.retrying,
                    failed=report.failed, recovered=report.recovered, repeats=report.possible_repeats))
    _say_waiting(rt, moment)


@command("status")
def status(
    duty: Optional[str] = typer.Option(None, "--duty", help="一项职责的各单位明细 / one duty, per unit"),
    unit: Optional[str] = typer.Option(None, "--unit", help="一个单位的全部任务 / one unit's tasks (unit code)"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """各职责、各单位的任务状态 / state of every duty (and per unit)."""
    from pingan.core.db import session_scope
    from pingan.duties.views import state_label
    from pingan.duties.status import tally, task_rows

    rt = runtime()
    moment = parse_as_of(as_of)
    duties = [_duty(rt, duty)] if duty else rt.catalog.planned
    with session_scope() as session:
        per_duty = {d.key: task_rows(session, d.key, moment) for d in duties}
    if unit:
        per_duty = {k: [r for r in rows if r.unit_code == unit] for k, rows in per_duty.items()}
        if not any(per_duty.values()):
            raise UserError(say(f"单位 {unit!r} 当前没有任务（请检查单位编码）", f"unit {unit!r} has no current task (check the unit code)"))
    from pingan.cli.calendar import calendar_warning_line
    from pingan.core.calendar import calendar_warning

    warning = calendar_warning_line(rt.calendar, moment.date())
    if as_json:
        console.print_json(json.dumps({
            "as_of": moment.isoformat(), "calendar_unofficial_year": calendar_warning(rt.calendar, moment.date()),
            "duties": [{"duty": k, "states": tally(rows), "tasks": [r.as_dict() for r in rows] if (duty or unit) else None}
                       for k, rows in per_duty.items()],
        }, ensure_ascii=False))
        return
    if duty or unit:
        table = Table(title=t("status.title", as_of=f"{moment:%Y-%m-%d %H:%M}"))
        for col in ("职责 duty", "单位 unit", "责任人 person", "周期 period", "截止 due", "状态 state", "督办 level"):
            table.add_column(col)
        for key, rows in per_duty.items():
            spec = rt.catalog.duties[key]
            for r in rows:
                table.add_row(pick(spec.name, spec.name_en), r.unit, r.person or "", r.period, r.due,
                              f"{state_label(r.state)} {r.state}", str(r.level or ""))
        console.print(table)
        if warning:
            console.print(warning, style="bold yellow")
        return
    # At 80 columns the key (what `pingan run` takes) stays whole: its column has the width of the
    # longest key (a fixed width Rich never takes from); name and clause wrap beneath it, the state
    # columns give way and their headers wrap.
    states = ("open", "submitted", "accepted", "overdue", "escalated", "waived")
    table = Table(title=t("status.title", as_of=f"{moment:%Y-%m-%d %H:%M}"), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(t("status.col.duty"), width=max(len(k) for k in per_duty), overflow="fold")
    for s in states:
        table.add_column(state_label(s), justify="right", overflow="fold")
    for key, rows in per_duty.items():
        spec = rt.catalog.duties[key]
        counts = tally(rows)
        table.add_row(f"[bold]{key}[/]\n{pick(spec.name, spec.name_en)}（{spec.source.clause}）",
                      *(str(counts[s] or "") for s in states))
    console.print(table)
    if warning:
        console.print(warning, style="bold yellow")


@command("outbox")
def outbox(
    limit: int = typer.Option(20, "--limit", min=1, max=10_000),
    status_: Optional[str] = typer.Option(None, "--status", help="pending | sending | sent | failed"),
    person: Optional[str] = typer.Option(None, "--person", help="人员编码 / person code"),
    full: bool = typer.Option(False, "--full", help="显示全文 / show whole bodies"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """已发送和待发送的消息 / messages sent and waiting (channel URLs masked)."""
    from pingan.delivery import transports
    from pingan.core.db import session_scope

    if status_ and status_ not in ("pending", "sending", "sent", "failed"):
        raise UserError(say(f"--status：{status_!r} 应为 pending/sending/sent/failed", f"--status: {status_!r} must be pending/sending/sent/failed"))
    M, P, C = Message.__table__, Person.__table__, Channel.__table__
    query = (
        sa.select(M.c.id, M.c.status, M.c.title, M.c.body, M.c.created_at, M.c.sent_at, M.c.attempts, M.c.error,
                  P.c.code, P.c.name, C.c.url)
        .join(P, P.c.id == M.c.person_id).outerjoin(C, C.c.id == M.c.channel_id)
        .order_by(M.c.id.desc()).limit(limit)
    )
    if status_:
        query = query.where(M.c.status == status_)
    if person:
        query = query.where(P.c.code == person)
    with session_scope() as session:
        found = session.execute(query).all()
    items = [{
        "id": r.id, "status": r.status, "person": r.code, "name": r.name, "title": r.title,
        "body": r.body, "created_at": r.created_at.isoformat(), "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        "attempts": r.attempts, "channel": transports.mask(r.url) if r.url else None, "error": r.error,
    } for r in found]
    if as_json:
        console.print_json(json.dumps(items, ensure_ascii=False))
        return
    # Ids, codes and times are never cut (no_wrap; they fold onto a second line only if nothing else
    # can give way); names, titles and errors wrap.
    table = Table(title=t("outbox.title", n=len(items)), show_lines=full, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", no_wrap=True, overflow="fold")
    table.add_column(t("outbox.col.status"), no_wrap=True, overflow="fold")
    table.add_column(t("outbox.col.code"), no_wrap=True, overflow="fold")
    table.add_column(t("outbox.col.name"), ratio=1)
    table.add_column(t("outbox.col.message" if full else "outbox.col.title"), ratio=3)
    table.add_column(t("outbox.col.channel"), overflow="fold", ratio=1)
    table.add_column(t("outbox.col.at"), overflow="fold", min_width=10)
    table.add_column(t("outbox.col.error"), ratio=1)
    for i in items:
        table.add_row(str(i["id"]), i["status"], i["person"], i["name"], i["body"] if full else i["title"],
                      i["channel"] or "", (i["sent_at"] or i["created_at"])[:16].replace("T", " "), i["error"] or "")
    console.print(table)


@command("waive")
def waive(
    task: int = typer.Argument(..., help="任务编号 / task id (see `pingan status --duty … --json`)"),
    until: Optional[str] = typer.Option(None, "--until", help="豁免至 / until (date or datetime)"),
    reason: Optional[str] = typer.Option(None, "--reason", help="豁免理由 / why"),
    by: str = typer.Option("operator", "--by", help="批准人 / approved by"),
    revoke: bool = typer.Option(False, "--revoke", help="撤销该任务的豁免 / revoke its waivers"),
) -> None:
    """豁免一项任务：停止提醒与督办，到期后恢复 / waive a task: reminders and escalation stop until it expires."""
    from pingan.core.db import session_scope

    with session_scope() as session:
        if session.get(Occurrence, task) is None:
            raise UserError(t("err.task", task=task))
        stamp = now()
        if revoke:
            session.execute(sa.update(Waiver).where(Waiver.occurrence_id == task, Waiver.revoked_at.is_(None)).values(revoked_at=stamp))
            # The escalation engine had put the task aside until the waiver's end: look again now.
            session.execute(sa.update(Occurrence).where(Occurrence.id == task)
                            .values(next_reminder_at=Occurrence.opens_at, next_escalation_at=Occurrence.escalate_at))
            session.add(Audit(actor=f"operator:{by}", action="waiver.revoked", object_type="occurrence", object_id=str(task)))
            console.print(t("waive.revoked", task=task))
            return
        if not until or not reason or not reason.strip():
            raise UserError(say("豁免需要 --until 和 --reason", "a waiver needs --until and --reason"))
        end = parse_as_of(until) if "T" in until else dt.datetime.combine(parse_day("--until", until), dt.time(23, 59), tzinfo=TZ)
        if end <= stamp:
            raise UserError(say("--until 已过去", "--until is in the past"))
        session.add(Waiver(occurrence_id=task, granted_by=by, reason=reason.strip(), until=end))
        session.add(Audit(actor=f"operator:{by}", action="waiver.granted", object_type="occurrence", object_id=str(task),
                          detail={"until": end.isoformat(), "reason": reason.strip()}))
    console.print(t("waive.done", task=task, until=f"{end:%Y-%m-%d %H:%M}"))
