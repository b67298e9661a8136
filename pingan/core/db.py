"""Engine, sessions, the bulk primitives every writer uses, and group commit.

``insert_ignore`` is the idempotent bulk write (``INSERT … ON CONFLICT DO NOTHING``) on
SQLite and PostgreSQL alike; it answers with the rows it really inserted via RETURNING,
because psycopg reports rowcount -1 for such statements. ``insert_new`` (how many were new)
and ``insert_ids`` (the new ids, in order) are the large-volume forms: on PostgreSQL they go
through psycopg's own ``executemany`` (see ``_psycopg_executemany``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from pingan.core.settings import get_settings

T = TypeVar("T")
CHUNK = 2000  # rows per statement: stays under SQLite's 32766 bound parameters for wide tables


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # flows, workers and the web page share one file
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


_ENGINES: dict[str, sa.Engine] = {}


def get_engine(url: str | None = None) -> sa.Engine:
    url = url or get_settings().db_url
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def dispose_engines(*, close: bool = True) -> None:
    """Forget every engine; ``close=False`` in a forked child leaves the parent's connections alone."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose(close=close)


@contextlib.contextmanager
def session_scope(engine: sa.Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# The bulk helpers below take a session or a plain connection (``Connection.execute`` and
# ``Session.execute`` take the same statements and parameter lists).
Executor = Session | sa.Connection


def _dialect(session: Executor) -> str:
    return (session.dialect if isinstance(session, sa.Connection) else session.get_bind().dialect).name


def _insert(session: Executor, table: sa.Table):
    dialect = _dialect(session)
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


def insert_ignore(
    session: Session,
    table: sa.Table,
    rows: Sequence[dict],
    conflict: Sequence[str],
    returning: Sequence[str] = ("id",),
) -> list[sa.Row]:
    """Insert rows, skipping those that collide on ``conflict``; return what was inserted.

    One statement, executed with a list of parameter sets: SQLAlchemy's "insertmanyvalues"
    batches it into multi-row INSERTs with RETURNING, and the compiled form is cached.
    """
    if not rows:
        return []
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    if not returning:
        session.execute(stmt, list(rows))
        return []
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return session.execute(stmt, list(rows)).all()


def insert_new(session: Session, table: sa.Table, rows: Sequence[dict], conflict: Sequence[str]) -> int:
    """``insert_ignore`` for callers that need only how many rows were new.

    On SQLite a plain ``executemany`` whose row count is exact (no RETURNING: SQLAlchemy then
    need not build a parameter set per row); on PostgreSQL, where psycopg reports -1 for
    ``ON CONFLICT DO NOTHING``, the rows RETURNING gives, from psycopg's ``executemany``.
    """
    if not rows:
        return 0
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    if _dialect(session) == "sqlite":
        return session.execute(stmt, list(rows)).rowcount
    inserted = _psycopg_executemany(session, stmt.returning(*table.primary_key.columns), rows)
    return len(insert_ignore(session, table, rows, conflict)) if inserted is None else len(inserted)


def insert_ids(session: Executor, table: sa.Table, rows: Sequence[dict]) -> list[int]:
    """Insert every row; return their new ids, in the order of ``rows``."""
    if not rows:
        return []
    if _dialect(session) == "postgresql":
        inserted = _psycopg_executemany(session, _insert(session, table).returning(table.c.id), rows)
        if inserted is not None:
            return [row[0] for row in inserted]
    stmt = _insert(session, table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(stmt, list(rows)).scalars())


class _DefaultContext:
    """What a context-sensitive column default reads (``get_current_parameters``): its row."""

    def __init__(self, row: dict):
        self.current_parameters = row

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict:
        return self.current_parameters


def _psycopg_executemany(session: Executor, stmt: sa.Insert, rows: Sequence[dict]) -> list[tuple] | None:
    """Run ``stmt`` once per row with psycopg's own ``executemany`` (one short statement, parsed
    once and pipelined); return the rows its RETURNING gave, in the order of ``rows`` (a row
    an ON CONFLICT skipped gives none), or None when it cannot be used.

    SQLAlchemy's "insertmanyvalues" sends multi-row INSERTs whose SQL psycopg re-parses with
    regular expressions for every page (it caches statements of up to 50 parameters only): at
    20,000 schools that was most of a morning's plan on PostgreSQL (psycopg executemany: 0.12 s
    for 10,000 rows against 0.67 s). The values go through SQLAlchemy's bind processors
    (time zones, JSON) and the columns' Python-side defaults fill what the rows leave out, as in
    a normal execution. Rows with different keys, or anything else the statement would need,
    fall back (None).
    """
    keys = list(rows[0])
    if any(len(row) != len(keys) or any(k not in row for k in keys) for row in rows):
        return None
    # The Python-side defaults of the columns the rows leave out, applied per row as SQLAlchemy does.
    defaults = {c.key: c.default for c in stmt.table.columns
                if c.key not in rows[0] and c.default is not None and (c.default.is_scalar or c.default.is_callable)}
    conn = session if isinstance(session, sa.Connection) else session.connection()
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys + list(defaults))
    if set(compiled.bind_names.values()) != set(keys) | set(defaults):
        return None
    processors = compiled._bind_processors  # noqa: SLF001 — the dialect's own per-type conversion

    def value(name: str, row: dict) -> object:
        if name in row:
            raw = row[name]
        else:
            default = defaults[name]
            raw = default.arg(_DefaultContext(row)) if default.is_callable else default.arg
        return processors[name](raw) if name in processors else raw

    names = keys + list(defaults)
    params = [{name: value(name, row) for name in names} for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(str(compiled), params, returning=True)
        returned: list[tuple] = []
        while True:
            returned.extend(cursor.fetchall())
            if not cursor.nextset():
                return returned
    finally:
        cursor.close()


def upsert(session: Session, table: sa.Table, rows: Sequence[dict], conflict: Sequence[str], update: Sequence[str]) -> None:
    """Insert rows or update ``update`` columns of the row they collide with."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        stmt = _insert(session, table).values(chunk)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={name: stmt.excluded[name] for name in update}
        )
        session.execute(stmt)


class _Entry(NamedTuple):
    """One caller's write waiting in a ``GroupCommit`` queue."""

    work: Callable  # a function of the connection, or the handler of grouped items
    item: object  # the grouped item (None for a function)
    grouped: bool
    future: Future


class GroupCommit:
    """One thread that writes for many: the small transactions other threads hand it are run
    together, up to ``max_batch`` in one commit (group commit), and each caller waits until its
    own statement is committed — durable before the caller goes on — and gets its result.

    ``write(work)`` hands over a function of the connection. ``write.many(handler, item)`` hands
    over one item of a kind many threads write: ``handler(conn, items) -> results`` runs once for
    all the items of a batch that share it (one statement for sixteen calls' rows, not sixteen),
    and returns one result per item, in order. The items of a batch come from callers each
    waiting for its own result, so they never depend on each other's order.

    A statement that fails does not take the others of its batch down: the batch is rolled back
    and its items run again one transaction each, so only the faulty one raises, in its caller.
    """

    _STOP = object()

    def __init__(self, engine: sa.Engine, *, max_batch: int = 256, name: str = "pingan-group-commit"):
        self.engine, self.max_batch = engine, max_batch
        self._turn = WriterTurn.of(engine)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __call__(self, work: Callable[[sa.Connection], T]) -> T:
        return self._submit(work, None)

    def many(self, handler: Callable[[sa.Connection, list], list[T]], item: object) -> T:
        return self._submit(handler, item, grouped=True)

    def _submit(self, work: Callable, item: object, *, grouped: bool = False) -> T:
        future: Future = Future()
        self._queue.put(_Entry(work, item, grouped, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(self._STOP)
        self._thread.join()
        self._turn.close()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is self._STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is self._STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    @staticmethod
    def _apply(conn: sa.Connection, batch: list[_Entry]) -> list:
        """Run a batch in ``conn``: functions one by one, grouped items once per handler."""
        results: list = [None] * len(batch)
        groups: dict[Callable, list[int]] = {}
        for index, entry in enumerate(batch):
            if entry.grouped:
                groups.setdefault(entry.work, []).append(index)
            else:
                results[index] = entry.work(conn)
        for handler, indexes in groups.items():
            answers = handler(conn, [batch[i].item for i in indexes])
            if len(answers) != len(indexes):
                raise RuntimeError(f"{handler!r} answered {len(answers)} results for {len(indexes)} items")
            for i, answer in zip(indexes, answers):
                results[i] = answer
        return results

    def _write(self, batch: list[_Entry]) -> None:
        try:
            with self._turn, self.engine.begin() as conn:
                results = self._apply(conn, batch)
        except Exception:  # noqa: BLE001 — isolate the faulty statement: one transaction each
            for entry in batch:
                try:
                    with self._turn, self.engine.begin() as conn:
                        entry.future.set_result(self._apply(conn, [entry])[0])
                except Exception as exc:  # noqa: BLE001 — handed to the caller that owns it
                    entry.future.set_exception(exc)
            return
        for entry, result in zip(batch, results):
            entry.future.set_result(result)


class WriterTurn:
    """Group-commit writers of several processes on one SQLite file take turns through a lock
    file (``flock``) before they begin: the kernel wakes the next writer as soon as the lock is
    free, where SQLite's own busy handler polls with sleeps of up to 100 ms — which made two
    sending processes slower than one. No-op on PostgreSQL and for in-memory SQLite."""

    def __init__(self, path: str | None):
        self.path, self._fd = path, None

    @classmethod
    def of(cls, engine: sa.Engine) -> WriterTurn:
        url = engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return cls(None)
        return cls(f"{database}.writer-lock")

    def __enter__(self) -> None:
        if self.path is None:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
