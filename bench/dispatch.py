"""``python -m bench.dispatch``: the busy morning's dispatch alone, several times on one morning.

    python -m bench.dispatch --units 5000 --runs 3
    PINGAN_SEND_PROCESSES=1 python -m bench.dispatch --units 5000
    python -m bench.dispatch --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

The morning's duty runs (plan, remind, escalate, as ``bench.busyday``) are made once, on a
fresh SQLite database that is then kept as a file — or, with ``--postgres``, on a database
``pingan_bench_<random>`` of that server, kept as the template of each run's copy (``CREATE
DATABASE … TEMPLATE``) and dropped at the end with the copies; each run dispatches a copy of it
to a loopback sink of its own (``bench.sink``) and prints its wall time and the CPU time of its
sending processes (the server's own CPU is not counted). For trying a change to composing or sending without waiting for the duty runs each
time; figures of a whole morning, with floors, come from ``python -m bench``. Settings come from
the environment (``PINGAN_SEND_PROCESSES``, ``PINGAN_SEND_CONCURRENCY``…).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import secrets
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench.busyday import DAYS, DIGEST, Bench
from bench.databases import fresh_postgres, fresh_sqlite
from bench.sink import Sink
from pingan.core.clock import TZ
from pingan.core.db import dispose_engines
from pingan.core.settings import Settings
from pingan.delivery import workflow as delivery
from pingan.duties import workflow as duty_workflow
from pingan.duties.runtime import build_runtime


def prepare(units: int, folder: Path, postgres: str | None = None) -> str:
    """The busy morning's notices waiting for the dispatcher: the path of ``folder/morning.db``,
    or with ``postgres`` the URL of a database kept on that server (``drop`` removes it)."""
    sink = Sink().start()
    try:
        with (fresh_postgres(postgres, keep=True) if postgres else fresh_sqlite()) as db:
            bench = Bench(db, sink, units)
            bench.setup()
            for at, key in bench.schedule("busy"):
                duty_workflow.plan(bench.rt, key, at)
                duty_workflow.remind(bench.rt, key, at)
                duty_workflow.escalate(bench.rt, key, at)
            dispose_engines()
            if postgres:
                return db.url
            path = Path(db.url.removeprefix("sqlite:///"))
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copy(path, folder / "morning.db")
    finally:
        sink.stop()
    return str(folder / "morning.db")


def _admin(url: str) -> sa.Engine:
    """AUTOCOMMIT connections to the server of ``url``, for CREATE and DROP DATABASE."""
    return sa.create_engine(sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT",
                            poolclass=sa.pool.NullPool)


def drop(url: str) -> None:
    """Drop the PostgreSQL database of ``url`` (a morning or a copy)."""
    admin = _admin(url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def _copy(morning: str, home: Path) -> Iterator[str]:
    """A copy of the morning for one run: its URL; removed afterwards."""
    if not morning.startswith("postgresql"):
        shutil.copy(morning, home / "pingan.db")
        yield f"sqlite:///{home / 'pingan.db'}"
        return
    name = f"pingan_bench_{uuid.uuid4().hex[:12]}"
    admin = _admin(morning)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{sa.make_url(morning).database}"')
        url = sa.make_url(morning).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            dispose_engines()  # pooled connections would block the drop
            drop(url)
    finally:
        admin.dispose()


def dispatch_copy(morning: str, folder: Path) -> dict:
    """Dispatch a copy of ``morning`` to a new sink; what it took."""
    home = Path(tempfile.mkdtemp(dir=folder))
    sink = Sink().start()
    try:
        with _copy(morning, home) as url:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                with engine.begin() as conn:  # the channels point to this run's sink
                    conn.execute(sa.text("UPDATE channel SET url = :sink || substr(url, strpos(url, '/sink/') + 6)"
                                         if url.startswith("postgresql") else
                                         "UPDATE channel SET url = :sink || substr(url, instr(url, '/sink/') + 6)"),
                                 {"sink": f"json://127.0.0.1:{sink.port}/sink/"})
            finally:
                engine.dispose()
            settings = Settings(_env_file=None, home=home, database_url=url,
                                secret_key=secrets.token_hex(32), digest_morning=DIGEST)
            rt = build_runtime(settings)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0, c0 = time.perf_counter(), time.process_time()
            report = delivery.dispatch(rt, dt.datetime.combine(DAYS["busy"], DIGEST, tzinfo=TZ))
            seconds, own = time.perf_counter() - t0, time.process_time() - c0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            children = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            posts = sink.stats()["requests"]
            dispose_engines()
    finally:
        sink.stop()
        dispose_engines()
        shutil.rmtree(home, ignore_errors=True)
    if posts != report.sent or report.failed or report.retrying or report.deferred:
        raise SystemExit(f"the dispatch did not send every message once: {report}, {posts} POSTs")
    return {"seconds": seconds, "cpu": own + children, "sent": report.sent, "processes": report.processes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=5000, help="schools (default 5000)")
    parser.add_argument("--runs", type=int, default=1, help="dispatches of the same morning (default 1)")
    parser.add_argument("--postgres", metavar="URL", help="on this PostgreSQL server instead of SQLite")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pingan-dispatch-") as folder:
        t0 = time.perf_counter()
        morning = prepare(args.units, Path(folder), args.postgres)
        try:
            print(f"{args.units:,} schools: the busy morning's duty runs in {time.perf_counter() - t0:.0f} s")
            for n in range(1, args.runs + 1):
                r = dispatch_copy(morning, Path(folder))
                print(f"dispatch {n}: {r['sent']:,} messages in {r['seconds']:.1f} s, CPU {r['cpu']:.1f} s "
                      f"({r['processes']} process(es))", flush=True)
        finally:
            if args.postgres:
                dispose_engines()
                drop(morning)


if __name__ == "__main__":
    main()
