"""``pingan catalog list | show``: the duties as the operator should read them — which numbers come
from the documents and which are this installation's defaults."""

from __future__ import annotations

import typer
from rich.table import Table

from pingan.cli.app import UserError, app, console, user_errors
from pingan.core.i18n import pick, register, t

catalog_app = typer.Typer(help="职责目录：依据、频次与本地默认值 / the duty catalog, its sources and local defaults",
                          no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

register({
    "catalog.title": {"zh-CN": "职责目录（※ 为本地默认值，非文件规定）", "en": "Duty catalog (※ marks a local default, not the documents')"},
    "catalog.duty": {"zh-CN": "职责", "en": "duty"},
    "catalog.clause": {"zh-CN": "依据", "en": "clause"},
    "catalog.cadence": {"zh-CN": "频次", "en": "cadence"},
    "catalog.defaults": {"zh-CN": "本地默认值", "en": "local defaults"},
    "catalog.off": {"zh-CN": "（已停用）", "en": " (switched off)"},
    "catalog.hazards": {"zh-CN": "隐患整改时限（※ 本地默认值）：{levels}", "en": "Hazard rectification deadlines (※ local defaults): {levels}"},
    "catalog.ld.cadence": {"zh-CN": "频次", "en": "cadence"},
    "catalog.ld.window": {"zh-CN": "办理时限", "en": "due window"},
    "catalog.ld.sensitive": {"zh-CN": "敏感时期加密频次", "en": "tightening in sensitive periods"},
    "catalog.ld.carrier": {"zh-CN": "责任主体", "en": "carrier"},
    "catalog.note": {"zh-CN": "说明", "en": "note"},
    "catalog.text": {"zh-CN": "原文", "en": "text"},
    "catalog.window": {"zh-CN": "时限", "en": "window"},
    "catalog.escalation": {"zh-CN": "督办", "en": "escalation"},
})


def defaults_label(spec) -> str:
    """The local defaults of a duty, marked ※, in the reader's language ('' when none)."""
    return "※ " + "、".join(t(f"catalog.ld.{part}") for part in spec.local_defaults) if spec.local_defaults else ""


@catalog_app.command("list")
@user_errors
def list_() -> None:
    """全部职责及其本地默认值 / every duty and its local defaults."""
    from pingan.duties.runtime import get_runtime

    rt = get_runtime()
    table = Table(title=t("catalog.title"), title_justify="left")
    for col in ("catalog.duty", "catalog.clause", "catalog.cadence", "catalog.defaults"):
        table.add_column(t(col))
    for spec in rt.catalog.duties.values():
        name = pick(spec.name, spec.name_en) + ("" if spec.enabled else t("catalog.off"))
        cadence = spec.cadence.every + (f" ×{spec.cadence.times}" if spec.cadence.times > 1 else "")
        table.add_row(f"{name}\n[dim]{spec.key}[/]", spec.source.clause, cadence, defaults_label(spec))
    console.print(table)
    try:
        from pingan.hazards.rules import hazard_config

        levels = [s for s in hazard_config(rt).hazard_levels.values() if s.local_default]
    except Exception:  # noqa: BLE001 - the hazard file has its own command and errors
        levels = []
    if levels:
        console.print(t("catalog.hazards", levels="；".join(
            f"{pick(s.name, s.name_en)} {s.deadline.days}{'个工作日' if s.deadline.count == 'working_days' else '天'}"
            for s in levels)))


@catalog_app.command("show")
@user_errors
def show(key: str = typer.Argument(..., help="职责编号 / duty key")) -> None:
    """一项职责的全部内容，本地默认值标明 / one duty in full, its local defaults marked."""
    from pingan.duties.runtime import get_runtime

    rt = get_runtime()
    if key not in rt.catalog.duties:
        raise UserError(f"没有职责 {key!r} / no duty {key!r} (pingan catalog list)")
    spec = rt.catalog.duties[key]
    mark = set(spec.local_defaults)
    star = lambda part: " ※" if part in mark else ""  # noqa: E731
    table = Table(show_header=False, title=f"{pick(spec.name, spec.name_en)} · {spec.key}", title_justify="left")
    table.add_row(t("catalog.clause"), f"{rt.catalog.documents.get(spec.source.document, spec.source.document)} {spec.source.clause}")
    table.add_row(t("catalog.text"), spec.text)
    table.add_row(t("catalog.cadence") + star("cadence"), spec.cadence.model_dump_json(exclude_defaults=True))
    table.add_row(t("catalog.window") + star("window"), spec.window.model_dump_json(exclude_defaults=True) or "{}")
    if spec.sensitive:
        table.add_row(t("catalog.ld.sensitive") + star("sensitive"), spec.sensitive.every)
    table.add_row(t("catalog.escalation"), spec.escalation.key)
    if spec.local_defaults:
        table.add_row(t("catalog.defaults"), defaults_label(spec))
    if spec.default_note:
        table.add_row(t("catalog.note"), spec.default_note)
    console.print(table)


def _coverage_inputs():
    from pingan.core.settings import REPO_ROOT, get_settings
    from pingan.duties.coverage import load_mapping
    from pingan.duties.runtime import get_runtime

    rt = get_runtime()
    directory = get_settings().catalog_dir
    sources_dir = directory / "sources"
    sources = {}
    for doc in sorted(rt.catalog.documents):
        path = sources_dir / doc
        if not path.is_file():
            raise UserError(f"{path}: 找不到来源文件 / source document not found")
        sources[doc] = path.read_text(encoding="utf-8")
    return rt.catalog, sources, load_mapping(directory / "coverage.yaml"), REPO_ROOT / "docs" / "COVERAGE.md"


@catalog_app.command("coverage")
@user_errors
def coverage(
    write: bool = typer.Option(False, "--write", help="写出 docs/COVERAGE.md / write docs/COVERAGE.md"),
    check: bool = typer.Option(False, "--check", help="与 docs/COVERAGE.md 比对，不一致则失败 / fail when it is stale"),
) -> None:
    """两份文件每一条款的对应职责（或不设职责的理由）/ every clause of both documents and its duties."""
    from pingan.duties.coverage import problems, render

    catalog, sources, mapping, out = _coverage_inputs()
    found = problems(catalog, sources, mapping)
    if found:
        raise UserError(f"catalog/coverage.yaml：{found[0]}" + (f"（另有 {len(found) - 1} 处 / {len(found) - 1} more）" if len(found) > 1 else ""))
    text = render(catalog, sources, mapping)
    if check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            raise UserError(f"{out} 已过期，请运行 pingan catalog coverage --write / is stale: run pingan catalog coverage --write")
        console.print(f"{out} 与目录一致 / is up to date")
        return
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        console.print(f"已写入 {out} / written")
        return
    console.print(text, markup=False, highlight=False)
