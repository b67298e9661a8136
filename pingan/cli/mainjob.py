"""``pingan up`` (the main job) and ``pingan deployments …`` (prefect.yaml and the automation)."""

from __future__ import annotations

import signal
from pathlib import Path

import sqlalchemy as sa
import typer
from rich.table import Table

from pingan.cli.app import (
    UserError,
    app,
    command,
    console,
    enter_demo_mode,
    user_errors,
)
from pingan.core.i18n import register, t

register({
    "up.migrated": {"zh-CN": "数据库：{url}（结构已是最新）", "en": "database: {url} (schema up to date)"},
    "up.demo_loaded": {"zh-CN": "数据库为空：已载入示例组织（{units} 个单位，{persons} 名人员）",
                       "en": "empty database: demo organisation loaded ({units} units, {persons} persons)"},
    "up.no_org": {"zh-CN": "数据库中还没有单位和人员：先用 pingan import 导入，或加 --demo 载入示例组织",
                  "en": "no units or persons yet: run pingan import first, or add --demo for the demo organisation"},
    "up.title": {"zh-CN": "pingan 已启动（Ctrl-C 停止）", "en": "pingan is up (Ctrl-C stops it)"},
    "up.ui": {"zh-CN": "Prefect 界面", "en": "Prefect UI"},
    "up.deployments": {"zh-CN": "职责部署（{n} 个）", "en": "deployments ({n})"},
    "up.web": {"zh-CN": "证据提交/审核页面", "en": "evidence page"},
    "up.logs": {"zh-CN": "日志", "en": "logs"},
    "up.outbox": {"zh-CN": "本地发件箱（pingan outbox 查看）", "en": "local outbox (see pingan outbox)"},
    "up.stopping": {"zh-CN": "正在停止 …", "en": "stopping …"},
    "up.stopped": {"zh-CN": "已停止；计划任务保持启用，下次启动继续", "en": "stopped; schedules stay active for the next start"},
    "up.smoke": {"zh-CN": "--check：全部就绪，现在停止", "en": "--check: everything is up, stopping now"},
    "dep.written": {"zh-CN": "已写入 {path}（{n} 个部署）", "en": "wrote {path} ({n} deployments)"},
    "dep.same": {"zh-CN": "{path} 与职责目录一致（{n} 个部署）", "en": "{path} matches the catalog ({n} deployments)"},
    "dep.differs": {"zh-CN": "{path} 与职责目录不一致：运行 pingan deployments write 重新生成",
                    "en": "{path} differs from the catalog: run pingan deployments write"},
})


def _prepare(demo: bool) -> tuple[int, int]:
    """Migrate, sync the catalog, load the demo organisation into an empty database."""
    from models import Person, Unit
    from pingan.core.db import get_engine, session_scope
    from pingan.core.migrate import safe_url, upgrade
    from pingan.core.settings import get_settings, record_in_home
    from pingan.duties.runtime import get_runtime
    from pingan.duties.service import ensure_catalog
    from pingan.org.demo import demo_organisation
    from pingan.org.service import store_org

    settings = get_settings()
    try:
        settings.check_secrets()  # a weak or demo key outside demo mode: one line, nothing written
    except ValueError as exc:
        raise UserError(str(exc)) from None
    settings.home.mkdir(parents=True, exist_ok=True)
    if demo:  # a demo home stays one: every later command on it runs in demo mode without PINGAN_DEMO
        record_in_home(settings.home, demo=True)
    upgrade()
    console.print(t("up.migrated", url=safe_url(settings.db_url)))
    ensure_catalog(get_runtime())
    def count(session, table) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    with session_scope(get_engine()) as session:
        empty = not count(session, Unit)
        if empty:
            if not demo:
                raise UserError(t("up.no_org"))
            store_org(session, demo_organisation(), actor="system:pingan-up")
            session.flush()
        if demo:
            from pingan.accounts.service import ensure_demo_accounts
            from pingan.core.clock import now

            ensure_demo_accounts(session, as_of=now())
        units, persons = count(session, Unit), count(session, Person)
    if empty:
        console.print(t("up.demo_loaded", units=units, persons=persons))
    return units, persons


@command("up")
def up(
    port: int = typer.Option(4200, help="Prefect 服务器与界面端口 / Prefect server and UI port"),
    web_port: int | None = typer.Option(None, help="证据页面端口（默认 PINGAN_WEB_PORT，8400）；消息中的链接指向它 / evidence page port; links in messages point at it"),
    limit: int = typer.Option(4, min=1, help="同时执行的运行数 / runs executed at once"),
    demo: bool = typer.Option(False, "--demo", help="演示模式：空库时载入示例组织，使用演示密钥 / demo mode"),
    web: bool = typer.Option(True, "--web/--no-web", help="同时启动证据页面 / also start the evidence page"),
    check: bool = typer.Option(False, "--check", help="启动、确认全部就绪后即停止 / start, check everything is up, stop"),
) -> None:
    """启动 pingan：数据库、Prefect 服务器与界面、各职责部署、证据页面 / start the main job."""
    from pingan.cli.supervisor import HomeLock, MainJobError
    from pingan.core.settings import get_settings

    if demo:
        enter_demo_mode()
    settings = get_settings()
    try:
        settings.check_secrets()  # a weak or demo key outside demo mode: one line, nothing written
    except ValueError as exc:
        raise UserError(str(exc)) from None
    web_port = web_port or settings.web_port
    lock = HomeLock(settings.home)
    try:  # one main job per home, before anything is written
        lock.acquire(port=port, web_port=web_port if web else None)
    except MainJobError as exc:
        raise UserError(str(exc)) from None
    try:
        _serve(settings, demo, port=port, web_port=web_port, limit=limit, web=web, check=check)
    finally:
        lock.release()


def _serve(settings, demo: bool, *, port: int, web_port: int, limit: int, web: bool, check: bool) -> None:
    from deployments.build import all_specs
    from pingan.cli.supervisor import MainJob, MainJobError
    from pingan.duties.runtime import get_runtime

    _prepare(demo)
    specs = all_specs(get_runtime().catalog)
    job = MainJob(settings, port=port, web_port=web_port, limit=limit, web=web, say=lambda s: console.print(s, style="dim"))

    def on_signal(signum, frame):  # SIGTERM behaves like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        job.start(len(specs))
        table = Table(title=t("up.title"), title_justify="left", show_header=False)
        table.add_row(t("up.ui"), job.ui_url)
        table.add_row(t("up.deployments", n=len(specs)), f"{job.ui_url}/deployments")
        if web:
            table.add_row(t("up.web"), f"{job.web_url}/review")
        table.add_row(t("up.logs"), str(settings.home.resolve() / "logs"))
        table.add_row(t("up.outbox"), str(settings.home.resolve() / "outbox.jsonl"))
        console.print(table)
        from pingan.cli.calendar import calendar_warning_line
        from pingan.core.clock import now

        warning = calendar_warning_line(get_runtime().calendar, now().date())
        if warning:
            console.print(warning, style="bold yellow")
        if check:
            console.print(t("up.smoke"))
            return
        job.watch()
    except KeyboardInterrupt:
        pass
    except MainJobError as exc:
        raise UserError(str(exc)) from None
    finally:
        console.print(t("up.stopping"), style="dim")
        job.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    console.print(t("up.stopped"))


dep_app = typer.Typer(help="部署：由职责目录生成 prefect.yaml（含失败告警触发器）/ deployments: prefect.yaml from the catalog, failure alert included",
                      no_args_is_help=True)
app.add_typer(dep_app, name="deployments")


def _yaml_path() -> Path:
    from pingan.core.settings import REPO_ROOT

    return REPO_ROOT / "prefect.yaml"


def _rendered() -> tuple[str, int]:
    from deployments.build import all_specs
    from deployments.yaml import render
    from pingan.duties.runtime import get_runtime

    specs = all_specs(get_runtime().catalog)
    return render(specs), len(specs)


@dep_app.command("write")
@user_errors
def write(path: Path = typer.Option(None, help="默认仓库根目录的 prefect.yaml / default: prefect.yaml in the checkout")) -> None:
    """由职责目录生成 prefect.yaml / generate prefect.yaml from the catalog."""
    path = path or _yaml_path()
    text, n = _rendered()
    path.write_text(text, encoding="utf-8")
    console.print(t("dep.written", path=path, n=n))


@dep_app.command("check")
@user_errors
def check(path: Path = typer.Option(None, help="默认仓库根目录的 prefect.yaml / default: prefect.yaml in the checkout")) -> None:
    """检查 prefect.yaml 与职责目录一致 / fail when prefect.yaml differs from the catalog."""
    path = path or _yaml_path()
    text, n = _rendered()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        raise UserError(t("dep.differs", path=path))
    console.print(t("dep.same", path=path, n=n))
