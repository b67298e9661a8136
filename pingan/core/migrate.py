"""Database migrations (Alembic) without alembic.ini, from any working directory.

``pingan db upgrade`` calls :func:`upgrade`; the revisions live in ``migrations/`` at the
top of the repository. For developers, alembic.ini drives the same environment::

    python -m pingan.core.migrate revision -m "hazard register"   # autogenerate the next NNNN_ revision
    python -m pingan.core.migrate upgrade [--url URL] [REVISION]
    python -m pingan.core.migrate downgrade [--url URL] REVISION
    python -m pingan.core.migrate current [--url URL]

Without a URL the database is pingan's: ``PINGAN_DATABASE_URL``, else ``PINGAN_HOME/pingan.db``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pingan.core.settings import REPO_ROOT, get_settings

MIGRATIONS_DIR = REPO_ROOT / "migrations"
# pg_advisory_xact_lock key that serialises concurrent upgrades of one PostgreSQL database.
ADVISORY_LOCK_ID = 0x70696E67616E  # "pingan"
REVISION_ID = re.compile(r"^(\d{4})_")


class MigrationError(RuntimeError):
    """The migrations cannot run (missing folder, unknown revision, …)."""


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here, as in :func:`pingan.core.db.make_engine`."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked, fit for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":…"


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite database file, so a fresh PINGAN_HOME just works."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def resolve_url(cfg: Config) -> str:
    """The database a Config points at; see the order in migrations/env.py."""
    url = cfg.attributes.get("url")
    if not url:
        x_args = dict(arg.split("=", 1) for arg in (getattr(cfg.cmd_opts, "x", None) or []) if "=" in arg)
        url = x_args.get("url")
    if not url:
        url = cfg.get_main_option("sqlalchemy.url") or None
    return url or get_settings().db_url


def config(url: str | None = None) -> Config:
    """An Alembic Config for pingan's migrations, with no ini file involved.

    ``url`` defaults to pingan's settings when env.py runs; it is stored in
    ``config.attributes['url']``, never in the ini options, because ConfigParser would read
    ``%`` in a password as interpolation.
    """
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise MigrationError(
            f"Alembic migrations not found at {MIGRATIONS_DIR}: pingan runs from a source checkout "
            "(pip install -e .)"
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s")
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_path_separator", "os")
    if url:
        cfg.attributes["url"] = url
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Migrate the database (pingan's by default) up to ``revision``."""
    command.upgrade(config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    """Migrate the database down to ``revision`` (``base`` empties it)."""
    command.downgrade(config(url), revision)


def current(url: str | None = None) -> str | None:
    """The database's revision, None when it has never been migrated."""
    url = normalise_url(url or get_settings().db_url)
    if url.startswith("sqlite"):
        database = sa.make_url(url).database or ""
        if database not in ("", ":memory:") and not database.startswith("file:") and not Path(database).exists():
            return None  # do not create an empty file just to look
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise MigrationError(f"the database has several revisions {heads}: merge the branches")
    return heads[0] if heads else None


def head() -> str:
    """The newest revision in migrations/."""
    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"migrations/ has {len(heads)} heads {heads}: run `alembic merge heads`")
    return heads[0]


def next_revision_id(message: str) -> str:
    """``NNNN_words_of_the_message``, at most 32 characters (alembic_version's width)."""
    numbers = [int(m.group(1)) for p in (MIGRATIONS_DIR / "versions").glob("*.py") if (m := REVISION_ID.match(p.name))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_") or "revision"
    return f"{max(numbers, default=0) + 1:04d}_{slug}"[:32].rstrip("_")


def revision(message: str, rev_id: str | None = None, autogenerate: bool = True, url: str | None = None) -> Path | None:
    """Write the next revision; autogenerated against a scratch SQLite database at head.

    Returns the new file, or None when autogenerate found no difference between the models
    and the migrations. Pass ``url`` to compare against another database (at head) instead.
    """
    rev_id = rev_id or next_revision_id(message)
    if len(rev_id) > 32:
        raise MigrationError(f"revision id {rev_id!r} is longer than 32 characters")
    with tempfile.TemporaryDirectory(prefix="pingan-revision-") as scratch:
        url = url or f"sqlite:///{Path(scratch) / 'head.db'}"
        cfg = config(url)
        if autogenerate:
            command.upgrade(cfg, "head")
            cfg.attributes["autogenerate"] = True
        script = command.revision(cfg, message=message, autogenerate=autogenerate, rev_id=rev_id)
    if cfg.attributes.get("empty_autogenerate") or script is None:
        return None
    scripts = script if isinstance(script, list) else [script]
    return Path(scripts[0].path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pingan.core.migrate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("upgrade")
    p.add_argument("revision", nargs="?", default="head")
    p.add_argument("--url")
    p = sub.add_parser("downgrade")
    p.add_argument("revision")
    p.add_argument("--url")
    p = sub.add_parser("current")
    p.add_argument("--url")
    p = sub.add_parser("revision", help="autogenerate the next revision from the models")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--rev-id", help="default: the next NNNN_ number and the message")
    p.add_argument("--empty", action="store_true", help="write an empty revision to fill in by hand")
    p.add_argument("--url", help="compare against this database (at head) instead of a scratch SQLite")
    args = parser.parse_args(argv)
    if args.cmd == "upgrade":
        upgrade(args.revision, args.url)
        print(f"database at {current(args.url)}")
    elif args.cmd == "downgrade":
        downgrade(args.revision, args.url)
        print(f"database at {current(args.url)}")
    elif args.cmd == "current":
        print(current(args.url) or "(not migrated)")
    else:
        path = revision(args.message, args.rev_id, autogenerate=not args.empty, url=args.url)
        if path is None:
            print("no change between the models and the migrations: no revision written")
        else:
            print(f"wrote {path}: read it, tidy it, and run the tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
