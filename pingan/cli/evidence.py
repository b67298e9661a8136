"""``pingan evidence list | show | accept | reject`` and ``pingan web`` (serve the evidence page)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer
from rich import box
from rich.table import Table

from pingan.cli.app import UserError, app, command, console, parse_as_of, runtime, send_released, user_errors
from pingan.core.i18n import register, t

register({
    "evc.col.duty": {"zh-CN": "职责", "en": "duty"}, "evc.col.unit": {"zh-CN": "单位", "en": "unit"},
    "evc.col.period": {"zh-CN": "周期", "en": "period"}, "evc.col.version": {"zh-CN": "版本", "en": "v"},
    "evc.col.by": {"zh-CN": "提交人", "en": "by"}, "evc.col.at": {"zh-CN": "提交时间", "en": "at"},
    "evc.col.files": {"zh-CN": "文件", "en": "files"}, "evc.col.status": {"zh-CN": "状态", "en": "status"},
    "evc.list.title": {"zh-CN": "材料（{status}，{n} 份）", "en": "Evidence ({status}, {n})"},
    "evc.accepted": {"zh-CN": "材料 #{id} 已通过：任务 {task} 已完成，不再提醒和督办",
                     "en": "evidence #{id} accepted: task {task} is closed, no more reminders or escalations"},
    "evc.rejected": {"zh-CN": "材料 #{id} 已退回：任务 {task} 重新打开，已通知 {n} 人（发送 {sent}）",
                     "en": "evidence #{id} rejected: task {task} is open again; {n} person(s) told why ({sent} sent)"},
    "evc.status": {"zh-CN": "--status：{value!r} 应为 submitted/accepted/rejected/all",
                   "en": "--status: {value!r} must be submitted, accepted, rejected or all"},
})

evidence_app = typer.Typer(help="材料：查看、通过、退回 / evidence: list, show, accept, reject", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")






def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@evidence_app.command("list")
@user_errors
def list_(
    status: str = typer.Option("submitted", "--status", help="submitted（待审核）、accepted、rejected 或 all / submitted (awaiting review), accepted, rejected or all"),
    duty: Optional[str] = typer.Option(None, "--duty", help="只看一项职责 / one duty"),
    all_versions: bool = typer.Option(False, "--all-versions", help="包括被取代的旧版本 / include superseded versions"),
    limit: int = typer.Option(200, "--limit", min=1, max=100_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """列出材料（默认待审核）/ list evidence (by default what awaits review)."""
    from pingan.evidence import service as evidence
    from pingan.core.db import session_scope

    if status not in (*evidence.STATUSES, "all"):
        raise UserError(t("evc.status", value=status))
    rt = runtime()
    with session_scope() as session:
        rows = evidence.list_evidence(session, rt, status=None if status == "all" else status, duty=duty,
                                      latest_only=not all_versions, limit=limit)
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    # The id (what show/accept/reject take), period and status are never cut; names wrap.
    table = Table(title=t("evc.list.title", status=status, n=len(rows)), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", no_wrap=True, overflow="fold")
    table.add_column(t("evc.col.duty"), ratio=2)
    table.add_column(t("evc.col.unit"), ratio=1)
    table.add_column(t("evc.col.period"), no_wrap=True, overflow="fold")
    table.add_column(t("evc.col.version"), no_wrap=True, justify="right")
    table.add_column(t("evc.col.by"), ratio=1)
    table.add_column(t("evc.col.at"), overflow="fold", min_width=10)
    table.add_column(t("evc.col.files"), no_wrap=True, justify="right")
    table.add_column(t("evc.col.status"), no_wrap=True, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), r.duty, r.unit, r.period, str(r.version), r.person or "", _when(r.submitted_at),
                      str(r.files), r.status)
    console.print(table)


@evidence_app.command("show")
@user_errors
def show(
    evidence_id: int = typer.Argument(..., help="材料编号 / evidence id (see `pingan evidence list`)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """显示一份材料：填报内容、文件及其 SHA-256、各版本 / show one hand-in with its files and versions."""
    from pingan.evidence import files as evfiles
    from pingan.evidence import service as evidence
    from pingan.core.db import session_scope

    rt = runtime()
    with session_scope() as session:
        detail = evidence.evidence_detail(session, rt, evidence_id)
    if detail is None:
        raise UserError(t("ev.err.no_evidence", id=evidence_id))
    r = detail.row
    files = [{"id": f.id, "name": f.filename, "type": f.content_type, "size": f.size, "sha256": f.sha256,
              "path": str(evfiles.blob_path(rt.settings.evidence_dir, f.sha256))} for f in detail.files]
    if as_json:
        console.print_json(json.dumps({
            **r.as_dict(), "fields": dict(detail.fields), "note": detail.note, "files": files,
            "versions": [{"id": v.id, "version": v.version, "status": v.status} for v in detail.versions],
        }, ensure_ascii=False))
        return
    table = Table(title=f"#{r.id} {r.duty}", show_header=False, title_justify="left")
    for label, value in [
        ("单位 unit", r.unit), ("周期 period", r.period), ("截止 due", _when(r.due_at)),
        ("任务 task", str(r.occurrence_id)), ("类型 kind", r.kind), ("版本 version", str(r.version)),
        ("提交人 by", r.person or ""), ("提交时间 at", _when(r.submitted_at)), ("状态 status", r.status),
        *([("审核 reviewed", f"{r.reviewed_by} {_when(r.reviewed_at)}")] if r.reviewed_by else []),
        *([("理由 reason", r.review_reason)] if r.review_reason else []),
        *detail.fields, *([("说明 note", detail.note)] if detail.note else []),
    ]:
        table.add_row(label, value)
    for f in files:
        table.add_row("文件 file", f"{f['name']} ({f['size']} B, {f['type']})\nsha256 {f['sha256']}\n{f['path']}")
    if len(detail.versions) > 1:
        table.add_row("版本 versions", ", ".join(f"v{v.version} #{v.id} {v.status}" for v in detail.versions))
    console.print(table)


def _review(evidence_id: int, accept: bool, reason: Optional[str], by: str, as_of: Optional[str]):
    from pingan.evidence import files as evfiles
    from pingan.evidence import service as evidence
    from pingan.core.db import session_scope

    rt = runtime()
    moment = parse_as_of(as_of)
    try:
        with session_scope() as session:
            outcome = evidence.review(session, rt, evidence_id=evidence_id, accept=accept, reason=reason,
                                      actor=f"operator:{by}", as_of=moment)
    except evfiles.EvidenceError as exc:
        raise UserError(str(exc)) from None
    return rt, moment, outcome


@evidence_app.command("accept")
@user_errors
def accept(
    evidence_id: int = typer.Argument(..., help="材料编号 / evidence id"),
    by: str = typer.Option("operator", "--by", help="审核人 / reviewer"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="审核时刻 / instant of the review"),
) -> None:
    """通过材料：任务完成，停止提醒和督办 / accept: the task is closed, reminders and escalation stop."""
    _, _, outcome = _review(evidence_id, True, None, by, as_of)
    console.print(t("evc.accepted", id=evidence_id, task=outcome.occurrence_id))


@evidence_app.command("reject")
@user_errors
def reject(
    evidence_id: int = typer.Argument(..., help="材料编号 / evidence id"),
    reason: str = typer.Option(..., "--reason", help="退回理由，会通知提交人 / why (the person is told)"),
    by: str = typer.Option("operator", "--by", help="审核人 / reviewer"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="审核时刻 / instant of the review"),
    send: bool = typer.Option(True, "--send/--no-send", help="立即交给统一发送 / start the dispatcher now (else its sweep sends)"),
) -> None:
    """退回材料：任务重新打开，告知理由，督办继续 / reject: the task re-opens, the person is told why, escalation goes on."""
    rt, moment, outcome = _review(evidence_id, False, reason, by, as_of)
    sent = send_released(rt, moment) if send else 0
    console.print(t("evc.rejected", id=evidence_id, task=outcome.occurrence_id, n=len(outcome.notified), sent=sent))


@command("web")
def web(
    host: Optional[str] = typer.Option(None, "--host", help="监听地址 / address (default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, "--port", help="端口 / port (default 8400)"),
) -> None:
    """启动证据提交与审核页面 / serve the evidence hand-in and review page."""
    from pingan.web.__main__ import serve

    code = serve(host, port)
    if code:
        raise typer.Exit(code)
