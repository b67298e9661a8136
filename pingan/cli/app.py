"""The Typer app shared by the command modules, and the one way user errors are printed."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn

import pydantic
import sqlalchemy as sa
import typer
from rich.console import Console

app = typer.Typer(
    name="pingan",
    help="pingan — 学校安全职责的定期工作流 / recurring school-safety duties as Prefect workflows",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """An error the user caused: printed as one line, exit code 2, no traceback."""


def user_errors(func: Callable) -> Callable:
    """Turn the errors a user can cause into one clear line and a non-zero exit."""
    from pingan.duties.catalog import CatalogError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (UserError, CatalogError) as exc:
            fail(str(exc))
        except pydantic.ValidationError as exc:  # only settings are validated outside a command's own checks
            problems = "; ".join((f"PINGAN_{'_'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "")
                                 + e["msg"].removeprefix("Value error, ") for e in exc.errors())
            fail(f"设置有误 / bad setting: {problems}")
        except sa.exc.OperationalError as exc:
            from pingan.core.migrate import safe_url
            from pingan.core.settings import get_settings

            reason = str(exc.orig or exc).strip().splitlines()[0]
            fail(f"无法使用数据库 / cannot use the database {safe_url(get_settings().db_url)}: {reason}")

    return wrapper


def say(zh: str, en: str) -> str:
    """A message in the reader's language (PINGAN_LOCALE): one language per line."""
    from pingan.cli.language import current_locale

    return en if current_locale() == "en" else zh


def error_label() -> str:
    """``错误：`` or ``error:``, in the reader's language (PINGAN_LOCALE)."""
    from pingan.cli.language import current_locale

    return "error:" if current_locale() == "en" else "错误："


def fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]{error_label()}[/] {message}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(2)


def command(*args, **kwargs):
    """``@command("name")``: register a command whose user errors print as one line."""

    def decorate(func: Callable) -> Callable:
        return app.command(*args, **kwargs)(user_errors(func))

    return decorate


def parse_as_of(value: str | None):
    """``--as-of``: an instant in Asia/Shanghai (``2026-11-23`` or ``2026-11-23T09:00``); default now."""
    from pingan.core.clock import now
    from pingan.core.periods import parse_instant

    if not value:
        return now()
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UserError(f"--as-of：{exc}") from None


def parse_day(option: str, value: str):
    """A date option (``2026-11-23``); a bad one is a user error naming the option."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(say(f"{option}：{value!r} 不是日期（如 2026-11-23）", f"{option}: {value!r} is not a date like 2026-11-23")) from None


def runtime():
    """The runtime (settings, the catalog with its local overrides), checked before any write.

    Catalog and settings errors reach ``user_errors``; other problems of loading it (the
    holiday file, say) and a signing key refused outside demo mode become a one-line user error
    here.
    """
    from pingan.duties.catalog import CatalogError
    from pingan.duties.runtime import get_runtime

    try:
        rt = get_runtime()
        rt.settings.check_secrets()  # links are signed in most commands: a weak key stops them before any write
        return rt
    except (CatalogError, pydantic.ValidationError):
        raise
    except ValueError as exc:
        raise UserError(str(exc)) from None


def enter_demo_mode() -> None:
    """``--demo``: this process runs in demo mode; the command records it in the home once its checks pass."""
    import os

    from pingan.core.settings import reset_settings
    from pingan.duties.runtime import reset_runtime

    os.environ["PINGAN_DEMO"] = "1"
    reset_settings()
    reset_runtime()


def send_released(rt, as_of) -> int:
    """After a command queued notices: the dispatcher sends what is released by ``as_of``.

    With a Prefect API (``pingan up`` running, or a scale-out server) the dispatch deployment is
    started — it alone sends; without one, the same dispatcher runs here. Returns the messages
    sent here (0 when the deployment does it).
    """
    import os

    if os.environ.get("PREFECT_API_URL"):
        from tasks.delivery import trigger_dispatch

        trigger_dispatch(as_of, reason="cli")
        return 0
    from pingan.delivery.workflow import dispatch

    return dispatch(rt, as_of).sent
