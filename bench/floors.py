"""Floors: the cheapest way to do a phase's raw work, measured in the same run.

``insert_floor``  the rows a pingan phase wrote, written again with plain SQLAlchemy Core
                  ``executemany`` into a table of the same columns and types (same bind
                  processing: aware datetimes, JSON) with a primary key and nothing else:
                  no unique constraint, no foreign key, no index, no RETURNING.
``http_floor``    the same message bodies POSTed to the same sink as Apprise's ``json://``
                  plugin would (same JSON payload, same headers), from a thread pool of the
                  same size; with ``keepalive`` each thread reuses one ``requests.Session``,
                  without it every POST opens a new connection, as Apprise does. With
                  ``processes`` > 1 the payloads are split between that many processes, each
                  with such a pool, as pingan's dispatcher does when it fans out
                  (``send_processes``): the floor uses the cores pingan uses.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import requests
import sqlalchemy as sa


@dataclass(frozen=True)
class Floor:
    label: str
    count: int
    seconds: float
    cpu: float


def _plain_copy(table: sa.Table) -> sa.Table:
    columns = [sa.Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns]
    return sa.Table(f"bench_floor_{table.name}", sa.MetaData(), *columns)


def insert_floor(engine: sa.Engine, tables: Sequence[tuple[sa.Table, list[dict]]], label: str) -> Floor:
    """Insert each table's rows (without their ids) into a plain copy; one transaction."""
    copies = [(_plain_copy(table), [{k: v for k, v in row.items() if k != "id"} for row in rows])
              for table, rows in tables if rows]
    for copy, _ in copies:
        copy.drop(engine, checkfirst=True)
        copy.create(engine)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            for copy, rows in copies:
                conn.execute(copy.insert(), rows)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for copy, _ in copies:
            copy.drop(engine, checkfirst=True)
    return Floor(label, sum(len(rows) for _, rows in copies), seconds, cpu)


def apprise_json_payload(title: str, body: str) -> bytes:
    """What Apprise's ``json://`` plugin posts for a plain-text notification."""
    return json.dumps({"version": "1.0", "title": title, "message": body, "attachments": [], "type": "info"}).encode()


_HEADERS = {"User-Agent": "Apprise", "Content-Type": "application/json"}


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (and been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def http_floor(url: str, payloads: Sequence[bytes], concurrency: int, *, keepalive: bool, timeout: float = 10.0,
               processes: int = 1) -> Floor:
    """POST every payload once; raises if any POST is not answered 2xx."""
    if not payloads:
        return Floor("http", 0, 0.0, 0.0)
    if processes > 1:
        t0, c0 = time.perf_counter(), time.process_time() + children_cpu()
        parts = [list(payloads[i::processes]) for i in range(processes)]
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            floors = list(pool.map(_floor_part, [(url, part, concurrency, keepalive, timeout) for part in parts]))
        seconds, cpu = time.perf_counter() - t0, time.process_time() + children_cpu() - c0
        return Floor(f"{floors[0].label} × {processes} processes", len(payloads), seconds, cpu)
    local, sessions, lock = threading.local(), [], threading.Lock()

    def post(payload: bytes) -> int:
        if keepalive:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
                with lock:
                    sessions.append(session)
            return session.post(url, data=payload, headers=_HEADERS, timeout=timeout).status_code
        return requests.post(url, data=payload, headers=_HEADERS, timeout=timeout).status_code

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(payloads))) as pool:
            statuses = list(pool.map(post, payloads))
    finally:
        for session in sessions:
            session.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    bad = [s for s in statuses if not 200 <= s < 300]
    if bad:
        raise RuntimeError(f"the sink refused {len(bad)} of {len(payloads)} floor POSTs (e.g. HTTP {bad[0]})")
    label = "HTTP keep-alive" if keepalive else "HTTP new conn."
    return Floor(label, len(payloads), seconds, cpu)


def _floor_part(args: tuple) -> Floor:
    url, payloads, concurrency, keepalive, timeout = args
    return http_floor(url, payloads, concurrency, keepalive=keepalive, timeout=timeout)
