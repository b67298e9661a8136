"""``pingan db …``: the database schema."""

from __future__ import annotations

import typer

from pingan.cli.app import app, console, user_errors

db_app = typer.Typer(help="数据库 / database", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@user_errors
def upgrade(revision: str = typer.Argument("head", help="目标版本（默认最新）/ target revision (default: the latest)")) -> None:
    """把数据库升级到最新结构 / migrate the database to the latest schema."""
    from pingan.core.migrate import upgrade as run_upgrade

    run_upgrade(revision)
    console.print("数据库已是最新结构 / database schema is up to date")
