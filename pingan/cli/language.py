"""One language per ``PINGAN_LOCALE`` in the command line's help and errors, and help on every option.

The commands write their help as ``中文 / English`` side by side (one source, both readers);
:func:`localize_app` keeps the side of the reader's locale in every command's and option's help
before Typer builds the commands, and fills in the help of the options every command shares
(``--as-of``, ``--json``, ``--by``, …) where a command left it out. :func:`one_language` does the
same for an error line.
"""

from __future__ import annotations

import inspect
import os
import re

# A CJK character or full-width punctuation: the Chinese side of a text.
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef“”]")
# "中文 / English": a slash between the Chinese side and the English one (the English side starts
# with a letter, a quote, a bracket, a dot or a dash); "包保/分管" (no space, Chinese on both
# sides) is not a separator.
SEPARATOR = re.compile(r"\s*/\s+(?=[A-Za-z.`'\"(<\-])|(?<=[\u4e00-\u9fff）」”])\s*/\s*(?=[A-Za-z.`])")

# The help of options shared by many commands, where a command gave none.
COMMON_HELP = {
    "--as-of": "时刻（北京时间），如 2026-11-23 或 2026-11-23T09:00；默认现在 / "
               "instant (Asia/Shanghai), e.g. 2026-11-23 or 2026-11-23T09:00; default now",
    "--json": "以 JSON 输出（供脚本使用）/ print JSON (for scripts)",
    "--limit": "最多显示的条数 / show at most this many",
    "--by": "操作人（人员编码或姓名），记入审计 / who does it (person code or name), for the audit trail",
    "--note": "说明，记入记录 / a note kept with the record",
    "--photo": "照片文件（可多次给出）/ photo files (repeatable)",
    "hazard_id": "隐患编号（见 pingan hazard list）/ hazard id (see pingan hazard list)",
}

# Typer's own words in its help panels, in Chinese.
TYPER_ZH = {
    "ARGUMENTS_PANEL_TITLE": "参数", "OPTIONS_PANEL_TITLE": "选项", "COMMANDS_PANEL_TITLE": "命令",
    "ERRORS_PANEL_TITLE": "错误", "DEFAULT_STRING": "[默认：{}]", "REQUIRED_LONG_STRING": "[必填]",
    "ABORTED_TEXT": "已中止。", "RICH_HELP": "用 [blue]'{command_path} {help_option}'[/] 查看帮助。",
}


def current_locale() -> str:
    """The locale of the help, read before the settings are checked (a bad setting must not stop --help)."""
    try:
        from pingan.core.settings import get_settings

        return get_settings().locale
    except Exception:  # noqa: BLE001 — any bad setting is reported by the command itself
        return "en" if os.environ.get("PINGAN_LOCALE", "").lower().startswith("en") else "zh-CN"


def one_language(text: str | None, locale: str | None = None) -> str | None:
    """The side of a ``中文 / English`` text for ``locale``; a text without both sides as it is."""
    if not text or not CJK.search(text):
        return text
    match = SEPARATOR.search(text)
    if not match:
        return text
    zh, en = text[:match.start()].rstrip(), text[match.end():].strip()
    if not en:
        return text
    return en if (locale or current_locale()) == "en" else zh


def _params(callback):
    for name, param in inspect.signature(callback).parameters.items():
        info = param.default
        if hasattr(info, "help") and hasattr(info, "param_decls"):
            long = [d for d in (info.param_decls or ()) if d.startswith("--")]
            yield (long[0].split("/")[0] if long else name), info


def localize_app(app, locale: str | None = None) -> None:
    """Help on every option, and every help text in one language, for the whole Typer ``app``."""
    locale = locale or current_locale()
    app.info.help = one_language(app.info.help, locale)
    for command in app.registered_commands:
        command.help = one_language(command.help or inspect.getdoc(command.callback), locale)
        for name, info in _params(command.callback):
            info.help = one_language(info.help or COMMON_HELP.get(name), locale)
    for group in app.registered_groups:
        sub = group.typer_instance
        sub.info.help = one_language(sub.info.help, locale)
        group.help = one_language(group.help, locale)
        localize_app(sub, locale)
    if locale != "en":
        from typer import rich_utils

        for name, text in TYPER_ZH.items():
            if hasattr(rich_utils, name):
                setattr(rich_utils, name, text)
