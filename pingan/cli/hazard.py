"""``pingan hazard …`` (the closed loop) and ``pingan risk …`` (the risk-point register)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from pingan.core.clock import now
from pingan.cli.app import UserError, app, console, parse_as_of, runtime, say, send_released, user_errors
from pingan.core.i18n import register, t

register({
    "hzc.reported": {"zh-CN": "隐患 #{id} 已上报：{level}，整改责任人 {rectifier}，整改期限 {deadline}",
                     "en": "hazard #{id} reported: {level}, rectifier {rectifier}, deadline {deadline}"},
    "hzc.exists": {"zh-CN": "隐患 #{id} 已存在（同一 --key），未重复上报", "en": "hazard #{id} already exists (same --key): not reported twice"},
    "hzc.notified": {"zh-CN": "已即时通知：{names}", "en": "told at once: {names}"},
    "hzc.moved": {"zh-CN": "隐患 #{id}：{state}", "en": "hazard #{id}: {state_en}"},
    "hzc.list.title": {"zh-CN": "隐患（截至 {as_of}，{n} 项）", "en": "Hazards (as of {as_of}, {n})"},
    "hzc.upload": {"zh-CN": "任务 #{task} 的监管平台上传已登记：编号 {ref}，日期 {day}", "en": "task #{task}: platform upload recorded, reference {ref}, {day}"},
    "hzc.upload.same": {"zh-CN": "任务 #{task} 已登记同一上传编号，无变化", "en": "task #{task} already has this reference: nothing changed"},
    "hzc.watch": {"zh-CN": "隐患巡查：新建风险点检查 {checks}，新逾期 {overdue}，提醒 {reminders}，督办 {escalations}，上传提醒 {uploads}，发送 {sent}",
                  "en": "hazard watch: {checks} risk check(s) planned, {overdue} newly overdue, {reminders} reminder(s), {escalations} escalation(s), {uploads} upload reminder(s), {sent} sent"},
    "hzc.no_person": {"zh-CN": "{option}：没有在职人员 {code!r}", "en": "{option}: no active person {code!r}"},
    "hzc.no_unit": {"zh-CN": "--unit：没有在用单位 {code!r}", "en": "--unit: no active unit {code!r}"},
    "hzc.file": {"zh-CN": "{option}：文件 {path} 不存在", "en": "{option}: file {path} does not exist"},
    "hzc.verify_choice": {"zh-CN": "请用 --pass（通过）或 --fail（不通过）说明核验结果", "en": "say --pass or --fail"},
    "rkc.imported": {"zh-CN": "风险点导入：新增 {created}，更新 {updated}，未变 {unchanged}，停用 {deactivated}",
                     "en": "risk points: {created} new, {updated} updated, {unchanged} unchanged, {deactivated} deactivated"},
    "rkc.dry": {"zh-CN": "演练（--dry-run）：未写入", "en": "dry run (--dry-run): nothing written"},
    "rkc.exported": {"zh-CN": "已导出 {n} 个风险点到 {path}", "en": "{n} risk point(s) exported to {path}"},
    "rkc.template": {"zh-CN": "已生成风险点模板（{n} 个典型风险点，须按本校实际修改）：{path}",
                     "en": "risk point template written ({n} typical points, to be adapted): {path}"},
    "rkc.list.title": {"zh-CN": "风险点（{n} 个）", "en": "Risk points ({n})"},
    "rkc.checked": {"zh-CN": "风险点 {point} 已检查（{result}），完成检查任务 {checks}", "en": "risk point {point} checked ({result}); checks done: {checks}"},
})

hazard_app = typer.Typer(help="隐患排查治理闭环：上报、整改、核验、销号 / the hazard closed loop", no_args_is_help=True)
risk_app = typer.Typer(help="安全风险点清单：导入、导出、检查 / the risk-point register", no_args_is_help=True)
app.add_typer(hazard_app, name="hazard")
app.add_typer(risk_app, name="risk")

STATES = ("reported", "rectifying", "rectified", "verified", "closed", "overdue")


def loop_errors(func: Callable) -> Callable:
    """The loop's refusals (and bad files) become one-line user errors; nothing was changed."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from pingan.evidence.files import EvidenceError
        from pingan.hazards.rules import HazardError
        from pingan.hazards.sheets import RiskImportError

        try:
            return func(*args, **kwargs)
        except (HazardError, RiskImportError, EvidenceError) as exc:
            raise UserError(str(exc)) from None

    return user_errors(wrapper)






def _instant(option: str, value: Optional[str]) -> dt.datetime | None:
    from pingan.core.periods import parse_instant
    from pingan.core.clock import TZ

    if not value:
        return None
    try:
        if len(value.strip()) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value.strip()), dt.time(17, 30), tzinfo=TZ)
        return parse_instant(value)
    except ValueError:
        raise UserError(say(f"{option}：{value!r} 不是日期或时间（如 2026-10-13 或 2026-10-13T17:30）",
                            f"{option}: {value!r} is not a date or datetime (like 2026-10-13 or 2026-10-13T17:30)")) from None


def _person(org, option: str, code: str) -> int:
    found = next((p.id for p in org.persons.values() if p.code == code), None)
    if found is None:
        raise UserError(t("hzc.no_person", option=option, code=code))
    return found


def _unit(org, code: str) -> int:
    found = next((u.id for u in org.units.values() if u.code == code), None)
    if found is None:
        raise UserError(t("hzc.no_unit", code=code))
    return found


@contextlib.contextmanager
def _uploads(option: str, paths: list[Path] | None):
    from pingan.evidence.files import Upload

    with contextlib.ExitStack() as stack:
        out = []
        for path in paths or []:
            if not path.is_file():
                raise UserError(t("hzc.file", option=option, path=path))
            out.append(Upload(path.name, stack.enter_context(path.open("rb"))))
        yield out


def _act(rt, as_of: dt.datetime, work):
    from pingan.hazards.service import act

    out = act(rt, work)
    send_released(rt, as_of)
    return out


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _moved(hazard_id: int, state: str) -> None:
    _say(t("hzc.moved", id=hazard_id, state=t(f"hz.state.{state}"), state_en=state))


def _org():
    from pingan.core.db import session_scope
    from pingan.org.snapshot import load_org

    with session_scope() as session:
        return load_org(session)


# =========================================================================== pingan hazard

@hazard_app.command("report")
@loop_errors
def report_(
    unit: str = typer.Option(..., "--unit", help="单位编码 / unit code"),
    place: str = typer.Option(..., "--place", help="隐患部位 / where"),
    description: str = typer.Option(..., "--description", help="隐患描述 / what"),
    level: str = typer.Option(..., "--level", help="一般 或 重大 / general (一般) or major (重大)"),
    rectifier: str = typer.Option(..., "--rectifier", help="整改责任人编码 / rectifier's person code"),
    by: str = typer.Option(..., "--by", help="报告人编码 / reporter's person code"),
    source: str = typer.Option("ad_hoc", "--source", help="half_monthly | patrol | inspection | risk_check | ad_hoc"),
    photo: Optional[list[Path]] = typer.Option(None, "--photo", help="隐患照片（可多次）/ photos"),
    deadline: Optional[str] = typer.Option(None, "--deadline", help="整改期限（默认按等级）/ deadline (default: by level)"),
    check: Optional[int] = typer.Option(None, "--check", help="所属半月排查任务编号 / the half-monthly check task"),
    point: Optional[str] = typer.Option(None, "--point", help="风险点（编号或 单位/编号）/ risk point"),
    key: Optional[str] = typer.Option(None, "--key", help="幂等键：同一键只上报一次 / idempotency key"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="发现时间 / when found"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """上报隐患（重大隐患即时通知安全科和包保领导）/ report a hazard (a major one tells the bureau at once)."""
    from pingan.hazards import service as hazards
    from pingan.hazards.rules import hazard_config

    rt = runtime()
    moment = parse_as_of(as_of)
    due = _instant("--deadline", deadline)
    org = _org()
    unit_id, rectifier_id, reporter_id = _unit(org, unit), _person(org, "--rectifier", rectifier), _person(org, "--by", by)
    with _uploads("--photo", photo) as photos:
        def work(session, org):
            point_id = hazards.find_point(session, org, point).id if point else None
            return hazards.report(session, rt, org, unit_id=unit_id, place=place, description=description, level=level,
                                  rectifier_id=rectifier_id, actor=f"person:{by}", as_of=moment, source=source,
                                  reporter_id=reporter_id, deadline=due, photos=photos, occurrence_id=check,
                                  risk_point_id=point_id, client_key=key)
        result = _act(rt, moment, work)
    cfg = hazard_config(rt)
    if as_json:
        console.print_json(json.dumps({"id": result.hazard_id, "created": result.created,
                                       "deadline": result.deadline.isoformat(), "notified": list(result.notified)}))
        return
    if not result.created:
        _say(t("hzc.exists", id=result.hazard_id))
        return
    _say(t("hzc.reported", id=result.hazard_id, level=cfg.level_name(cfg.parse_hazard_level(level)),
                    rectifier=org.persons[rectifier_id].name, deadline=f"{result.deadline:%Y-%m-%d %H:%M}"))
    if result.notified:
        _say(t("hzc.notified", names="、".join(org.persons[p].name for p in result.notified)))


@hazard_app.command("list")
@loop_errors
def list_(
    unit: Optional[str] = typer.Option(None, "--unit", help="单位编码 / unit code"),
    state: Optional[str] = typer.Option(None, "--state", help=" | ".join(STATES)),
    level: Optional[str] = typer.Option(None, "--level", help="一般 | 重大"),
    all_: bool = typer.Option(False, "--all", help="含已销号 / include closed"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """隐患列表（默认未销号的）/ hazards (open ones by default)."""
    from pingan.core.db import session_scope
    from pingan.hazards.rules import hazard_config
    from pingan.hazards.views import hazard_rows, state_label

    rt = runtime()
    moment = parse_as_of(as_of)
    if state and state not in STATES:
        raise UserError(say(f"--state：{state!r} 应为 {' / '.join(STATES)}", f"--state: {state!r} must be {' / '.join(STATES)}"))
    lvl = hazard_config(rt).parse_hazard_level(level).value if level else None
    with session_scope() as session:
        rows = hazard_rows(session, moment, unit_code=unit, state=state, level=lvl, open_only=not all_ and not state)
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    cfg = hazard_config(rt)
    table = Table(title=t("hzc.list.title", as_of=f"{moment:%Y-%m-%d %H:%M}", n=len(rows)))
    for col in ("#", "单位 unit", "等级 level", "部位 place", "描述 description", "状态 state", "整改人 rectifier",
                "期限 deadline", "天数 age", "轮次 round"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.unit, cfg.level_name(r.level), r.place, r.description[:40],
                      state_label(r.status), r.rectifier or "",
                      f"{r.deadline:%Y-%m-%d %H:%M}", str(r.age), str(r.round),
                      style="bold red" if r.status == "overdue" else None)
    console.print(table)


@hazard_app.command("show")
@loop_errors
def show(
    hazard_id: int = typer.Argument(..., help="隐患编号 / hazard id"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """一项隐患的详情和全部经过 / one hazard and its history."""
    from pingan.core.db import session_scope
    from pingan.hazards.rules import hazard_config
    from pingan.hazards.service import load
    from pingan.hazards.views import hazard_rows, history

    rt = runtime()
    moment = parse_as_of(as_of)
    with session_scope() as session:
        load(session, hazard_id)
        row = next(r for r in hazard_rows(session, moment) if r.id == hazard_id)
        events = history(session, hazard_id)
    if as_json:
        console.print_json(json.dumps({**row.as_dict(), "history": events}, ensure_ascii=False))
        return
    cfg = hazard_config(rt)
    console.print(f"[bold]隐患 #{row.id}[/] {row.unit} · {row.place}\n{row.description}\n"
                  f"{cfg.level_name(row.level)} · {t(f'hz.state.{row.status}')} ({row.status}) · "
                  f"第 {row.round} 轮 · 整改人 {row.rectifier} · 期限 {row.deadline:%Y-%m-%d %H:%M} · 已 {row.age} 天")
    table = Table(title="经过 / history")
    for col in ("时间 at", "人 actor", "事项 action", "状态 state", "说明 note", "文件 files"):
        table.add_column(col)
    for e in events:
        change = f"{e['from'] or ''} → {e['to']}" if e["to"] and e["from"] != e["to"] else ""
        table.add_row(e["at"][:16].replace("T", " "), e["actor"], e["action"] + (f" ({e['step']})" if e["step"] else ""),
                      change, e["note"] or "", "、".join(f["name"] for f in e["files"]))
    console.print(table)


def _move(hazard_id: int, as_of: Optional[str], by: str, work) -> None:
    rt = runtime()
    moment = parse_as_of(as_of)
    org = _org()
    person_id = _person(org, "--by", by)
    state = _act(rt, moment, lambda session, org: work(session, rt, org, person_id, f"person:{by}", moment))
    _moved(hazard_id, state)


@hazard_app.command("start")
@loop_errors
def start(hazard_id: int = typer.Argument(...), by: str = typer.Option(..., "--by", help="人员编码 / person code"),
          note: Optional[str] = typer.Option(None, "--note"), as_of: Optional[str] = typer.Option(None, "--as-of")) -> None:
    """开始整改 / the rectification starts."""
    from pingan.hazards import service as hazards

    _move(hazard_id, as_of, by, lambda s, rt, org, pid, actor, m: hazards.start(
        s, rt, org, hazard_id, person_id=pid, actor=actor, as_of=m, note=note))


@hazard_app.command("rectify")
@loop_errors
def rectify(
    hazard_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="整改人编码 / who did the work"),
    note: str = typer.Option(..., "--note", help="整改情况 / what was done"),
    file: Optional[list[Path]] = typer.Option(None, "--file", help="整改材料（整改后照片等，可多次）/ evidence files"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """整改完成（附整改材料），等待他人核验 / rectified, with evidence; someone else verifies."""
    from pingan.hazards import service as hazards

    with _uploads("--file", file) as files:
        _move(hazard_id, as_of, by, lambda s, rt, org, pid, actor, m: hazards.rectify(
            s, rt, org, hazard_id, person_id=pid, note=note, files=files, actor=actor, as_of=m))


@hazard_app.command("verify")
@loop_errors
def verify(
    hazard_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="核验人编码（不能是整改人）/ verifier (not the rectifier)"),
    passed: Optional[bool] = typer.Option(None, "--pass/--fail", help="通过或不通过（不通过则重新整改）/ passed or failed (a failed one is rectified again)"),
    note: Optional[str] = typer.Option(None, "--note", help="核验意见（不通过时必填）/ note (needed to fail)"),
    file: Optional[list[Path]] = typer.Option(None, "--file", help="核验照片 / photos"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """核验整改（整改人以外的人员）；不通过则重新打开 / verify; a failure re-opens the hazard."""
    from pingan.hazards import service as hazards

    if passed is None:
        raise UserError(t("hzc.verify_choice"))
    with _uploads("--file", file) as files:
        _move(hazard_id, as_of, by, lambda s, rt, org, pid, actor, m: hazards.verify(
            s, rt, org, hazard_id, person_id=pid, passed=passed, note=note, actor=actor, as_of=m, files=files))


@hazard_app.command("close")
@loop_errors
def close(hazard_id: int = typer.Argument(...), by: str = typer.Option(..., "--by", help="人员编码 / person code"),
          note: Optional[str] = typer.Option(None, "--note"), as_of: Optional[str] = typer.Option(None, "--as-of")) -> None:
    """销号（已核验的隐患）/ close a verified hazard (销号)."""
    from pingan.hazards import service as hazards

    _move(hazard_id, as_of, by, lambda s, rt, org, pid, actor, m: hazards.close(
        s, rt, org, hazard_id, person_id=pid, actor=actor, as_of=m, note=note))


@hazard_app.command("reopen")
@loop_errors
def reopen(hazard_id: int = typer.Argument(...), by: str = typer.Option(..., "--by", help="人员编码 / person code"),
           reason: str = typer.Option(..., "--reason", help="原因 / why"), as_of: Optional[str] = typer.Option(None, "--as-of")) -> None:
    """重新打开已核验或已销号的隐患 / re-open a verified or closed hazard."""
    from pingan.hazards import service as hazards

    _move(hazard_id, as_of, by, lambda s, rt, org, pid, actor, m: hazards.reopen(
        s, rt, org, hazard_id, person_id=pid, reason=reason, actor=actor, as_of=m))


@hazard_app.command("upload")
@loop_errors
def upload(
    task: int = typer.Argument(..., help="半月隐患排查任务编号 / the half-monthly check task"),
    ref: str = typer.Option(..., "--ref", help="监管平台上传编号 / platform reference"),
    date: Optional[str] = typer.Option(None, "--date", help="上传日期（默认今天）/ upload date"),
    by: str = typer.Option("operator", "--by", help="登记人 / recorded by"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """登记半月排查已上传市、区安全监管平台 / record a half-monthly check's platform upload."""
    from pingan.hazards import service as hazards

    rt = runtime()
    moment = parse_as_of(as_of)
    try:
        day = dt.date.fromisoformat(date) if date else moment.date()
    except ValueError:
        raise UserError(say(f"--date：{date!r} 不是日期（如 2026-09-15）", f"--date: {date!r} is not a date like 2026-09-15")) from None
    changed = _act(rt, moment, lambda s, org: hazards.record_upload(
        s, rt, occurrence_id=task, reference=ref, uploaded_on=day, actor=f"operator:{by}", as_of=moment))
    _say(t("hzc.upload" if changed else "hzc.upload.same", task=task, ref=ref.strip(), day=day.isoformat()))


@hazard_app.command("watch")
@loop_errors
def watch(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="时刻 / instant"),
    local: bool = typer.Option(False, "--local", help="不经 Prefect，直接运行 / run in-process without Prefect"),
) -> None:
    """运行每日隐患巡查（到期、提醒、督办、发送）/ run the daily hazard watch now."""
    rt = runtime()
    moment = parse_as_of(as_of)
    # ``--as-of`` with a time comes back as a pendulum DateTime on a zoneinfo zone, whose arithmetic
    # (``as_of - 2d``) drops the zone; the watch computes with it, so hand it a plain datetime.
    moment = dt.datetime.combine(moment.date(), moment.timetz())
    if os.environ.get("PREFECT_API_URL") and not local:
        from flows.hazards import hazard_watch

        out = hazard_watch(as_of=moment)
        values = {k: out[k] for k in ("checks", "overdue", "reminders", "escalations", "uploads")} | {"sent": 0}
    else:
        from pingan.hazards.workflow import WATCH

        steps = WATCH.run(rt, as_of=moment)
        sent = send_released(rt, moment)
        a, r, e = steps["advance"], steps["remind"], steps["escalate"]
        values = dict(checks=a["checks_planned"], overdue=a["overdue_marked"],
                      reminders=r["hazard_reminders"] + r["check_reminders"],
                      escalations=e["hazard_escalations"] + e["check_escalations"], uploads=r["upload_reminders"],
                      sent=sent)
    _say(t("hzc.watch", **values))


# =========================================================================== pingan risk

@risk_app.command("import")
@loop_errors
def import_(
    path: Path = typer.Argument(..., help="风险点清单 .xlsx / the register workbook"),
    unit: Optional[str] = typer.Option(None, "--unit", help="只导入本单位（单位编码列可留空）/ one unit only"),
    replace: bool = typer.Option(False, "--replace", help="停用文件中未列出的本单位风险点 / deactivate points left out"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查不写入 / check only"),
    by: str = typer.Option("operator", "--by", help="导入人 / imported by"),
) -> None:
    """导入风险点（有任何错误则全部不导入）/ import risk points (all or nothing)."""
    from pingan.hazards.service import import_points

    rt = runtime()
    if not path.is_file():
        raise UserError(t("hzc.file", option="PATH", path=path))
    moment = now()
    result = _act(rt, moment, lambda s, org: import_points(
        s, rt, org, path, actor=f"operator:{by}", as_of=moment, unit_code=unit, replace=replace, dry_run=dry_run))
    _say(t("rkc.imported", created=result.created, updated=result.updated, unchanged=result.unchanged,
                    deactivated=result.deactivated))
    if dry_run:
        _say(t("rkc.dry"))


@risk_app.command("export")
@loop_errors
def export(
    path: Path = typer.Argument(..., help="输出文件 .xlsx / output workbook"),
    unit: Optional[str] = typer.Option(None, "--unit", help="单位编码 / unit code"),
    all_: bool = typer.Option(False, "--all", help="含已停用 / include inactive points"),
) -> None:
    """导出风险点清单（可修改后再导入）/ export the register (edit and import it again)."""
    from pingan.core.db import session_scope
    from pingan.hazards.sheets import export_points

    rt = runtime()
    with session_scope() as session:
        n = export_points(session, rt, path, unit_code=unit, include_inactive=all_)
    _say(t("rkc.exported", n=n, path=path))


@risk_app.command("template")
@loop_errors
def template(
    path: Path = typer.Argument(..., help="输出文件 .xlsx / output workbook"),
    unit: Optional[str] = typer.Option(None, "--unit", help="预填单位编码 / fill in this unit code"),
) -> None:
    """生成典型学校风险点模板（须按本校实际修改）/ write the template of typical school risk points."""
    from pingan.hazards.sheets import write_template

    n = write_template(runtime(), path, unit_code=unit)
    _say(t("rkc.template", n=n, path=path))


@risk_app.command("list")
@loop_errors
def list_points(
    unit: Optional[str] = typer.Option(None, "--unit", help="单位编码 / unit code"),
    level: Optional[str] = typer.Option(None, "--level", help="重大 | 较大 | 一般 | 低"),
    all_: bool = typer.Option(False, "--all", help="含已停用 / include inactive"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """风险点清单 / list risk points."""
    from pingan.core.db import session_scope
    from pingan.hazards.rules import hazard_config
    from pingan.hazards.views import level_label, point_rows

    rt = runtime()
    cfg = hazard_config(rt)
    lvl = None
    if level:
        found = cfg.parse_risk_level(level)
        if found is None:
            raise UserError(say(f"--level：{level!r} 应为 重大、较大、一般或低", f"--level: {level!r} must be 重大, 较大, 一般 or 低"))
        lvl = found.value
    with session_scope() as session:
        rows = point_rows(session, unit_code=unit, level=lvl, include_inactive=all_)
    items = [{"id": r.id, "unit": r.unit_code, "code": r.code, "category": r.category, "place": r.place,
              "description": r.description, "measures": r.measures, "level": r.level, "owner": r.owner_code,
              "active": r.active} for r in rows]
    if as_json:
        console.print_json(json.dumps(items, ensure_ascii=False))
        return
    table = Table(title=t("rkc.list.title", n=len(items)))
    for col in ("#", "单位 unit", "编号 code", "类别", "场所/部位 place", "等级 level", "责任人 owner", "启用"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.unit, r.code, cfg.data.categories[r.category].name, r.place,
                      level_label(cfg, r.level), r.owner or "", "是" if r.active else "否")
    console.print(table)


@risk_app.command("check")
@loop_errors
def check(
    point: str = typer.Argument(..., help="风险点编号或 单位/编号 / risk point id or UNIT/CODE"),
    by: str = typer.Option(..., "--by", help="检查人编码 / checker's person code"),
    result: str = typer.Option("ok", "--result", help="ok（正常）或 hazard（发现隐患）/ ok, or hazard (a hazard was found)"),
    note: Optional[str] = typer.Option(None, "--note"),
    description: Optional[str] = typer.Option(None, "--description", help="发现的隐患 / the hazard found"),
    level: Optional[str] = typer.Option(None, "--level", help="隐患等级：一般 或 重大 / the hazard's level: general (一般) or major (重大)"),
    rectifier: Optional[str] = typer.Option(None, "--rectifier", help="整改责任人编码 / rectifier"),
    photo: Optional[list[Path]] = typer.Option(None, "--photo"),
    as_of: Optional[str] = typer.Option(None, "--as-of"),
) -> None:
    """登记风险点检查（发现隐患则进入整改闭环）/ record a risk point's check (a hazard enters the loop)."""
    from pingan.hazards.service import find_point, record_check

    rt = runtime()
    moment = parse_as_of(as_of)
    org = _org()
    checker = _person(org, "--by", by)
    hazard = None
    if result == "hazard":
        hazard = {"description": description, "level": level,
                  "rectifier_id": _person(org, "--rectifier", rectifier) if rectifier else None}
    with _uploads("--photo", photo) as photos:
        def work(session, org):
            found = find_point(session, org, point)
            return found, record_check(session, rt, org, risk_point_id=found.id, person_id=checker, result=result,
                                      actor=f"person:{by}", as_of=moment, note=note, hazard=hazard, photos=photos)
        found, done = _act(rt, moment, work)
    _say(t("rkc.checked", point=f"{found.code} {found.place}", result=result,
                    checks=", ".join(map(str, done.checks))) + (f"；隐患 #{done.hazard_id}" if done.hazard_id else ""))
