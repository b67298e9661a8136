"""``pingan sensitive-period start | list | cancel``: key sensitive periods from the shell."""

from __future__ import annotations

import json
from typing import Optional

import sqlalchemy as sa
import typer
from rich.table import Table

from pingan.core.clock import now
from pingan.cli.app import UserError, app, console, parse_as_of, parse_day, runtime, say, send_released, user_errors

sp_app = typer.Typer(help="重点敏感时期 / key sensitive periods", no_args_is_help=True)
app.add_typer(sp_app, name="sensitive-period")




@sp_app.command("start")
@user_errors
def start(
    name: str = typer.Option(..., "--name", help="名称，如 “元旦春节” / name"),
    start_: str = typer.Option(..., "--from", help="开始日期 / first day"),
    end: str = typer.Option(..., "--to", help="结束日期（含）/ last day (inclusive)"),
    scope: str = typer.Option("all", "--scope", help="all，或单位类型、单位编码，逗号分隔 / unit kinds and codes"),
    duties: Optional[str] = typer.Option(None, "--duties", help="职责编号，逗号分隔（默认：清单规定可加密的全部）/ duty keys, comma separated (default: every duty the list tightens)"),
    frequency: Optional[str] = typer.Option(None, "--frequency", help="daily | weekly | half_monthly | monthly"),
    by: str = typer.Option("operator", "--by", help="决定人 / decided by"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="视为此时刻开始 / instant, default now"),
) -> None:
    """开始一个重点敏感时期：加密所选职责、通知责任人 / start a period: tighten duties and announce it."""
    from pingan.duties import service
    from pingan.core.db import session_scope
    from pingan.org.snapshot import load_org
    from pingan.duties.sensitive import Request, SensitivePeriodError, parse_scope

    rt = runtime()
    moment = parse_as_of(as_of)
    try:
        with session_scope() as session:
            kinds, units = parse_scope(scope, load_org(session))
        req = Request(
            name=name, starts_on=parse_day("--from", start_), ends_on=parse_day("--to", end), kinds=kinds, units=units,
            duties=tuple(d.strip() for d in (duties or "").split(",") if d.strip()), frequency=frequency,
        )
        result = service.start_sensitive_period(rt, req, moment, actor=f"operator:{by}")
    except SensitivePeriodError as exc:
        raise UserError(str(exc)) from None
    result["sent"] = send_released(rt, moment)
    verb = "已开始" if result["created"] else "已存在（未重复创建）"
    console.print(f"重点敏感时期 #{result['id']} {verb} / period #{result['id']} "
                  f"{'started' if result['created'] else 'already recorded'}: "
                  f"新建任务 {sum(result['planned'].values())}，通知 {result['announced']}，发送 {result['sent']}")


@sp_app.command("list")
@user_errors
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """列出重点敏感时期 / list sensitive periods."""
    from pingan.core.db import session_scope
    from pingan.duties.sensitive import S

    with session_scope() as session:
        found = session.execute(sa.select(S).order_by(S.c.starts_on.desc(), S.c.id.desc())).all()
    today = now().date()
    items = [{
        "id": r.id, "name": r.name, "from": r.starts_on.isoformat(), "to": r.ends_on.isoformat(),
        "scope": r.scope, "duties": r.duties, "frequency": r.frequency,
        "state": "cancelled" if r.cancelled_at else ("active" if r.starts_on <= today <= r.ends_on else
                                                     ("ended" if r.ends_on < today else "upcoming")),
    } for r in found]
    if as_json:
        console.print_json(json.dumps(items, ensure_ascii=False))
        return
    table = Table(title="重点敏感时期 / sensitive periods")
    for col in ("#", "名称 name", "起止 dates", "范围 scope", "职责 duties", "频次 frequency", "状态 state"):
        table.add_column(col)
    for i in items:
        scope = ",".join((i["scope"] or {}).get("kinds", []) + (i["scope"] or {}).get("units", [])) or "all"
        table.add_row(str(i["id"]), i["name"], f"{i['from']} – {i['to']}", scope, "\n".join(i["duties"]),
                      i["frequency"] or "按清单", i["state"])
    console.print(table)


@sp_app.command("cancel")
@user_errors
def cancel(period: int = typer.Argument(..., help="编号 / id"), by: str = typer.Option("operator", "--by")) -> None:
    """取消一个重点敏感时期（已建任务保留）/ cancel a period (tasks already planned stay)."""
    from pingan.core.db import session_scope
    from pingan.duties.sensitive import cancel as do_cancel

    with session_scope() as session:
        if not do_cancel(session, period, actor=f"operator:{by}"):
            raise UserError(say(f"没有进行中的重点敏感时期 #{period}", f"no uncancelled period #{period}"))
    console.print(f"重点敏感时期 #{period} 已取消 / cancelled")
