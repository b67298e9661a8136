"""``pingan init | import | export | org``: the database, the catalog and the organisation.

CSV import takes the two tables as two files (``pingan import units.csv persons.csv``) or
a directory holding them; an ``.xlsx`` workbook holds both as sheets 单位 and 人员.
"""

from __future__ import annotations

import getpass
from collections import Counter
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from models import Channel, Duty, Person, Role, RoleKind, Unit, UnitKind
from pingan.cli.app import UserError, command, console
from pingan.i18n import register, t

register({
    "org.init.title": {"zh-CN": "初始化结果", "en": "Initialisation"},
    "org.init.unchanged": {"zh-CN": "无变化：数据库、职责目录和组织都已是最新", "en": "nothing changed: database, catalog and organisation are up to date"},
    "org.init.no_catalog": {"zh-CN": "（未加载职责目录：pingan.cycle.sync_catalog 不可用）", "en": "(catalog not loaded: pingan.cycle.sync_catalog is unavailable)"},
    "org.init.migrated": {"zh-CN": "数据库结构已是最新", "en": "database schema is up to date"},
    "org.col.item": {"zh-CN": "项目", "en": "item"},
    "org.col.new": {"zh-CN": "新增", "en": "new"},
    "org.col.updated": {"zh-CN": "更新", "en": "updated"},
    "org.col.removed": {"zh-CN": "移除/停用", "en": "removed"},
    "org.col.total": {"zh-CN": "总数", "en": "total"},
    "org.col.kind": {"zh-CN": "类型", "en": "kind"},
    "org.col.count": {"zh-CN": "数量", "en": "count"},
    "org.item.duties": {"zh-CN": "职责", "en": "duties"},
    "org.item.units": {"zh-CN": "单位", "en": "units"},
    "org.item.persons": {"zh-CN": "人员", "en": "persons"},
    "org.item.roles": {"zh-CN": "角色", "en": "roles"},
    "org.item.channels": {"zh-CN": "通知渠道", "en": "channels"},
    "org.import.title": {"zh-CN": "导入 {source}", "en": "Import {source}"},
    "org.import.dry": {"zh-CN": "演练（--dry-run）：以上变更未写入", "en": "dry run (--dry-run): nothing was written"},
    "org.import.unchanged": {"zh-CN": "无变化：数据库已与文件一致", "en": "nothing changed: the database already matches the file"},
    "org.import.done": {"zh-CN": "已导入，并记入审计日志", "en": "imported and recorded in the audit trail"},
    "org.import.no_files": {"zh-CN": "请给出要导入的文件，或用 --template 生成模板", "en": "name the file(s) to import, or write a template with --template"},
    "org.import.reading": {"zh-CN": "读取并检查", "en": "reading and checking"},
    "org.import.writing": {"zh-CN": "写入", "en": "writing"},
    "org.template.done": {"zh-CN": "已生成导入模板：{path}", "en": "import template written: {path}"},
    "org.export.done": {"zh-CN": "已导出 {units} 个单位、{persons} 名人员到 {path}", "en": "exported {units} units and {persons} persons to {path}"},
    "org.export.masked": {"zh-CN": "通知渠道已遮盖；原样导回时保留数据库中的地址。需要完整地址请加 --with-secrets", "en": "channels are masked (re-importing them keeps the stored URLs); use --with-secrets for the full URLs"},
    "org.export.secrets": {"zh-CN": "注意：文件含通知渠道的令牌，请妥善保管", "en": "careful: the file holds channel tokens; keep it safe"},
    "org.show.title": {"zh-CN": "组织", "en": "Organisation"},
    "org.show.active_units": {"zh-CN": "在用单位", "en": "active units"},
    "org.show.persons": {"zh-CN": "在职人员", "en": "active persons"},
    "org.show.channels": {"zh-CN": "通知渠道（在用）", "en": "channels (active)"},
    "org.show.unreachable": {"zh-CN": "无通知渠道的人员", "en": "persons without a channel"},
    "org.show.schools_no_principal": {"zh-CN": "缺校（园）长的学校", "en": "schools without a principal"},
    "org.show.schools_no_patron": {"zh-CN": "无包保领导的学校", "en": "schools without a patron"},
    "org.show.empty": {"zh-CN": "还没有组织数据：用 pingan init --demo 或 pingan import 导入", "en": "no organisation yet: run pingan init --demo or pingan import"},
    "org.err.path": {"zh-CN": "{path}：{reason}", "en": "{path}: {reason}"},
})

_STAGES = {"units": "org.item.units", "persons": "org.item.persons", "roles": "org.item.roles", "channels": "org.item.channels"}


def _actor() -> str:
    try:
        return f"operator:{getpass.getuser()}"[:100]
    except Exception:  # no user name in some containers
        return "operator:cli"


def _import_error(exc: Exception) -> UserError:
    return UserError(str(exc))


def _counts_table(title: str, rows: list[tuple], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(t("org.col.item"))
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def _result_rows(result) -> list[tuple]:
    return [(t(_STAGES[name]), c["new"], c["updated"], c["removed"], c["new"] + c["updated"] + c["removed"] + c["unchanged"])
            for name, c in result.as_dict().items()]


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)


@command("init")
def init(demo: bool = typer.Option(False, "--demo", help="载入德惠市教育局示例组织 / load the Dehui demo organisation")) -> None:
    """建库、载入职责目录（可选示例组织）/ create the database, load the catalog (and a demo organisation)."""
    from pingan.catalog import load_catalog
    from pingan.db import get_engine, session_scope
    from pingan.migrate import upgrade
    from pingan.org import demo_organisation, load_org
    from pingan.settings import get_settings

    settings = get_settings()
    if settings.db_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    upgrade()
    try:
        from pingan.duties import sync_catalog
    except ImportError:
        try:
            from pingan.cycle import sync_catalog
        except ImportError:
            sync_catalog = None
    catalog = load_catalog() if sync_catalog else None
    rows, changed = [], False
    with session_scope(get_engine()) as session:
        if sync_catalog is not None:
            before = session.execute(sa.select(sa.func.count()).select_from(Duty)).scalar_one()
            updated = sync_catalog(session, catalog)
            session.flush()
            total = session.execute(sa.select(sa.func.count()).select_from(Duty)).scalar_one()
            new = total - before
            updated = max(0, (updated or 0) - new)
            changed |= bool(new or updated)
            rows.append((t("org.item.duties"), new, updated, 0, total))
        if demo:
            result = load_org(session, demo_organisation(), actor=_actor())
            changed |= result.changed
            rows += _result_rows(result)
    console.print(t("org.init.migrated"))
    if sync_catalog is None:
        console.print(t("org.init.no_catalog"))
    if rows:
        console.print(_counts_table(t("org.init.title"), rows, [t("org.col.new"), t("org.col.updated"),
                                                               t("org.col.removed"), t("org.col.total")]))
    if not changed:
        console.print(t("org.init.unchanged"))


@command("import")
def import_(
    files: Optional[list[Path]] = typer.Argument(None, help="单位/人员表：.xlsx，或 units.csv persons.csv，或包含它们的目录 / workbook, CSV pair or directory"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查并显示变更，不写入 / check and show the changes, write nothing"),
    template: Optional[Path] = typer.Option(None, "--template", help="生成导入模板（.xlsx，或目录则生成 CSV）/ write an import template (.xlsx, or a directory for CSV)"),
) -> None:
    """导入单位和人员 / import units and persons from Excel or CSV."""
    from pingan.db import get_engine, session_scope
    from pingan.org import OrgImportError, load_org, read_org_files, write_template

    if template is not None:
        try:
            write_template(template)
        except OSError as exc:
            raise UserError(t("org.err.path", path=template, reason=exc.strerror or exc)) from None
        console.print(t("org.template.done", path=template))
        return
    if not files:
        raise UserError(t("org.import.no_files"))
    with _progress() as progress, session_scope(get_engine()) as session:
        reading = progress.add_task(t("org.import.reading"), total=None)

        def on_read(stage: str, done: int, total: int | None) -> None:
            progress.update(reading, description=f"{t('org.import.reading')} {stage}", completed=done, total=total)

        try:
            data = read_org_files(files, session=session, progress=on_read)
        except OrgImportError as exc:
            raise _import_error(exc) from None
        progress.update(reading, visible=False)
        writing = progress.add_task(t("org.import.writing"), total=4)

        def on_write(stage: str, done: int, total: int | None) -> None:
            progress.update(writing, description=f"{t('org.import.writing')} {t(_STAGES[stage])}", advance=1)

        try:
            result = load_org(session, data, actor=_actor(), progress=on_write)
        except OrgImportError as exc:
            raise _import_error(exc) from None
        if dry_run:
            session.rollback()
    console.print(_counts_table(t("org.import.title", source=data.source), _result_rows(result),
                                [t("org.col.new"), t("org.col.updated"), t("org.col.removed"), t("org.col.total")]))
    if dry_run:
        console.print(t("org.import.dry"))
    elif not result.changed:
        console.print(t("org.import.unchanged"))
    else:
        console.print(t("org.import.done"))


@command("export")
def export(
    file: Path = typer.Argument(..., help="目标 .xlsx 文件，或目录（写 units.csv 和 persons.csv）/ .xlsx file, or a directory for CSV"),
    with_secrets: bool = typer.Option(False, "--with-secrets", help="写出完整的通知渠道地址（含令牌）/ write full channel URLs (tokens!)"),
) -> None:
    """导出单位和人员（与导入格式相同）/ export units and persons in the import format."""
    from pingan.db import get_engine, session_scope
    from pingan.org import export_org

    with session_scope(get_engine()) as session:
        try:
            data = export_org(session, file, with_secrets=with_secrets)
        except OSError as exc:
            raise UserError(t("org.err.path", path=file, reason=exc.strerror or exc)) from None
    console.print(t("org.export.done", units=len(data.units), persons=len(data.persons), path=file))
    console.print(t("org.export.secrets") if with_secrets else t("org.export.masked"))


@command("org")
def show() -> None:
    """组织概况：各类单位、人员、通知渠道 / the organisation at a glance (never shows channel URLs)."""
    from pingan.db import get_engine, session_scope
    from pingan.org import kind_name

    with session_scope(get_engine()) as session:
        kinds = Counter(dict(session.execute(
            sa.select(Unit.kind, sa.func.count()).where(Unit.active.is_(True)).group_by(Unit.kind)).tuples().all()))
        persons = session.execute(sa.select(sa.func.count()).select_from(Person).where(Person.active.is_(True))).scalar_one()
        # Only the scheme (mailto, wecombot, …) is shown: it is no secret, the rest of the URL may be.
        schemes = Counter(url.split("://", 1)[0].lower() if "://" in url else "?"
                          for url in session.execute(sa.select(Channel.url).where(Channel.active.is_(True))).scalars())
        reachable = sa.select(Channel.person_id).where(Channel.active.is_(True))
        unreachable = session.execute(sa.select(sa.func.count()).select_from(Person).where(
            Person.active.is_(True), Person.id.not_in(reachable))).scalar_one()
        schools = [k.value for k in UnitKind if k not in (UnitKind.bureau, UnitKind.department)]

        def schools_without(role: RoleKind) -> int:
            holders = sa.select(Role.unit_id).where(Role.role == role.value)
            return session.execute(sa.select(sa.func.count()).select_from(Unit).where(
                Unit.active.is_(True), Unit.kind.in_(schools), Unit.id.not_in(holders))).scalar_one()

        no_principal, no_patron = schools_without(RoleKind.principal), schools_without(RoleKind.patron)
    if not kinds and not persons:
        console.print(t("org.show.empty"))
        return
    table = Table(title=t("org.show.title"), title_justify="left")
    table.add_column(t("org.col.kind"))
    table.add_column(t("org.col.count"), justify="right")
    for kind in UnitKind:
        if kinds.get(kind.value):
            table.add_row(f"{kind_name(kind)} / {kind.value}", str(kinds[kind.value]))
    table.add_section()
    table.add_row(t("org.show.active_units"), str(sum(kinds.values())))
    table.add_row(t("org.show.persons"), str(persons))
    table.add_row(t("org.show.channels"), str(sum(schemes.values())))
    for name, n in sorted(schemes.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(f"  {name}://", str(n))
    table.add_section()
    table.add_row(t("org.show.unreachable"), str(unreachable))
    table.add_row(t("org.show.schools_no_principal"), str(no_principal))
    table.add_row(t("org.show.schools_no_patron"), str(no_patron))
    console.print(table)
