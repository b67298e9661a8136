"""``pingan account add | passwd | disable | enable | list | unlock``: the reviewers' accounts.

A reviewer is a person of the organisation — the safety section, the leader in charge of safety
work, a 包保/分管 leader — signing in with their own password to the review page. Passwords are
read from the terminal without echo (or, when standard input is not a terminal, from its first
line), never from the command line, where other users of the machine could see them.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Optional

import typer
from rich.table import Table

from pingan.cli.app import UserError, app, console, user_errors
from pingan.core.i18n import register, t

register({
    "accc.added": {"zh-CN": "已为 {name}（{code}）创建账号「{login}」，可审核：{scope}",
                   "en": "account “{login}” made for {name} ({code}); reviews: {scope}"},
    "accc.passwd": {"zh-CN": "账号「{login}」的密码已修改，已退出 {n} 个登录",
                    "en": "password of “{login}” changed; {n} session(s) ended"},
    "accc.disabled": {"zh-CN": "账号「{login}」已停用，已退出 {n} 个登录", "en": "account “{login}” disabled; {n} session(s) ended"},
    "accc.enabled": {"zh-CN": "账号「{login}」已启用", "en": "account “{login}” enabled"},
    "accc.unlocked": {"zh-CN": "已清除 {n} 项登录失败记录及锁定（{what}）", "en": "failed sign-ins and locks cleared for {n} ({what})"},
    "accc.unlock_what": {"zh-CN": "请给出登录名或 --address", "en": "give a login name or --address"},
    "accc.list.title": {"zh-CN": "审核账号（{n} 个）", "en": "Reviewer accounts ({n})"},
    "accc.all": {"zh-CN": "全部单位", "en": "every unit"},
    "accc.locked": {"zh-CN": "锁定至 {at}", "en": "locked until {at}"},
    "accc.prompt": {"zh-CN": "密码（至少 12 个字符）", "en": "password (at least 12 characters)"},
    "accc.again": {"zh-CN": "再次输入密码", "en": "password again"},
})

account_app = typer.Typer(help="审核账号：添加、改密码、停用、列表、解锁 / reviewer accounts", no_args_is_help=True)
app.add_typer(account_app, name="account")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _password() -> str:
    if sys.stdin.isatty():
        return typer.prompt(t("accc.prompt"), hide_input=True, confirmation_prompt=t("accc.again"))
    return sys.stdin.readline().rstrip("\r\n")


def _run(work):
    """Run ``work(session, as_of)`` in one transaction; an AccountError is a one-line user error."""
    from pingan.accounts.service import AccountError
    from pingan.core.clock import now
    from pingan.core.db import session_scope

    try:
        with session_scope() as session:
            return work(session, now())
    except AccountError as exc:
        raise UserError(str(exc)) from None


@account_app.command("add")
@user_errors
def add(
    person: str = typer.Argument(..., help="人员编码 / the person's code (see pingan org)"),
    login: Optional[str] = typer.Option(None, "--login", help="登录名，默认人员编码 / login name (default: the code)"),
) -> None:
    """为安全科人员或包保/分管领导创建审核账号 / an account for the safety section or a 包保/分管 leader."""
    from pingan.accounts.service import add_account, scope_of
    from pingan.org.snapshot import load_org

    password = _password()

    def work(session, as_of):
        account = add_account(session, person_code=person, login=login, password=password, actor=_actor(),
                              as_of=as_of)
        scope, org = scope_of(session, account.person_id), load_org(session)
        who = org.persons[account.person_id]
        names = t("accc.all") if scope.everything else "、".join(sorted(org.units[u].name for u in scope.units))
        return t("accc.added", name=who.name, code=who.code, login=account.login, scope=names)

    console.print(_run(work))


@account_app.command("passwd")
@user_errors
def passwd(login: str = typer.Argument(..., help="登录名 / login name")) -> None:
    """修改密码；该账号的所有登录随即失效 / a new password; every session of the account ends."""
    from pingan.accounts.service import set_password

    password = _password()
    ended = _run(lambda session, as_of: set_password(session, login=login, password=password, actor=_actor(),
                                                     as_of=as_of))
    console.print(t("accc.passwd", login=login, n=ended))


@account_app.command("disable")
@user_errors
def disable(login: str = typer.Argument(..., help="登录名 / login name")) -> None:
    """停用账号；其所有登录随即失效 / disable an account; every session of it ends."""
    from pingan.accounts.service import set_active

    ended = _run(lambda session, as_of: set_active(session, login=login, active=False, actor=_actor(), as_of=as_of))
    console.print(t("accc.disabled", login=login, n=ended))


@account_app.command("enable")
@user_errors
def enable(login: str = typer.Argument(..., help="登录名 / login name")) -> None:
    """重新启用账号 / enable an account again."""
    from pingan.accounts.service import set_active

    _run(lambda session, as_of: set_active(session, login=login, active=True, actor=_actor(), as_of=as_of))
    console.print(t("accc.enabled", login=login))


@account_app.command("list")
@user_errors
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """列出审核账号：人员、可审核的单位、状态、锁定 / the accounts, what each reviews, locks."""
    from pingan.accounts.service import list_accounts

    rows = _run(lambda session, as_of: list_accounts(session, as_of=as_of))
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    table = Table(title=t("accc.list.title", n=len(rows)))
    for col in ("登录名 login", "人员 person", "单位 unit", "可审核 reviews", "状态 state", "最近登录 last sign-in"):
        table.add_column(col)
    for r in rows:
        state = ("启用 active" if r.active else "停用 disabled") + (" · 演示 demo" if r.demo else "")
        if r.locked_until:
            state += " · " + t("accc.locked", at=r.locked_until.strftime("%Y-%m-%d %H:%M"))
        table.add_row(r.login, f"{r.name}（{r.code}）", r.unit, t("accc.all") if r.scope == "all" else r.scope, state,
                      r.last_login_at.strftime("%Y-%m-%d %H:%M") if r.last_login_at else "")
    console.print(table)


@account_app.command("unlock")
@user_errors
def unlock(
    login: Optional[str] = typer.Argument(None, help="登录名 / login name"),
    address: Optional[str] = typer.Option(None, "--address", help="客户端地址 / a client address (IP)"),
) -> None:
    """解除登录失败造成的锁定 / clear the lock that failed sign-ins put on an account or an address."""
    from pingan.accounts.service import unlock as clear

    if not login and not address:
        raise UserError(t("accc.unlock_what"))
    n = _run(lambda session, as_of: clear(session, login=login, address=address, actor=_actor(), as_of=as_of))
    console.print(t("accc.unlocked", n=n, what=" ".join(x for x in (login, address) if x)))
