"""``pingan calendar status | template | import``: which source rules each year's working days,
and the State Council's holiday notice typed in once and validated."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from pingan.cli.app import UserError, app, console, parse_as_of, user_errors
from pingan.core.i18n import register, t

cal_app = typer.Typer(help="工作日历：节假日来源、模板与导入 / work calendar: holiday sources, template, import",
                      no_args_is_help=True)
app.add_typer(cal_app, name="calendar")

register({
    "cal.title": {"zh-CN": "工作日历来源（本地文件：{path}）", "en": "Work calendar sources (local file: {path})"},
    "cal.year": {"zh-CN": "年份", "en": "year"},
    "cal.source": {"zh-CN": "来源", "en": "source"},
    "cal.official": {"zh-CN": "正式", "en": "official"},
    "cal.provisional": {"zh-CN": "临时放假日（待国务院通知确认）", "en": "provisional days off (until the State Council's notice)"},
    "cal.src.local": {"zh-CN": "本地文件（已导入的国务院通知）", "en": "local file (imported State Council notice)"},
    "cal.src.chinese_calendar": {"zh-CN": "chinese-calendar", "en": "chinese-calendar"},
    "cal.src.holidays": {"zh-CN": "法定节假日（holidays 包，临时，不含调休）",
                         "en": "statutory holidays (holidays package, provisional, no make-up working days)"},
    "cal.src.weekends": {"zh-CN": "仅周末（无节假日数据）", "en": "weekends only (no holiday data)"},
    "cal.yes": {"zh-CN": "是", "en": "yes"},
    "cal.no": {"zh-CN": "否", "en": "no"},
    "cal.none": {"zh-CN": "—", "en": "—"},
    "cal.warn_next": {"zh-CN": "提醒：{year} 年放假安排尚无正式来源，请在国务院办公厅通知发布后运行 pingan calendar template {year}，核对后 pingan calendar import。",
                      "en": "Reminder: {year} has no official holiday arrangement yet; when the State Council's notice is out, run pingan calendar template {year}, correct it, then pingan calendar import."},
    "cal.template_written": {"zh-CN": "已写出 {year} 年模板：{path}（按国务院通知核对后导入）",
                             "en": "template for {year} written to {path} (check it against the State Council's notice, then import)"},
    "cal.exists": {"zh-CN": "{path}：文件已存在，不覆盖", "en": "{path}: already exists, not overwritten"},
    "cal.bad_year": {"zh-CN": "年份 {year} 不在 2000–2100 之内", "en": "year {year} is not within 2000–2100"},
    "cal.imported": {"zh-CN": "已导入 {years} 年放假安排到 {path}：节假日 {holidays} 天，调休上班 {workdays} 天",
                     "en": "imported the arrangement of {years} into {path}: {holidays} days off, {workdays} make-up working days"},
    "cal.bad_file": {"zh-CN": "节假日文件有误", "en": "bad holiday file"},
})


def calendar_warning_line(calendar, day) -> str | None:
    """The warning ``pingan up`` and ``pingan status`` print while next year's holidays are not official."""
    from pingan.core.calendar import calendar_warning

    year = calendar_warning(calendar, day)
    return None if year is None else t("cal.warn_next", year=year)


@cal_app.command("status")
@user_errors
def status(
    year: list[int] | None = typer.Option(None, "--year", help="年份，可重复（默认去年至明年）/ year, repeatable"),
    as_of: str | None = typer.Option(None, "--as-of", help="视为此时刻 / instant, default now"),
) -> None:
    """每年工作日由哪个来源决定，以及临时放假日 / which source rules each year, and provisional days."""
    from pingan.core.calendar import HolidayFileError, holiday_runs
    from pingan.core.settings import get_settings
    from pingan.duties.runtime import get_runtime

    moment = parse_as_of(as_of)
    try:
        cal = get_runtime().calendar
    except HolidayFileError as exc:
        raise UserError(f"{t('cal.bad_file')}: {exc}") from None
    years = sorted(set(year or [moment.year - 1, moment.year, moment.year + 1]))
    table = Table(title=t("cal.title", path=get_settings().holidays_path), title_justify="left")
    for head in ("cal.year", "cal.source", "cal.official", "cal.provisional"):
        table.add_column(t(head))
    for y in years:
        source = cal.source(y)
        days = cal.provisional_days(y)
        listed = "\n".join(f"{n} {a.isoformat()}" + (f"–{b.isoformat()}" if b != a else "")
                           for n, a, b in holiday_runs(days)) or t("cal.none")
        table.add_row(str(y), t(f"cal.src.{source}"), t("cal.yes") if cal.is_official(y) else t("cal.no"), listed)
    console.print(table)
    warning = calendar_warning_line(cal, moment.date())
    if warning is not None:
        console.print(warning, style="bold yellow")


@cal_app.command("template")
@user_errors
def template(
    year: int = typer.Argument(..., help="年份 / year"),
    out: Path | None = typer.Option(None, "--out", help="输出文件（默认 <home>/holidays-YEAR.yaml）/ output file"),
) -> None:
    """写出一年的节假日模板，按国务院办公厅通知填写 / write a file to type the State Council's notice into."""
    from pingan.core.calendar import template_text
    from pingan.core.settings import get_settings

    if not 2000 <= year <= 2100:
        raise UserError(t("cal.bad_year", year=year))
    path = out or get_settings().home / f"holidays-{year}.yaml"
    if path.exists():
        raise UserError(t("cal.exists", path=path))
    text = template_text(year)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None
    console.print(t("cal.template_written", year=year, path=path))


@cal_app.command("import")
@user_errors
def import_(file: Path = typer.Argument(..., help="填好的节假日文件 / the filled-in holiday file")) -> None:
    """校验并导入节假日文件到本地节假日文件；有误则一行报错、不写入 / validate and import; on error nothing is written."""
    from pingan.core.calendar import HolidayFileError, merged_text, read_import
    from pingan.core.settings import get_settings

    target = get_settings().holidays_path
    try:
        imported = read_import(file)
        text = merged_text(target, imported)
    except HolidayFileError as exc:
        raise UserError(f"{t('cal.bad_file')}: {exc}") from None
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # whole or not at all
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{target}: {exc.strerror or exc}") from None
    years = "、".join(str(y) for y in sorted(imported["local_years"]))
    console.print(t("cal.imported", years=years, path=target, holidays=len(imported["holidays"]),
                    workdays=len(imported["workdays"])))
