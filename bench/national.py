"""``python -m bench.national``: a national installation in miniature, on this machine.

    python -m bench.national --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python -m bench.national --postgres URL --shards 5 --units 20000 --workers 2 --limit 2

What runs, as docs/SCALE.md describes a national deployment:

- ``--shards`` provinces, each a shard with a pingan database of its own on PostgreSQL
  (``pingan_nat_<run>_p1`` …), loaded with ``synthetic_organisation(--units)`` whose every
  person has a ``json://`` channel to the loopback sink (``bench.sink``), codes prefixed per
  province (``P1-S000001`` …) so a message's path names its province;
- one Prefect server on PostgreSQL (its own database), its scheduler off (the bench starts every
  run itself, at the busy morning's times); ``prefect deploy --all`` from prefect.yaml; a
  process work pool and ``--workers`` workers, each running ``--limit`` flow runs at once;
- ``PINGAN_SHARDS`` maps each province to its database; every flow run names its province as a
  parameter: the morning run of every duty deployment for every province (the busy morning,
  2026-10-08, in schedule order, provinces interleaved), then the 09:00 dispatcher of every
  province.

Checks: every flow run completed; in every province, tasks, notices and messages match the
first province's figures exactly (same organisation size); every person got exactly one POST
(the sink counts per path: a duplicate anywhere shows there, independently of pingan's tables);
the sink's total equals the messages marked sent. Figures: wall clock of the duty runs and of
the dispatch runs, and per province the summed duration of its flow runs (Prefect's own
start/end times) — the cost per shard. JSON in ``bench/out/national-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import sqlalchemy as sa

from bench.report import machine, write_json
from bench.sink import Sink
from pingan.cli.supervisor import free_port, http_ok, stop_group
from pingan.core.migrate import normalise_url, safe_url
from pingan.core.settings import REPO_ROOT

OUT = Path(__file__).resolve().parent / "out"
MORNING = dt.date(2026, 10, 8)
DIGEST = dt.datetime(2026, 10, 8, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _wait(what: str, check, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise SystemExit(f"bench.national: timed out waiting for {what}")


def _load_shard(url: str, units: int, prefix: str, sink: Sink) -> dict:
    """Migrate and load one province (in a child process: its memory stays out of this one)."""
    script = (
        "import sys, json\n"
        "from pingan.core.db import session_scope, get_engine\n"
        "from pingan.core.migrate import upgrade\n"
        "from pingan.org.demo import synthetic_organisation\n"
        "from pingan.org.service import store_org\n"
        "url, units, prefix, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]\n"
        "upgrade('head', url=url)\n"
        "data = synthetic_organisation(units, prefix=prefix, channel_url=lambda code: f'json://{base}/sink/{code}')\n"
        "with session_scope(get_engine(url)) as s:\n"
        "    store_org(s, data, actor='bench')\n"
        "print(json.dumps(data.counts()))\n"
    )
    base = sink.base.split("://", 1)[1]
    done = subprocess.run([sys.executable, "-c", script, url, str(units), prefix, base], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, "PINGAN_DEMO": "1"})
    if done.returncode:
        raise SystemExit(f"bench.national: loading {prefix} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.national", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, metavar="URL", help="a PostgreSQL server URL (databases are made there)")
    parser.add_argument("--shards", type=int, default=5, help="provinces (default 5)")
    parser.add_argument("--units", type=int, default=20_000, help="schools per province (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="process workers (default 2)")
    parser.add_argument("--limit", type=int, default=2, help="flow runs each worker runs at once (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args(argv)

    server = normalise_url(args.postgres)
    run_id = uuid.uuid4().hex[:8]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    names = {f"p{i}": f"pingan_nat_{run_id}_p{i}" for i in range(1, args.shards + 1)}
    prefect_db = f"prefect_nat_{run_id}"
    urls = {p: sa.make_url(server).set(database=n).render_as_string(hide_password=False) for p, n in names.items()}
    tmp = Path(tempfile.mkdtemp(prefix="pingan-national-"))
    procs: list[subprocess.Popen] = []
    facts, load_before, started = machine(), os.getloadavg(), time.perf_counter()
    result: dict = {"command": "python -m bench.national " + " ".join(
        safe_url(a) if a.startswith("postgresql") else a for a in (sys.argv[1:] if argv is None else argv)),
        "shards": args.shards, "units": args.units, "workers": args.workers, "limit": args.limit}
    print(f"bench.national: {args.shards} provinces × {args.units:,} schools, {args.workers} workers × {args.limit}, "
          f"{facts['nproc']} CPU(s); load average {load_before[0]:.1f}")
    try:
        with admin.connect() as conn:
            for name in [*names.values(), prefect_db]:
                conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        with Sink(max_seconds=6 * 3600, idle_seconds=3600) as sink:
            t0 = time.perf_counter()
            result["organisations"] = {p: _load_shard(urls[p], args.units, p.upper(), sink) for p in names}
            result["load_seconds"] = time.perf_counter() - t0
            print(f"  loaded {args.shards} provinces in {result['load_seconds']:.0f} s")

            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            prefect_url = sa.make_url(server).set(drivername="postgresql+asyncpg", database=prefect_db).render_as_string(
                hide_password=False)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
            env.update({
                "PINGAN_HOME": str(tmp / "home"), "PINGAN_DEMO": "1", "PINGAN_CODE_DIR": str(REPO_ROOT),
                "PINGAN_DATABASE_URL": urls["p1"], "PINGAN_SHARDS": json.dumps(urls),
                "PREFECT_HOME": str(tmp / "prefect"), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
                "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_API_SERVICES_SCHEDULER_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
                "PYTHONUNBUFFERED": "1",
            })
            (tmp / "home").mkdir()
            prefect = [sys.executable, "-m", "prefect"]

            def run(*argv_: str) -> None:
                done = subprocess.run(argv_, env=env, cwd=REPO_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
                if done.returncode:
                    raise SystemExit(f"{' '.join(argv_[2:5])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

            def start(name: str, *argv_: str) -> None:
                log = (tmp / f"{name}.log").open("wb")
                procs.append(subprocess.Popen(argv_, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True))

            run(*prefect, "server", "database", "upgrade", "-y")
            start("server", *prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port))
            _wait("the Prefect server", lambda: http_ok(f"{api}/health"), 180)
            run(*prefect, "work-pool", "create", "pingan", "--type", "process")
            run(*prefect, "--no-prompt", "deploy", "--all")
            for i in range(args.workers):
                start(f"worker-{i}", *prefect, "worker", "start", "--pool", "pingan", "--limit", str(args.limit),
                      "--name", f"worker-{i}")
            result.update(_morning(api, urls, sink))
    finally:
        for proc in reversed(procs):  # the workers, then the server
            stop_group(proc, 30)
        if not args.keep:
            with admin.connect() as conn:
                for name in [*names.values(), prefect_db]:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    result["seconds"] = time.perf_counter() - started
    facts["loadavg_before"], facts["loadavg_after"] = load_before, os.getloadavg()
    result["machine"] = facts
    path = OUT / f"national-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    write_json(path, result)
    print(f"{result['seconds']:.0f} s in all; load average {load_before[0]:.1f} before, {facts['loadavg_after'][0]:.1f} "
          f"after; results in {path}")
    return 0 if result.get("ok") else 1


def _morning(api: str, provinces: dict[str, str], sink: Sink) -> dict:  # provinces: name → database URL
    """Start every duty's morning run for every province, then each province's dispatcher; check and time them."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.build import all_specs
    from pingan.duties.catalog import load_catalog
    from tasks.names import DISPATCH_DEPLOYMENT

    tz = dt.timezone(dt.timedelta(hours=8))
    mornings = []
    for spec in all_specs(load_catalog()):
        morning = next((s for s in spec.schedules if s.slug == "morning"), None)
        if spec.parameters.get("duty") and morning:
            minute, hour = (int(x) for x in morning.cron.split()[:2])
            mornings.append((dt.datetime.combine(MORNING, dt.time(hour, minute), tzinfo=tz), spec.name))
    mornings.sort()
    out: dict = {}
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        ids = {name: client.read_deployment_by_name(f"duty-cycle/{name}").id for _, name in mornings}
        runs: dict[str, list] = defaultdict(list)
        t0 = time.perf_counter()
        for as_of, name in mornings:
            for province in provinces:
                runs[province].append(client.create_flow_run_from_deployment(
                    ids[name], parameters={"as_of": as_of.isoformat(), "province": province}).id)
        done = _finish(client, [r for rs in runs.values() for r in rs], "the duty runs")
        out["duty_runs_seconds"] = time.perf_counter() - t0
        print(f"  {len(done)} duty runs in {out['duty_runs_seconds']:.0f} s")
        dispatcher = client.read_deployment_by_name(DISPATCH_DEPLOYMENT)
        t1 = time.perf_counter()
        sends = {p: client.create_flow_run_from_deployment(dispatcher.id, parameters={
            "as_of": DIGEST.isoformat(), "province": p}).id for p in provinces}
        done += _finish(client, list(sends.values()), "the dispatch runs")
        out["dispatch_seconds"] = time.perf_counter() - t1
        print(f"  {len(sends)} dispatch runs in {out['dispatch_seconds']:.0f} s")
        by_id = {r.id: r for r in done}
        failed = [(r.name, r.state.type.value, r.state.message) for r in done if not r.state.is_completed()]
        per = {}
        for province in provinces:
            mine = [by_id[i] for i in [*runs[province], sends[province]]]
            per[province] = {
                "flow_runs": len(mine),
                "duty_run_seconds": sum(r.total_run_time.total_seconds() for r in mine[:-1]),
                "dispatch_seconds": mine[-1].total_run_time.total_seconds(),
            }
    counts = {p: _counts(url) for p, url in provinces.items()}
    stats = sink.stats(paths=True)
    paths = stats.pop("paths")
    out["sink"] = stats
    per_path = Counter(v for k, v in paths.items() if k.startswith("/sink/P"))
    sent = sum(c["sent"] for c in counts.values())
    first = next(iter(counts.values()))
    same = all(c == first for c in counts.values())
    out.update({
        "per_province": per, "counts": counts, "failed_runs": failed[:20],
        "posts_per_person": dict(per_path), "sink_posts": sum(k * v for k, v in per_path.items()), "messages_sent": sent,
    })
    out["ok"] = (not failed and same and set(per_path) == {1} and out["sink_posts"] == sent
                 and all(c["notices_unlinked"] == 0 for c in counts.values()))
    for province, figures in per.items():
        print(f"  {province}: {counts[province]['occurrence']:,} tasks, {counts[province]['notice']:,} notices, "
              f"{counts[province]['sent']:,} messages sent; flow runs {figures['duty_run_seconds']:.0f} s + "
              f"dispatch {figures['dispatch_seconds']:.0f} s")
    print(f"  POSTs per person: {dict(per_path)}; sink {out['sink_posts']:,} = sent {sent:,}; provinces alike: {same}; "
          + ("[ok]" if out["ok"] else f"[FAILED] {failed[:3]}"))
    return out


def _counts(url: str) -> dict:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        one = lambda sql: conn.exec_driver_sql(sql).scalar()  # noqa: E731
        figures = {
            "occurrence": one("select count(*) from occurrence"),
            "notice": one("select count(*) from notice"),
            "notices_unlinked": one("select count(*) from notice where message_id is null"),
            "message": one("select count(*) from message"),
            "sent": one("select count(*) from message where status = 'sent'"),
            "most_messages_one_person": one("select coalesce(max(n), 0) from (select count(*) n from message group by person_id) x"),
        }
    engine.dispose()
    return figures


def _finish(client, ids: list, what: str) -> list:
    def finished():
        states = [client.read_flow_run(i) for i in ids]
        return states if all(s.state is not None and s.state.is_final() for s in states) else None

    return _wait(what, finished, 6 * 3600, every=5)


if __name__ == "__main__":
    sys.exit(main())
