"""``pingan incident report | phone | written | list | show | sweep``: the incident clock from the shell."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Optional

import typer
from rich.table import Table

from pingan.cli.app import UserError, app, console, runtime, send_released, user_errors
from pingan.core.clock import local, now
from pingan.core.i18n import register, t
from pingan.core.periods import parse_instant

incident_app = typer.Typer(help="事故报告时限（30 分钟电话、2 小时书面）/ the incident-report clock", no_args_is_help=True)
app.add_typer(incident_app, name="incident")

register({
    "inc.cli.registered": {"zh-CN": "事故 #{id} 已登记：{unit} {category}（{severity}），发生于 {occurred}",
                           "en": "incident #{id} registered: {unit}, {category} ({severity}), occurred {occurred}"},
    "inc.cli.exists": {"zh-CN": "事故 #{id} 已登记过（未重复创建）", "en": "incident #{id} was registered before (not created again)"},
    "inc.cli.deadlines": {"zh-CN": "电话报告截止 {phone}，书面报告截止 {written}",
                          "en": "phone report due {phone}, written report due {written}"},
    "inc.cli.escalated": {"zh-CN": "已超时的报告已即刻督办（发送 {sent} 条）", "en": "overdue reports escalated at once ({sent} sent)"},
    "inc.cli.scheduled": {"zh-CN": "已安排 {n} 次后续检查（{times}）", "en": "{n} follow-up run(s) scheduled ({times})"},
    "inc.cli.unscheduled": {"zh-CN": "未配置 Prefect：后续检查由“事故报告巡检”或 pingan incident sweep 完成",
                            "en": "no Prefect API: the incident sweep (or pingan incident sweep) evaluates the clock"},
    "inc.cli.recorded": {"zh-CN": "事故 #{id} 的{report}已记录：{at}（{state}）", "en": "incident #{id}: {report} recorded at {at} ({state})"},
    "inc.cli.already": {"zh-CN": "事故 #{id} 的{report}此前已记录为 {at}（未更改）",
                        "en": "incident #{id}: {report} was already recorded at {at} (unchanged)"},
    "inc.cli.swept": {"zh-CN": "已检查全部未结事故：督办 {escalated}，发送 {sent}", "en": "open incidents evaluated: escalated {escalated}, sent {sent}"},
    "inc.cli.time": {"zh-CN": "{option}：{error}", "en": "{option}: {error}"},
    "inc.cli.need_time": {"zh-CN": "{option}：请给出日期和时刻，如 2026-10-03T10:00",
                          "en": "{option}: give a date and a time, e.g. 2026-10-03T10:00"},
})


def _instant(option: str, value: Optional[str], *, need_time: bool = False) -> dt.datetime:
    if not value:
        return now()
    if need_time and len(value.strip()) <= 10:
        raise UserError(t("inc.cli.need_time", option=option))
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UserError(t("inc.cli.time", option=option, error=exc)) from None


def _hm(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def prefect_configured() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))


def follow_up_scheduler():
    """``tasks.incident.schedule_follow_ups`` when a Prefect API is configured, else None (the sweep
    evaluates the clock instead). Imported only then: it brings Prefect in."""
    if not prefect_configured():
        return None
    from tasks.incident import schedule_follow_ups

    return schedule_follow_ups


def run_clock(rt, incident_id: int, as_of: dt.datetime, *, schedule: bool = True) -> tuple[list[int], int, list[dt.datetime]]:
    """After registering an incident: run the clock at once (what is already late is escalated),
    send, and schedule the follow-up runs; (incidents escalated, messages sent, runs scheduled)."""
    from pingan.incidents.workflow import CLOCK, follow_up

    escalated = CLOCK.run(rt, as_of=as_of)["escalate"]["incidents"]
    sent = send_released(rt, as_of)
    scheduler = follow_up_scheduler() if schedule else None
    return escalated, sent, follow_up(rt, incident_id, as_of, scheduler) if scheduler else []


@incident_app.command("report")
@user_errors
def report(
    unit: str = typer.Option(..., "--unit", help="单位编码 / unit code"),
    at: str = typer.Option(..., "--at", help="发生时间 / time of occurrence, e.g. 2026-10-03T10:00"),
    category: str = typer.Option(..., "--category", help="类别，如 溺水 或 drowning / category"),
    severity: str = typer.Option(..., "--severity", help="等级：一般 较大 重大 特别重大 / severity"),
    summary: Optional[str] = typer.Option(None, "--summary", help="简要情况 / short account"),
    phoned_at: Optional[str] = typer.Option(
        None, "--phoned-at", help="电话报告已于此时送达（事后登记时填写）/ the phone report came in at (registering after the fact)"),
    written_at: Optional[str] = typer.Option(
        None, "--written-at", help="书面报告已于此时送达（事后登记时填写）/ the written report came in at (registering after the fact)"),
    by: str = typer.Option("operator", "--by", help="登记人 / registered by"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="登记时刻（回放用）/ registration instant (replays)"),
    schedule: bool = typer.Option(True, "--schedule/--no-schedule", help="安排 Prefect 后续运行 / schedule follow-up runs"),
) -> None:
    """登记一起事故并开始计时；事后登记时用 --phoned-at、--written-at 记下已送达的报告，按时的报告不会被督办 /
    register an incident and start its clock; registering after the fact, give the reports that came in
    (--phoned-at, --written-at): a report that came in on time is never escalated."""
    from pingan.duties.service import ensure_catalog
    from pingan.incidents import service as incidents
    from pingan.incidents import views
    from pingan.incidents.rules import IncidentError
    from pingan.org.snapshot import load_org

    rt = runtime()
    moment = local(_instant("--as-of", as_of))
    req = incidents.IncidentRequest(
        unit=unit, occurred_at=_instant("--at", at, need_time=True), category=category, severity=severity,
        summary=summary, phoned_at=_instant("--phoned-at", phoned_at, need_time=True) if phoned_at else None,
        written_at=_instant("--written-at", written_at, need_time=True) if written_at else None,
    )
    ensure_catalog(rt)
    try:
        with _session() as session:
            reg = incidents.register(session, rt, load_org(session), req, moment, actor=f"operator:{by}")
    except IncidentError as exc:
        raise UserError(str(exc)) from None
    escalated, sent, scheduled = run_clock(rt, reg.id, moment, schedule=schedule and reg.created)
    with _session() as session:
        view = views.load_views(session, rt, [reg.id])[0]
    if reg.created:
        console.print(t("inc.cli.registered", id=reg.id, unit=view.unit, category=view.category_name,
                        severity=view.severity_name, occurred=_hm(view.occurred_at)))
    else:
        console.print(t("inc.cli.exists", id=reg.id))
    console.print(t("inc.cli.deadlines", phone=_hm(reg.phone_due_at), written=_hm(reg.written_due_at)))
    if escalated:
        console.print(t("inc.cli.escalated", sent=sent))
    if scheduled:
        console.print(t("inc.cli.scheduled", n=len(scheduled), times="、".join(f"{w:%H:%M}" for w in scheduled)))
    elif reg.created and schedule and not prefect_configured():
        console.print(f"[dim]{t('inc.cli.unscheduled')}[/]")


def _session():
    from pingan.core.db import session_scope

    return session_scope()


def _record(kind: str, incident: int, at: Optional[str], by: str, as_of: Optional[str]) -> None:
    from pingan.incidents import service as incidents
    from pingan.incidents import views
    from pingan.incidents.rules import IncidentError

    rt = runtime()
    moment = _instant("--as-of", as_of)
    when = _instant("--at", at, need_time=True) if at else moment
    try:
        with _session() as session:
            recorded, on_record = incidents.record_report(session, incident, kind, when, local(moment), actor=f"operator:{by}")
    except IncidentError as exc:
        raise UserError(str(exc)) from None
    label = t(f"inc.report.{kind}")
    if not recorded:
        console.print(t("inc.cli.already", id=incident, report=label, at=_hm(on_record)))
        return
    with _session() as session:
        view = views.load_views(session, rt, [incident])[0]
    state = getattr(view, kind).state(moment)
    console.print(t("inc.cli.recorded", id=incident, report=label, at=_hm(on_record), state=views.state_label(state)))


@incident_app.command("phone")
@user_errors
def phone(
    incident: int = typer.Argument(..., help="事故编号 / incident id"),
    at: Optional[str] = typer.Option(None, "--at", help="电话报告时间（默认现在）/ when the call came in (default now)"),
    by: str = typer.Option("operator", "--by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """记录电话口头报告 / record the phone report."""
    _record("phone", incident, at, by, as_of)


@incident_app.command("written")
@user_errors
def written(
    incident: int = typer.Argument(..., help="事故编号 / incident id"),
    at: Optional[str] = typer.Option(None, "--at", help="书面报告时间（默认现在）/ when it came in (default now)"),
    by: str = typer.Option("operator", "--by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """记录简要书面报告 / record the written report."""
    _record("written", incident, at, by, as_of)


@incident_app.command("list")
@user_errors
def list_(
    all_: bool = typer.Option(False, "--all", help="包括已结事故 / closed ones too"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """未结事故（或全部）及其报告状态 / open incidents (or all) and the state of their reports."""
    from pingan.incidents import service as incidents
    from pingan.incidents.views import load_views, open_table

    rt = runtime()
    moment = _instant("--as-of", as_of)
    with _session() as session:
        ids = None if all_ else incidents.open_incident_ids(session)
        views = load_views(session, rt, ids) if ids is None or ids else []
    if as_json:
        console.print_json(json.dumps([{
            "id": v.id, "unit": v.unit_code, "occurred_at": v.occurred_at.isoformat(), "category": v.category,
            "severity": v.severity, "phone": v.phone.state(moment), "written": v.written.state(moment),
            "level": v.level(), "open": v.is_open(),
        } for v in views], ensure_ascii=False))
        return
    table = Table(title="事故 / incidents" + ("" if all_ else "（未结 / open）"))
    for col in ("#", "单位 unit", "发生 occurred", "类别 category", "等级 severity", "电话 phone", "书面 written", "督办 level"):
        table.add_column(col)
    for row in open_table(views, moment) if views else []:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


@incident_app.command("show")
@user_errors
def show(
    incident: int = typer.Argument(..., help="事故编号 / incident id"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """一起事故的报告时间线 / the timeline of one incident."""
    from pingan.incidents.views import load_views, timeline

    rt = runtime()
    moment = _instant("--as-of", as_of)
    with _session() as session:
        views = load_views(session, rt, [incident])
    if not views:
        raise UserError(t("inc.err.none", id=incident))
    view = views[0]
    events = timeline(view, moment)
    if as_json:
        console.print_json(json.dumps({
            "id": view.id, "unit": view.unit_code, "phone": view.phone.state(moment), "written": view.written.state(moment),
            "events": [{"at": e.at.isoformat(), "event": e.event, "detail": e.detail} for e in events],
        }, ensure_ascii=False))
        return
    table = Table(title=f"事故 #{view.id} {view.unit} · {view.category_name}（{view.severity_name}）")
    for col in ("时间 time", "事件 event", "说明 detail"):
        table.add_column(col)
    for e in events:
        table.add_row(*e.row().values())
    console.print(table)


@incident_app.command("sweep")
@user_errors
def sweep(as_of: Optional[str] = typer.Option(None, "--as-of")) -> None:
    """检查全部未结事故并督办、发送（不经 Prefect）/ evaluate every open incident now, in-process."""
    from pingan.incidents.workflow import CLOCK

    rt = runtime()
    moment = _instant("--as-of", as_of)
    escalated = CLOCK.run(rt, as_of=moment)["escalate"]["incidents"]
    sent = send_released(rt, moment)
    console.print(t("inc.cli.swept", escalated="、".join(f"#{i}" for i in escalated) or "0", sent=sent))
