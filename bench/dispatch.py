"""``python -m bench.dispatch``: the busy morning's dispatch alone, several times on one morning.

    python -m bench.dispatch --units 5000 --runs 3
    PINGAN_SEND_PROCESSES=1 python -m bench.dispatch --units 5000
    python -m bench.dispatch --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

The morning's duty runs (plan, remind, escalate, as ``bench.busyday``) are made once, on a
fresh SQLite database — or, with ``--postgres``, on a database ``pingan_bench_<random>`` of that
server (``bench.databases``); each run dispatches a copy of it (a copy of the file, or ``CREATE
DATABASE … TEMPLATE``) to a loopback sink of its own (``bench.sink``) and prints its wall time
and the CPU time of its sending processes (the server's own CPU is not counted). Every database
is removed at the end. For trying a change to composing or sending without waiting for the duty
runs each time; figures of a whole morning, with floors, come from ``python -m bench``. Settings come from
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench.busyday import DAYS, DIGEST, Bench
from bench.databases import Database, fresh_postgres, fresh_sqlite
from bench.sink import Sink
from models import Channel
from pingan.core.clock import TZ
from pingan.core.db import dispose_engines
from pingan.core.settings import Settings
from pingan.delivery import workflow as delivery
from pingan.duties import workflow as duty_workflow
from pingan.duties.runtime import build_runtime

C = Channel.__table__


@contextmanager
def busy_morning(units: int, postgres: str | None = None) -> Iterator[tuple[Database, str]]:
    """A database with the busy morning's notices waiting for the dispatcher, and the prefix of
    its persons' channel URLs; removed afterwards. On SQLite a file, on PostgreSQL a database of
    the server of ``postgres``."""
    with (fresh_postgres(postgres) if postgres else fresh_sqlite()) as db:
        sink = Sink().start()
        try:
            bench = Bench(db, sink, units)
            bench.setup()
            for at, key in bench.schedule("busy"):
                duty_workflow.plan(bench.rt, key, at)
                duty_workflow.remind(bench.rt, key, at)
                duty_workflow.escalate(bench.rt, key, at)
            prefix = sink.channel_url("")
        finally:
            sink.stop()
        dispose_engines()
        if not postgres:  # the whole morning in the file, so that a copy of the file is a copy of it
            with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield db, prefix


@contextmanager
def _copy(morning: Database, home: Path, postgres: str | None) -> Iterator[str]:
    """A copy of the morning for one run: its URL; removed afterwards."""
    if postgres:
        with fresh_postgres(postgres, template=sa.make_url(morning.url).database) as copy:
            yield copy.url
    else:
        shutil.copy(morning.url.removeprefix("sqlite:///"), home / "pingan.db")
        yield f"sqlite:///{home / 'pingan.db'}"


def dispatch_copy(morning: Database, prefix: str, postgres: str | None = None) -> dict:
    """Dispatch a copy of ``morning`` (channels starting with ``prefix``) to a new sink; what it took."""
    home = Path(tempfile.mkdtemp(prefix="pingan-dispatch-"))
    sink = Sink().start()
    try:
        with _copy(morning, home, postgres) as url:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                with engine.begin() as conn:  # the channels point to this run's sink
                    conn.execute(sa.update(C).values(url=sa.func.replace(C.c.url, prefix, sink.channel_url(""))))
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
            dispose_engines()  # before the copy goes: pooled connections would block its drop
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
    t0 = time.perf_counter()
    with busy_morning(args.units, args.postgres) as (morning, prefix):
        print(f"{args.units:,} schools: the busy morning's duty runs in {time.perf_counter() - t0:.0f} s")
        for n in range(1, args.runs + 1):
            r = dispatch_copy(morning, prefix, args.postgres)
            print(f"dispatch {n}: {r['sent']:,} messages in {r['seconds']:.1f} s, CPU {r['cpu']:.1f} s "
                  f"({r['processes']} process(es))", flush=True)


if __name__ == "__main__":
    main()
