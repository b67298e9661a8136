"""Fresh databases for one bench run, migrated to head, removed afterwards.

SQLite: a file in a temporary folder (the folder is the run's PINGAN_HOME too).
PostgreSQL: ``pingan_bench_<random>`` created on the server the URL names (template0, UTF8)
and dropped at the end, open connections first; nothing else on that server is touched.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from pingan.core.db import dispose_engines
from pingan.core.migrate import normalise_url, safe_url


@dataclass(frozen=True)
class Database:
    backend: str  # "sqlite" | "postgresql"
    url: str  # with credentials: never print it, print ``shown``
    shown: str
    home: Path
    server_version: str = ""


def _admin(server_url: str) -> sa.Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@contextlib.contextmanager
def fresh_sqlite(*, keep: bool = False) -> Iterator[Database]:
    home = Path(tempfile.mkdtemp(prefix="pingan-bench-"))
    url = f"sqlite:///{home / 'pingan.db'}"
    try:
        yield Database("sqlite", url, url, home, server_version=f"SQLite {sqlite3.sqlite_version}")
    finally:
        dispose_engines()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def fresh_postgres(server_url: str, *, keep: bool = False, template: str = "template0") -> Iterator[Database]:
    """A new database on the server of ``server_url``: empty, or a copy of the database ``template``."""
    server_url = normalise_url(server_url)
    name = f"pingan_bench_{uuid.uuid4().hex[:12]}"
    admin = _admin(server_url)
    home = Path(tempfile.mkdtemp(prefix="pingan-bench-"))
    try:
        with admin.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
            conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" ENCODING 'UTF8'")
        url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        try:
            yield Database("postgresql", url, safe_url(url), home, server_version=f"PostgreSQL {version}")
        finally:
            dispose_engines()  # pooled connections would block the drop
            if not keep:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
        shutil.rmtree(home, ignore_errors=True)
