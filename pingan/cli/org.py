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
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from models import Channel, Duty, Person, Role, RoleKind, Unit, UnitKind
from pingan.cli.app import UserError, command, console, enter_demo_mode, runtime
from pingan.core.i18n import register, t

register({
    "org.init.title": {"zh-CN": "初始化结果", "en": "Initialisation"},
    "org.init.unchanged": {"zh-CN": "无变化：数据库和职责目录已是最新，示例组织已载入", "en": "nothing changed: database and catalog are up to date, the demo organisation is loaded"},
    "org.init.unchanged_catalog": {"zh-CN": "无变化：数据库和职责目录都已是最新", "en": "nothing changed: database and catalog are up to date"},
    "org.init.migrated": {"zh-CN": "数据库已升级到 {rev}：{url}", "en": "database migrated to {rev}: {url}"},
    "org.init.current": {"zh-CN": "数据库结构已是最新（{rev}）：{url}", "en": "database schema is up to date ({rev}): {url}"},
    "org.db.unreachable": {"zh-CN": "无法连接数据库 {url}：{reason}", "en": "cannot use the database {url}: {reason}"},
    "org.db.not_ready": {"zh-CN": "数据库 {url} 尚未初始化或不是最新结构：先运行 pingan init",
                         "en": "the database {url} is not set up or not up to date: run pingan init first"},
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
    "org.import.left_out": {
        "zh-CN": "数据库中另有 {units} 个单位、{persons} 名人员不在文件中，保持原状；要停用它们，在文件中把 启用 填为 否，或加 --deactivate-missing",
        "en": "{units} unit(s) and {persons} person(s) in the database are not in the file and were kept; to deactivate them set 启用 to 否 in the file, or add --deactivate-missing",
    },
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
    "org.err.target": {"zh-CN": "请给出 .xlsx 文件，或一个目录（写入其中的 units.csv 和 persons.csv）",
                       "en": "give an .xlsx file, or a directory (units.csv and persons.csv are written in it)"},
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


def _result_rows(result, totals: dict[str, int] | None = None) -> list[tuple]:
    """(item, new, updated, removed, total): the rows of the file, or ``totals`` (of the database)."""
    return [(t(_STAGES[name]), c["new"], c["updated"], c["removed"],
             totals[name] if totals else c["new"] + c["updated"] + c["removed"] + c["unchanged"])
            for name, c in result.as_dict().items()]


def _totals(session) -> dict[str, int]:
    """Rows per organisation table in the database."""
    return {name: session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
            for name, model in (("units", Unit), ("persons", Person), ("roles", Role), ("channels", Channel))}


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)


def _target(path: Path) -> Path:
    """Where a workbook or the CSV pair goes: ``x.csv`` would become a directory, so it is refused."""
    if path.suffix and path.suffix.lower() != ".xlsx" and not path.is_dir():
        raise UserError(t("org.err.path", path=path, reason=t("org.err.target")))
    return path




def _db_error(url: str, exc: sa.exc.SQLAlchemyError) -> UserError:
    from pingan.core.migrate import safe_url

    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    return UserError(t("org.db.unreachable", url=safe_url(url), reason=reason[0]))


def _engine() -> sa.Engine:
    """pingan's engine, once its database is known to be at the newest schema (else one clear line)."""
    from pingan.core.db import get_engine
    from pingan.core.migrate import current, head, safe_url
    from pingan.core.settings import get_settings

    url = get_settings().db_url
    try:
        revision = current(url)
    except sa.exc.SQLAlchemyError as exc:
        raise _db_error(url, exc) from None
    if revision is None or revision != head():
        raise UserError(t("org.db.not_ready", url=safe_url(url)))
    return get_engine(url)


def _sync_duties(session, catalog) -> tuple[bool, tuple[int, int, int, int]]:
    """Write the catalog into ``duty``: (changed, (new, updated, deactivated, active total))."""
    from pingan.duties.cycle import sync_catalog

    table = Duty.__table__
    before = dict(session.execute(sa.select(table.c.key, table.c.active)).tuples().all())
    changed = sync_catalog(session, catalog)
    after = dict(session.execute(sa.select(table.c.key, table.c.active)).tuples().all())
    new = len(after.keys() - before.keys())
    removed = sum(1 for key, active in before.items() if active and not after[key])
    return bool(changed or removed), (new, changed - new, removed, sum(after.values()))


@command("init")
def init(demo: bool = typer.Option(False, "--demo", help="载入德惠市教育局示例组织 / load the Dehui demo organisation")) -> None:
    """建库、载入职责目录（可选示例组织）；可重复运行 / create or upgrade the database, load the catalog (and a demo organisation); safe to repeat."""
    from pingan.core.db import get_engine, session_scope
    from pingan.core.migrate import current, safe_url, upgrade
    from pingan.core.settings import record_in_home
    from pingan.org.demo import demo_organisation
    from pingan.org.service import missing_from_db, store_org

    if demo:
        enter_demo_mode()
    rt = runtime()
    if demo:  # checked: from now on every command on this home is in demo mode, no variable needed
        record_in_home(rt.settings.home, demo=True)
    url = rt.settings.db_url
    try:
        before = current(url)
        upgrade(url=url)
        after = current(url)
    except sa.exc.SQLAlchemyError as exc:
        raise _db_error(url, exc) from None
    changed = before != after
    with session_scope(get_engine(url)) as session:
        duties_changed, counts = _sync_duties(session, rt.catalog)
        changed |= duties_changed
        rows = [(t("org.item.duties"), *counts)]
        if demo:  # only what is missing: an operator's edits to demo rows are kept
            result = store_org(session, missing_from_db(session, demo_organisation()), actor=_actor())
            changed |= result.changed
            rows += _result_rows(result, _totals(session))
            from pingan.accounts.service import ensure_demo_accounts
            from pingan.core.clock import now

            session.flush()
            changed |= bool(ensure_demo_accounts(session, as_of=now()))
    console.print(t("org.init.migrated" if before != after else "org.init.current", rev=after, url=safe_url(url)))
    console.print(_counts_table(t("org.init.title"), rows, [t("org.col.new"), t("org.col.updated"),
                                                           t("org.col.removed"), t("org.col.total")]))
    if not changed:
        console.print(t("org.init.unchanged" if demo else "org.init.unchanged_catalog"))


@command("import")
def import_(
    files: Optional[list[Path]] = typer.Argument(None, help="单位/人员表：.xlsx，或 units.csv persons.csv，或包含它们的目录 / workbook, CSV pair or directory"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查并显示变更，不写入 / check and show the changes, write nothing"),
    template: Optional[Path] = typer.Option(None, "--template", help="生成导入模板（.xlsx，或目录则生成 CSV）/ write an import template (.xlsx, or a directory for CSV)"),
    deactivate_missing: bool = typer.Option(
        False, "--deactivate-missing",
        help="文件中的单位表/人员表是全量的：数据库中有而文件中没有的单位或人员设为停用（不删除）"
             " / the file's tables are complete: units or persons it leaves out are deactivated (never deleted)"),
) -> None:
    """导入单位和人员；任何一行有错都不写入 / import units and persons from Excel or CSV; one bad row and nothing is written."""
    from pingan.core.db import session_scope
    from pingan.org.data import OrgImportError
    from pingan.org.service import store_org
    from pingan.org.sheets import read_org_files, write_template

    if template is not None:
        try:
            write_template(_target(template))
        except OSError as exc:
            raise UserError(t("org.err.path", path=template, reason=exc.strerror or exc)) from None
        console.print(t("org.template.done", path=template))
        return
    if not files:
        raise UserError(t("org.import.no_files"))
    engine = _engine()
    with _progress() as progress, session_scope(engine) as session:
        reading = progress.add_task(t("org.import.reading"), total=None)

        def on_read(stage: str, done: int, total: int | None) -> None:
            progress.update(reading, description=f"{t('org.import.reading')} {stage}", completed=done, total=total)

        try:
            data = read_org_files(files, session=session, progress=on_read, deactivate_missing=deactivate_missing)
        except OrgImportError as exc:
            raise _import_error(exc) from None
        progress.update(reading, visible=False)
        writing = progress.add_task(t("org.import.writing"), total=4)

        def on_write(stage: str, done: int, total: int | None) -> None:
            progress.update(writing, description=f"{t('org.import.writing')} {t(_STAGES[stage])}", advance=1)

        try:
            result = store_org(session, data, actor=_actor(), progress=on_write, deactivate_missing=deactivate_missing)
        except OrgImportError as exc:
            raise _import_error(exc) from None
        if dry_run:
            session.rollback()
    console.print(_counts_table(t("org.import.title", source=data.source), _result_rows(result),
                                [t("org.col.new"), t("org.col.updated"), t("org.col.removed"), t("org.col.total")]))
    if result.left_out:
        console.print(t("org.import.left_out", units=result.left_out.get("units", 0),
                        persons=result.left_out.get("persons", 0)))
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
    from pingan.core.db import session_scope
    from pingan.org.service import export_org

    _target(file)
    with session_scope(_engine()) as session:
        try:
            data = export_org(session, file, with_secrets=with_secrets)
        except OSError as exc:
            raise UserError(t("org.err.path", path=file, reason=exc.strerror or exc)) from None
    console.print(t("org.export.done", units=len(data.units), persons=len(data.persons), path=file))
    console.print(t("org.export.secrets") if with_secrets else t("org.export.masked"))


@command("org")
def show() -> None:
    """组织概况：各类单位、人员、通知渠道 / the organisation at a glance (never shows channel URLs)."""
    from pingan.core.db import session_scope
    from pingan.org.data import kind_name

    with session_scope(_engine()) as session:
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
