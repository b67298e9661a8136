"""``python -m bench.dispatch``: the busy morning's dispatch alone, several times on one morning.

    python -m bench.dispatch --units 5000 --runs 3
    PINGAN_SEND_PROCESSES=1 python -m bench.dispatch --units 5000

The morning's duty runs (plan, remind, escalate, as ``bench.busyday``) are made once, on a
fresh SQLite database that is then kept as a file; each run dispatches a copy of it to a loopback
sink of its own (``bench.sink``) and prints its wall time and the CPU time of its sending
processes. For trying a change to composing or sending without waiting for the duty runs each
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
from pathlib import Path

from bench.busyday import DAYS, DIGEST, Bench
from bench.databases import fresh_sqlite
from bench.sink import Sink
from pingan.core.clock import TZ
from pingan.core.db import dispose_engines
from pingan.core.settings import Settings
from pingan.delivery import workflow as delivery
from pingan.duties import workflow as duty_workflow
from pingan.duties.runtime import build_runtime


def prepare(units: int, folder: Path) -> Path:
    """The busy morning's notices waiting for the dispatcher, in ``folder/morning.db``."""
    sink = Sink().start()
    try:
        with fresh_sqlite() as db:
            bench = Bench(db, sink, units)
            bench.setup()
            for at, key in bench.schedule("busy"):
                duty_workflow.plan(bench.rt, key, at)
                duty_workflow.remind(bench.rt, key, at)
                duty_workflow.escalate(bench.rt, key, at)
            dispose_engines()
            path = Path(db.url.removeprefix("sqlite:///"))
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copy(path, folder / "morning.db")
    finally:
        sink.stop()
    return folder / "morning.db"


def dispatch_copy(morning: Path, folder: Path) -> dict:
    """Dispatch a copy of ``morning`` to a new sink; what it took."""
    home = Path(tempfile.mkdtemp(dir=folder))
    shutil.copy(morning, home / "pingan.db")
    sink = Sink().start()
    try:
        with sqlite3.connect(home / "pingan.db") as conn:  # the channels point to this run's sink
            conn.execute("UPDATE channel SET url = ? || substr(url, instr(url, '/sink/') + 6)",
                         (f"json://127.0.0.1:{sink.port}/sink/",))
        settings = Settings(_env_file=None, home=home, database_url=f"sqlite:///{home / 'pingan.db'}",
                            secret_key=secrets.token_hex(32), digest_morning=DIGEST)
        rt = build_runtime(settings)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0, c0 = time.perf_counter(), time.process_time()
        report = delivery.dispatch(rt, dt.datetime.combine(DAYS["busy"], DIGEST, tzinfo=TZ))
        seconds, own = time.perf_counter() - t0, time.process_time() - c0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        posts = sink.stats()["requests"]
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
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pingan-dispatch-") as folder:
        t0 = time.perf_counter()
        morning = prepare(args.units, Path(folder))
        print(f"{args.units:,} schools: the busy morning's duty runs in {time.perf_counter() - t0:.0f} s")
        for n in range(1, args.runs + 1):
            r = dispatch_copy(morning, Path(folder))
            print(f"dispatch {n}: {r['sent']:,} messages in {r['seconds']:.1f} s, CPU {r['cpu']:.1f} s "
                  f"({r['processes']} process(es))")


if __name__ == "__main__":
    main()
