"""Alembic environment for pingan.

Where the database is, first match wins:

1. ``config.attributes["connection"]``: an open SQLAlchemy connection (tests, embedding);
2. ``config.attributes["url"]``: set by :func:`pingan.core.migrate.config`;
3. ``-x url=…`` on the alembic command line;
4. ``sqlalchemy.url`` in alembic.ini, when not empty;
5. pingan's settings: ``PINGAN_DATABASE_URL``, else the SQLite file in ``PINGAN_HOME``.

The target metadata is ``SQLModel.metadata`` once ``models`` is imported. Every operation is
rendered in batch mode (``with op.batch_alter_table(…)``), so one revision works on SQLite,
which needs it to alter tables, and on PostgreSQL, where batch mode is plain ALTER TABLE.

Upgrades are serialised: on PostgreSQL with a transaction-level advisory lock, on SQLite with
``BEGIN IMMEDIATE``; and they are transactional on both, so a failed upgrade changes nothing
and several workers starting at once converge on the same schema.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from models.types import AwareDateTime
from pingan.core.migrate import ADVISORY_LOCK_ID, ensure_sqlite_dir, normalise_url, resolve_url

config = context.config
log = logging.getLogger("alembic.env")

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def render_item(type_: str, obj, autogen_context):
    """Render pingan's column types so a generated revision imports cleanly.

    ``AwareDateTime`` becomes ``models.types.AwareDateTime()``; SQLModel's ``AutoString``
    becomes a plain ``sa.String`` (migrations then need no sqlmodel import); everything
    else, including ``sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')``, is left to
    Alembic, which adds the ``postgresql`` import itself.
    """
    if type_ != "type":
        return False
    if isinstance(obj, AwareDateTime):
        autogen_context.imports.add("import models.types")
        return "models.types.AwareDateTime()"
    if type(obj).__name__ == "AutoString" and type(obj).__module__.startswith("sqlmodel"):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if isinstance(obj, postgresql.JSONB) and type(obj.astext_type) is sa.Text and obj.astext_type.length is None:
        # Alembic's own rendering says ``astext_type=Text()``, a name the file does not import.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    return False


def process_revision_directives(context_, revision, directives):
    """``--autogenerate`` that finds no change writes no file (and says so)."""
    cmd_opts = getattr(config, "cmd_opts", None)
    autogenerate = getattr(cmd_opts, "autogenerate", False) or config.attributes.get("autogenerate", False)
    if autogenerate and directives and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        config.attributes["empty_autogenerate"] = True
        log.info("models and migrations agree: no revision written")


def _configure(connection: sa.Connection | None = None, url: str | None = None, **extra) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        process_revision_directives=process_revision_directives,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
        **extra,
    )


def _engine(url: str) -> sa.Engine:
    """An engine for migrating only: no pool, and on SQLite real transactions around DDL."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, poolclass=NullPool)
    # pysqlite runs DDL outside any transaction; take over BEGIN so the whole upgrade is one
    # transaction, IMMEDIATE so concurrent upgrades wait for each other instead of racing.
    # foreign_keys stays off (SQLite's default): batch mode copies and drops tables.
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _run(connection: sa.Connection, own_sqlite_transactions: bool = False) -> None:
    # With BEGIN under our control SQLite DDL is transactional: one transaction for the run.
    _configure(connection=connection, **({"transactional_ddl": True} if own_sqlite_transactions else {}))
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_ID})
        context.run_migrations()


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    _configure(url=normalise_url(resolve_url(config)))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = normalise_url(resolve_url(config))
    ensure_sqlite_dir(url)
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            _run(connection, own_sqlite_transactions=url.startswith("sqlite"))
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
