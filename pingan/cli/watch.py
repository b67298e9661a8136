"""``pingan watch add | list | cancel | roster | report | status | run``: the holiday watch from the shell."""

from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer
from rich.table import Table

from pingan.cli.app import UserError, app, console, parse_day, runtime, send_released, user_errors
from pingan.core.clock import local, now
from pingan.core.i18n import register, t
from pingan.core.periods import parse_instant

watch_app = typer.Typer(help="节假日值班与零报告 / the holiday watch: duty rosters and daily zero reports", no_args_is_help=True)
app.add_typer(watch_app, name="watch")

register({
    "watch.cli.added": {"zh-CN": "值守时段 #{id} {name}（{first} 至 {last}）已添加", "en": "watch period #{id} {name} ({first} to {last}) added"},
    "watch.cli.exists": {"zh-CN": "值守时段 #{id} 已存在（未重复创建）", "en": "watch period #{id} exists already (not created again)"},
    "watch.cli.cancelled": {"zh-CN": "值守时段 #{id} 已取消，{n} 项未完成任务已豁免", "en": "watch period #{id} cancelled, {n} open task(s) waived"},
    "watch.cli.no_cancel": {"zh-CN": "没有未取消的值守时段 #{id}", "en": "no uncancelled watch period #{id}"},
    "watch.cli.roster": {"zh-CN": "{unit} 的值班表已报送：{period}（{first} 至 {last}）{late}",
                         "en": "{unit}: roster filed for {period} ({first} to {last}){late}"},
    "watch.cli.roster_again": {"zh-CN": "{unit} 的值班表已更新：{period}", "en": "{unit}: roster for {period} replaced"},
    "watch.cli.report": {"zh-CN": "{unit} {day} 已报告：{what}{late}", "en": "{unit}, {day}: reported {what}{late}"},
    "watch.cli.report_again": {"zh-CN": "{unit} {day} 此前已报告（未更改）：{what}", "en": "{unit}, {day}: reported before (unchanged): {what}"},
    "watch.cli.late": {"zh-CN": "（迟报）", "en": " (late)"},
    "watch.cli.ok": {"zh-CN": "平安无事", "en": "nothing to report (平安无事)"},
    "watch.cli.incident": {"zh-CN": "事故 #{id}", "en": "incident #{id}"},
    "watch.cli.ran": {"zh-CN": "值守已运行：新时段 {periods}，新任务 {planned}，事故代报 {linked}，提醒 {reminders}，督办 {escalations}，发送 {sent}",
                      "en": "watch ran: {periods} new period(s), {planned} task(s), {linked} day(s) reported by an incident, "
                            "{reminders} reminder(s), {escalations} escalation(s), {sent} sent"},
    "watch.cli.outside": {"zh-CN": "不在发送时段内：提醒与督办留待下次运行", "en": "outside the sending hours: reminders and escalations wait"},
    "watch.cli.not_watched": {"zh-CN": "{day} 不是值守日", "en": "{day} is not a day of watch"},
    "watch.cli.time": {"zh-CN": "{option}：{error}", "en": "{option}: {error}"},
    "watch.cli.incident_args": {"zh-CN": "报告新事故需同时给出 --incident-at、--category 和 --severity",
                                "en": "a new incident needs --incident-at, --category and --severity together"},
    "watch.cli.need_time": {"zh-CN": "--incident-at：请给出日期和时刻，如 2026-10-03T10:00",
                            "en": "--incident-at: give a date and a time, e.g. 2026-10-03T10:00"},
    "watch.cli.both": {"zh-CN": "--incident 与 --incident-at 只能二选一", "en": "give --incident or --incident-at, not both"},
})


def _instant(option: str, value: Optional[str]) -> dt.datetime:
    if not value:
        return now()
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UserError(t("watch.cli.time", option=option, error=exc)) from None


def _do(rt, work):
    """Run ``work(session, org)`` in one transaction (the catalog synced first); watch and incident
    errors become user errors."""
    from pingan.core.db import get_engine, session_scope
    from pingan.duties.service import ensure_catalog
    from pingan.incidents.rules import IncidentError
    from pingan.org.snapshot import load_org
    from pingan.watch.rules import WatchError

    try:
        ensure_catalog(rt)
        with session_scope(get_engine(rt.settings.db_url)) as session:
            return work(session, load_org(session))
    except (WatchError, IncidentError) as exc:
        raise UserError(str(exc)) from None


@watch_app.command("add")
@user_errors
def add(
    name: str = typer.Option(..., "--name", help="名称，如 “高考期间” / name"),
    first: str = typer.Option(..., "--from", help="第一天 / first day"),
    last: str = typer.Option(..., "--to", help="最后一天（含）/ last day (inclusive)"),
    by: str = typer.Option("operator", "--by", help="决定人 / decided by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """添加一个值守时段（重要时段）/ add a watch period (an important period besides the holidays)."""
    from pingan.watch import service as watch

    rt = runtime()
    moment = _instant("--as-of", as_of)
    start, end = parse_day("--from", first), parse_day("--to", last)
    period_id, created = _do(rt, lambda s, org: watch.add_period(s, name, start, end, moment, actor=f"operator:{by}"))
    if created:
        console.print(t("watch.cli.added", id=period_id, name=name.strip(), first=start, last=end))
    else:
        console.print(t("watch.cli.exists", id=period_id))


@watch_app.command("list")
@user_errors
def list_(
    all_: bool = typer.Option(False, "--all", help="包括已结束和已取消的 / past and cancelled too"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """值守时段：日历中的节假日和添加的时段 / watch periods: the calendar's holidays and those added."""
    from pingan.watch import rules as watch_rules
    from pingan.watch import service as watch

    rt = runtime()
    moment = _instant("--as-of", as_of)

    def work(session, org):
        rules = watch_rules.load_rules(rt)
        watch.sync_calendar(session, rt, moment, watch_rules.HORIZON, rules=rules)
        found = watch.periods(session, since=None if all_ else moment.date(), include_cancelled=all_)
        roster = rt.catalog.duty(rules.roster.duty)
        return [(p, watch_rules.roster_deadline(p, roster, rules.roster, rt.calendar)) for p in found]

    found = _do(rt, work)
    items = [{
        "id": p.id, "key": p.key, "name": p.name, "from": p.starts_on.isoformat(), "to": p.ends_on.isoformat(),
        "source": p.source, "roster_due": d.due_at.isoformat(), "cancelled": p.cancelled_at is not None,
    } for p, d in found]
    if as_json:
        console.print_json(json.dumps(items, ensure_ascii=False))
        return
    table = Table(title="值守时段 / watch periods")
    for col in ("#", "名称 name", "起止 dates", "来源 source", "值班表截止 roster due", "状态 state"):
        table.add_column(col)
    for i in items:
        table.add_row(str(i["id"]), i["name"], f"{i['from']} – {i['to']}",
                      {"calendar": "节假日 calendar", "provisional": "节假日（临时）provisional", "term": "寒暑假 break",
                       "operator": "添加 operator"}.get(i["source"], i["source"]),
                      i["roster_due"][:16].replace("T", " "), "已取消 cancelled" if i["cancelled"] else "")
    console.print(table)


@watch_app.command("cancel")
@user_errors
def cancel(
    period: int = typer.Argument(..., help="值守时段编号 / period id"),
    by: str = typer.Option("operator", "--by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """取消一个值守时段：不再安排任务，未完成的任务豁免 / cancel a period: its open tasks are waived."""
    from pingan.watch import service as watch

    rt = runtime()
    moment = _instant("--as-of", as_of)
    waived = _do(rt, lambda s, org: watch.cancel_period(s, rt, period, moment, actor=f"operator:{by}"))
    if waived is None:
        raise UserError(t("watch.cli.no_cancel", id=period))
    console.print(t("watch.cli.cancelled", id=period, n=waived))


@watch_app.command("roster")
@user_errors
def roster(
    unit: str = typer.Option(..., "--unit", help="单位编码 / unit code"),
    leader: list[str] = typer.Option(..., "--leader", help="带班领导 [日期=]姓名:电话，可重复 / leader on duty, repeatable"),
    staff: list[str] = typer.Option(..., "--staff", help="值班值宿 [日期=]姓名:电话，可重复 / staff on duty, repeatable"),
    period: Optional[str] = typer.Option(None, "--period", help="值守时段编号或键（默认当前或下一个）/ period id or key"),
    by: str = typer.Option("operator", "--by", help="报送人 / filed by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """报送值班表（带班领导、值班值宿人员及电话）/ file a unit's duty roster for a period."""
    from pingan.watch import service as watch
    from pingan.watch.rules import parse_entry

    rt = runtime()
    moment = _instant("--as-of", as_of)

    def work(session, org):
        entries = [parse_entry(v, "leader", "--leader", n) for n, v in enumerate(leader, 1)]
        entries += [parse_entry(v, "staff", "--staff", n) for n, v in enumerate(staff, 1)]
        return watch.file_roster(session, rt, org, unit=unit, entries=entries, as_of=moment, actor=f"operator:{by}",
                                 period=period)

    filed = _do(rt, work)
    p = filed.period
    if filed.created:
        console.print(t("watch.cli.roster", unit=unit, period=p.name, first=p.starts_on, last=p.ends_on,
                        late=t("watch.cli.late") if filed.late else ""))
    else:
        console.print(t("watch.cli.roster_again", unit=unit, period=p.name))


@watch_app.command("report")
@user_errors
def report(
    unit: str = typer.Option(..., "--unit", help="单位编码 / unit code"),
    day: Optional[str] = typer.Option(None, "--day", help="报告日期（默认今天）/ day (default today)"),
    note: Optional[str] = typer.Option(None, "--note", help="说明 / note"),
    incident: Optional[int] = typer.Option(None, "--incident", help="已登记的事故编号 / a registered incident"),
    incident_at: Optional[str] = typer.Option(None, "--incident-at", help="新事故的发生时间 / a new incident: when"),
    category: Optional[str] = typer.Option(None, "--category", help="新事故的类别 / its category"),
    severity: Optional[str] = typer.Option(None, "--severity", help="新事故的等级 / its severity"),
    by: str = typer.Option("operator", "--by", help="报告人 / reported by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """报告一天的情况：平安无事（零报告），或事故（同时开始事故报告计时）/ report a day: nothing, or an incident."""
    from pingan.cli.incident import run_clock
    from pingan.incidents import service as incidents
    from pingan.watch import service as watch

    rt = runtime()
    moment = _instant("--as-of", as_of)
    the_day = parse_day("--day", day) if day else moment.date()
    request = None
    if incident_at or category or severity:
        if incident is not None:
            raise UserError(t("watch.cli.both"))
        if not (incident_at and category and severity):
            raise UserError(t("watch.cli.incident_args"))
        if len(incident_at.strip()) <= 10:
            raise UserError(t("watch.cli.need_time"))
        request = incidents.IncidentRequest(unit=unit, occurred_at=_instant("--incident-at", incident_at),
                                            category=category, severity=severity, summary=note)
    filed = _do(rt, lambda s, org: watch.file_report(s, rt, org, unit=unit, day=the_day, as_of=moment,
                                                     actor=f"operator:{by}", note=note, incident_id=incident,
                                                     incident=request))
    if request is not None and filed.incident_id is not None:
        run_clock(rt, filed.incident_id, moment)  # escalate at once what is late; schedule the rest
    what = t("watch.cli.incident", id=filed.incident_id) if filed.status == "incident" else t("watch.cli.ok")
    key = "watch.cli.report" if filed.created else "watch.cli.report_again"
    console.print(t(key, unit=unit, day=the_day, what=what, late=t("watch.cli.late") if filed.late else ""))


@watch_app.command("status")
@user_errors
def status(
    day: Optional[str] = typer.Option(None, "--day", help="日期（默认今天）/ day (default today)"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """各单位值班表和当日报告情况 / who has filed the roster and reported on a day."""
    from pingan.watch import views

    rt = runtime()
    moment = _instant("--as-of", as_of)
    the_day = parse_day("--day", day) if day else moment.date()
    covering, rows = _do(rt, lambda s, org: views.board(s, rt, org, the_day, moment))
    if as_json:
        console.print_json(json.dumps({"day": the_day.isoformat(), "periods": [p.key for p in covering],
                                       "units": [r.as_dict() for r in rows]}, ensure_ascii=False))
        return
    if not covering:
        console.print(t("watch.cli.not_watched", day=the_day))
        return
    table = Table(title=f"节假日值守 {the_day}（{'、'.join(p.name for p in covering)}）")
    rendered = views.board_table(rows)
    for col in rendered[0]:
        table.add_column(col)
    for row in rendered:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


@watch_app.command("run")
@user_errors
def run(as_of: Optional[str] = typer.Option(None, "--as-of", help="时刻 / instant")) -> None:
    """运行一次值守（不经 Prefect）：安排、提醒、督办、发送 / run the watch once, in-process."""
    from pingan.watch.rules import WatchError
    from pingan.watch.workflow import WATCH, result_of

    rt = runtime()
    moment = local(_instant("--as-of", as_of))
    try:
        result = result_of(moment, WATCH.run(rt, as_of=moment))
    except WatchError as exc:
        raise UserError(str(exc)) from None
    sent = send_released(rt, moment)
    console.print(t("watch.cli.ran", periods=result.new_periods, planned=result.planned, linked=result.linked,
                    reminders=result.reminders, escalations=result.escalations, sent=sent))
    if not result.in_hours:
        console.print(f"[dim]{t('watch.cli.outside')}[/]")
