"""``pingan person link show | revoke CODE``: a person's own page and calendar links."""

from __future__ import annotations

import typer

from pingan.cli.app import UserError, app, console, parse_as_of, user_errors
from pingan.core.i18n import register, t

register({
    "person.cli.links": {"zh-CN": "{name}（{code}）的专用链接：\n我的待办：{page}\n日历订阅：{feed}",
                         "en": "links of {name} ({code}):\nmy page: {page}\ncalendar feed: {feed}"},
    "person.cli.revoked": {"zh-CN": "{name}（{code}）的旧链接已作废（第 {version} 版）。新链接：\n我的待办：{page}\n日历订阅：{feed}",
                           "en": "the old links of {name} ({code}) are revoked (version {version}). New links:\nmy page: {page}\ncalendar feed: {feed}"},
})

person_app = typer.Typer(help="人员 / persons", no_args_is_help=True)
link_app = typer.Typer(help="个人专用链接（我的待办、日历订阅）/ a person's own links", no_args_is_help=True)
person_app.add_typer(link_app, name="link")
app.add_typer(person_app, name="person")


def _session_work(work):
    from pingan.core.db import session_scope

    try:
        with session_scope() as session:
            return work(session)
    except LookupError as exc:
        raise UserError(str(exc.args[0])) from None


@link_app.command("show")
@user_errors
def show(code: str = typer.Argument(..., help="人员编码 / person code")) -> None:
    """显示某人的“我的待办”页面和日历订阅链接 / show a person's page and calendar links."""
    from pingan.core.settings import get_settings
    from pingan.org import links

    settings = get_settings()

    def work(session):
        person = links.find_person(session, code)
        page, feed = links.urls(session, person.id, settings.base_url, settings.signing_key)
        return person.name, person.code, page, feed

    name, code_, page, feed = _session_work(work)
    console.print(t("person.cli.links", name=name, code=code_, page=page, feed=feed), highlight=False, soft_wrap=True)


@link_app.command("revoke")
@user_errors
def revoke(
    code: str = typer.Argument(..., help="人员编码 / person code"),
    by: str = typer.Option("operator", "--by", help="操作人 / done by"),
    as_of: str | None = typer.Option(None, "--as-of"),
) -> None:
    """作废某人的旧链接并生成新链接（链接泄露或人员调动时）/ revoke a person's links and issue new ones."""
    from pingan.core.settings import get_settings
    from pingan.org import links

    settings = get_settings()
    moment = parse_as_of(as_of)

    def work(session):
        person, version = links.revoke(session, code, actor=f"operator:{by}", as_of=moment)
        page, feed = links.urls(session, person.id, settings.base_url, settings.signing_key)
        return person.name, person.code, version, page, feed

    name, code_, version, page, feed = _session_work(work)
    console.print(t("person.cli.revoked", name=name, code=code_, version=version, page=page, feed=feed),
                  highlight=False, soft_wrap=True)
