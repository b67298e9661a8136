"""The ``pingan`` command (Typer + Rich). Each feature keeps its commands in its own module."""

from __future__ import annotations

import sys

from pingan.cli.app import UserError, app, console, err_console, error_label

# Importing the command modules registers their commands on ``app``.
from pingan.cli import db as _db  # noqa: F401,E402
from pingan.cli import duties as _duties  # noqa: F401,E402
from pingan.cli import sensitive as _sensitive  # noqa: F401,E402
from pingan.cli import org as _org  # noqa: F401,E402
from pingan.cli import mainjob as _mainjob  # noqa: F401,E402
from pingan.cli import incident as _incident  # noqa: F401,E402
from pingan.cli import watch as _watch  # noqa: F401,E402
from pingan.cli import evidence as _evidence  # noqa: F401,E402
from pingan.cli import hazard as _hazard  # noqa: F401,E402
from pingan.cli import report as _report  # noqa: F401,E402
from pingan.cli import replay as _replay  # noqa: F401,E402
from pingan.cli import account as _account  # noqa: F401,E402
from pingan.cli import calendar as _calendar  # noqa: F401,E402
from pingan.cli import catalog as _catalog  # noqa: F401,E402
from pingan.cli import person as _person  # noqa: F401,E402
from pingan.cli.language import localize_app  # noqa: E402

# Help on every option, in the reader's language (before Typer builds the commands).
localize_app(app)


def main() -> None:
    try:
        app(standalone_mode=True)
    except UserError as exc:  # raised outside a command (settings, for instance)
        err_console.print(f"[bold red]{error_label()}[/] {exc}")
        sys.exit(2)


__all__ = ["UserError", "app", "console", "err_console", "main"]
