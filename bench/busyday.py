"""The scenario: a province-scale organisation on its busiest days, through pingan's own calls.

Setup: migrate a fresh database, write the catalog, load ``synthetic_organisation(units)``
whose every person has one channel, ``json://`` to the loopback sink (a path per person, as
real webhooks differ per person).

A day is the morning run of every duty deployment (``deployments.build``: one per planned
duty, staggered 08:31–08:59), one after the other, each making the calls of the duty-cycle
flow's steps (``pingan.duties.workflow.CYCLE``) at its own ``as_of``: ``plan``, ``remind``,
``escalate``, then the dispatcher (``pingan.delivery.workflow.dispatch``). Each kind of call is
timed over the whole morning (wall and CPU; dispatch composes and sends at once); the rows each kind
wrote are then written again by the floors (``bench.floors``). Then the same morning runs
again and must insert nothing and send nothing.

Days:
    busy     2026-10-08, the first working day of Q4 after National Day, on a fresh database:
             every monthly, half-monthly, quarterly, semester, half-yearly and yearly duty
             opens its period at once, with its "at open" reminder.
    overdue  2026-11-10, five weeks later with nothing handed in: November's tasks open and
             every October task is past due + grace, so escalations fire at every level
             reached (the principal, the 包保 leader, the bureau principal and safety section).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import logging
import os
import pstats
import resource
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from models import Audit, Channel, Delivery, Escalation, Message, Notice, Occurrence
from pingan.delivery import workflow as delivery
from pingan.duties.service import ensure_catalog
from pingan.duties import workflow as duty_workflow
from pingan.delivery import transports
from pingan.core.db import get_engine, session_scope
from pingan.core.migrate import upgrade
from pingan.org.demo import synthetic_organisation
from pingan.org.service import store_org
from pingan.core.clock import TZ
from pingan.org.snapshot import read_org as org_snapshot
from pingan.duties.runtime import Runtime, build_runtime
from pingan.core.settings import Settings

from deployments.duties import specs as deployment_specs

from bench.databases import Database
from bench.floors import Floor, apprise_json_payload, children_cpu, http_floor, insert_floor
from bench.history import fill as fill_history
from bench.sink import Sink

DAYS = {"busy": dt.date(2026, 10, 8), "overdue": dt.date(2026, 11, 10)}
# --history: the months before the busy morning (longer than a semester: spring term, summer, September)
HISTORY_FROM = dt.date(2026, 3, 2)
DIGEST = dt.time(9, 0)  # the morning digest slot (the dispatcher's morning schedule)
O, N, E, M, D, A = (t.__table__ for t in (Occurrence, Notice, Escalation, Message, Delivery, Audit))
NEW_CONNECTION_SAMPLE = 3000  # messages
TRACKED = {"occurrence": O, "notice": N, "escalation": E, "message": M, "delivery": D, "audit": A}


class BenchError(AssertionError):
    """The bench's own checks failed (a re-run wrote or sent something, a send failed)."""


@dataclass
class Phase:
    day: str
    name: str
    count: int
    unit: str
    seconds: float
    cpu: float
    floor: Floor | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor.seconds <= 0:
            return None
        return self.seconds / self.floor.seconds

    @property
    def cpu_ratio(self) -> float | None:
        """The same on this process's CPU time: steadier on a busy machine (PostgreSQL's own CPU is not in it)."""
        if self.floor is None or self.floor.cpu <= 0:
            return None
        return self.cpu / self.floor.cpu


@dataclass
class Run:
    backend: str
    server: str
    units: int
    org: dict
    settings: dict
    setup: dict[str, float] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    reruns: dict[str, dict] = field(default_factory=dict)
    sink: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    history: dict = field(default_factory=dict)  # rows written before the first morning (--history)
    peak_rss_mb: float | None = None  # of the bench process, at the end of the run (floors included)
    # the bench process's peak RSS when the first morning's pingan work is done, before any floor
    # runs: what pingan itself needed (the organisation, the planning, the sending)
    morning_rss_mb: float | None = None

    @property
    def label(self) -> str:
        return f"{self.backend}+history" if self.history else self.backend

    def morning_seconds(self, day: str) -> float:
        """The whole morning: every duty run and the dispatch, sending included."""
        return sum(p.seconds for p in self.phases if p.day == day)

    def as_dict(self) -> dict:
        out = asdict(self)
        for phase, raw in zip(self.phases, out["phases"]):
            raw["ratio"], raw["cpu_ratio"] = phase.ratio, phase.cpu_ratio
        return out


class _Notes(logging.Handler):
    """Collects pingan's warnings (e.g. the calendar's 2027 fallback) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if line not in self.lines:
            self.lines.append(line)


@contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    handler, logger = _Notes(), logging.getLogger("pingan")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _in_child(fn: Callable[[], dict]) -> dict:
    """Run ``fn`` in a forked process and return its result: the memory it takes (the history's
    rows) stays out of this process's peak RSS, which the bench reports for the morning."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def target() -> None:
        from pingan.core.db import dispose_engines
        dispose_engines(close=False)  # the parent's pooled connections are not ours to use or close
        try:
            child.send(("ok", fn()))
        except BaseException as exc:  # noqa: BLE001 — reported to the parent
            child.send(("error", repr(exc)))

    process = ctx.Process(target=target, name="bench-history")
    process.start()
    status, value = parent.recv()
    process.join()
    if status != "ok":
        raise BenchError(f"filling the history failed: {value}")
    return value


def _cpu() -> float:
    """CPU seconds of the bench process and of its children that have ended: the sending
    processes a dispatch run fans out to (the sink, still running, is not among them)."""
    return time.process_time() + children_cpu()


def _sink_cpu(sink: Sink) -> float | None:
    """CPU seconds the sink process has used (Linux /proc), to show its share of a send."""
    try:
        with open(f"/proc/{sink.pid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


class Bench:
    """One organisation in one fresh database: ``setup()``, then ``day()`` and ``rerun()``."""

    def __init__(self, db: Database, sink: Sink, units: int, *, profile_dir: Path | None = None,
                 per_run: bool = False):
        self.db, self.sink, self.units, self.profile_dir = db, sink, units, profile_dir
        # per_run: the previous shape — every duty run followed by a dispatch, notices released at
        # once — for comparing with figures of earlier versions. Default: production's shape.
        self.per_run = per_run
        self.engine: sa.Engine = get_engine(db.url)
        self.rt: Runtime | None = None
        self.run: Run | None = None

    # ------------------------------------------------------------------ helpers
    def _dump_profile(self, label: str, profiler: cProfile.Profile) -> None:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.run.label}-{self.units}-{label}"  # sqlite+history apart from sqlite
        profiler.dump_stats(self.profile_dir / f"{stem}.prof")
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        (self.profile_dir / f"{stem}.txt").write_text(text.getvalue(), encoding="utf-8")
        self.run.profiles.append(f"{stem}.txt")

    def _max_ids(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: conn.scalar(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))) for name, t in TRACKED.items()}

    def _counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for name, t in TRACKED.items()}

    def _rows_since(self, table: sa.Table, after: int, upto: int) -> list[dict]:
        with self.engine.connect() as conn:
            query = sa.select(table).where(table.c.id > after, table.c.id <= upto).order_by(table.c.id)
            return [dict(r) for r in conn.execute(query).mappings()]

    # ------------------------------------------------------------------ setup
    def setup(self) -> Run:
        _, t_migrate, _ = self._plain(lambda: upgrade("head", url=self.db.url))
        settings = Settings(_env_file=None, home=self.db.home, database_url=self.db.url,
                            secret_key=secrets.token_hex(32), digest_morning=None if self.per_run else DIGEST)
        self.rt = build_runtime(settings)
        _, t_catalog, _ = self._plain(lambda: ensure_catalog(self.rt))
        data = synthetic_organisation(self.units, channel_url=self.sink.channel_url)

        def load() -> dict:
            with session_scope(self.engine) as session:
                return store_org(session, data, actor="bench").as_dict()

        loaded, t_org, _ = self._plain(load)

        def snapshot() -> float:  # what every plan/remind/escalate step reads first (median of 3)
            times = []
            for _ in range(3):
                with session_scope(self.engine) as session:
                    _, seconds, _ = self._plain(lambda: org_snapshot(session))
                times.append(seconds)
            return sorted(times)[1]

        s = settings
        self.run = Run(
            backend=self.db.backend, server=self.db.server_version, units=self.units, org=data.counts(),
            settings={"send_concurrency": s.send_concurrency, "send_processes": s.send_processes,
                      "send_fanout_at": s.send_fanout_at, "send_retries": s.send_retries, "digest": s.digest,
                      "duties_planned": len(self.rt.catalog.planned)},
            setup={"migrate": t_migrate, "catalog": t_catalog, "org_load": t_org, "org_snapshot": snapshot()},
        )
        if loaded["units"]["new"] != len(data.units) or loaded["persons"]["new"] != len(data.persons):
            raise BenchError(f"the organisation did not load as built: {loaded}")
        return self.run

    @staticmethod
    def _plain(fn: Callable[[], object]) -> tuple[object, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        return result, time.perf_counter() - t0, time.process_time() - c0

    def history(self, day: str, log: Callable[[str], None]) -> dict:
        """Fill the database with the months before ``day``'s morning (``bench.history``)."""
        first_run = self.schedule(day)[0][0]
        with session_scope(self.engine) as session:
            org = org_snapshot(session)
        counts, seconds, _ = self._plain(lambda: _in_child(
            lambda: fill_history(get_engine(self.db.url), self.rt, org, HISTORY_FROM, first_run, log=log)))
        if self.db.backend == "sqlite":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        self.run.setup["history"] = seconds
        self.run.history = {"from": HISTORY_FROM.isoformat(), "to": first_run.isoformat(), "rows": counts}
        return counts

    # ------------------------------------------------------------------ a day
    def schedule(self, day: str) -> list[tuple[dt.datetime, str]]:
        """The morning run of every duty deployment on ``day``, in the order Prefect starts them."""
        out = []
        for spec in deployment_specs(self.rt.catalog):
            key = spec.parameters.get("duty")
            morning = next((s for s in spec.schedules if s.slug == "morning"), None)
            if key is None or morning is None:
                continue
            minute, hour = (int(x) for x in morning.cron.split()[:2])
            out.append((dt.datetime.combine(DAYS[day], dt.time(hour, minute), tzinfo=TZ), key))
        return sorted(out)

    def day(self, day: str, *, floors: bool = True, label: str | None = None) -> list[Phase]:
        """Each duty's flow run in schedule order: plan, remind, escalate, dispatch (as tasks/duty.py)."""
        rt = self.rt
        runs = self.schedule(day)
        if not all(duty_workflow.in_working_time(rt, at) for at, _ in runs):
            raise BenchError(f"the morning runs of {DAYS[day]} are not all in working time: nothing would be sent")
        clock = {name: [0.0, 0.0] for name in ("plan", "remind", "escalate", "dispatch")}
        counts: Counter[str] = Counter()
        spans: dict[str, list[tuple[dict, dict]]] = defaultdict(list)  # phase → (max ids before, after)
        # One profiler per kind of call (send runs inside dispatch: its profile is dispatch's).
        profilers = {name: cProfile.Profile() for name in ("plan", "remind", "escalate", "dispatch")} if self.profile_dir else {}

        mark = self._max_ids()

        def step(name: str, fn: Callable, *args):
            """One call, timed (and profiled) under its kind; the ids it added are remembered."""
            nonlocal mark
            profiler = profilers.get(name)
            t0, c0 = time.perf_counter(), _cpu()
            if profiler:
                profiler.enable()
            try:
                return fn(*args)
            finally:
                if profiler:
                    profiler.disable()
                clock[name][0] += time.perf_counter() - t0
                clock[name][1] += _cpu() - c0
                after = self._max_ids()
                spans[name].append((mark, after))
                mark = after

        sink_before, sink_cpu_before = self.sink.stats(), _sink_cpu(self.sink)
        processes: list[int] = []

        def dispatch(at: dt.datetime) -> None:
            report = step("dispatch", delivery.dispatch, rt, at)
            if report.failed or report.retrying or report.deferred:
                raise BenchError(f"{at}: {report.failed} message(s) failed, {report.retrying} wait for a retry, "
                                 f"{report.deferred} for a pacing slot: {report.failures[:3]}")
            counts.update(send=report.sent, composed=report.composed)
            processes.append(report.processes)

        for at, key in runs:  # what flows/duty_cycle.py does for each duty
            created = step("plan", duty_workflow.plan, rt, key, at)["created"]
            reminded = step("remind", duty_workflow.remind, rt, key, at)
            queued, nobody = reminded["queued"], reminded["unreachable"]
            fired = step("escalate", duty_workflow.escalate, rt, key, at)["fired"]
            counts.update(plan=created, remind=queued, unreachable=len(nobody), escalate=fired)
            if self.per_run:
                dispatch(at)
        if not self.per_run:  # what flows/dispatch.py does at the morning digest slot
            dispatch(dt.datetime.combine(DAYS[day], DIGEST, tzinfo=TZ))
        if self.run.morning_rss_mb is None:
            self.run.morning_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        sink_after, sink_cpu_after = self.sink.stats(), _sink_cpu(self.sink)
        posts = sink_after["requests"] - sink_before["requests"]
        if posts != counts["send"]:
            raise BenchError(f"pingan reports {counts['send']} sent but the sink received {posts} request(s)")

        def added(name: str, table: str) -> int:
            return sum(b[table] - a[table] for a, b in spans[name])

        phases = [
            Phase(day, "plan", counts["plan"], "tasks", *clock["plan"], extra={"flow_runs": len(runs)}),
            Phase(day, "remind", counts["remind"], "notices", *clock["remind"], extra={"unreachable": counts["unreachable"]}),
            Phase(day, "escalate", counts["escalate"], "events", *clock["escalate"],
                  extra={"notices": added("escalate", "notice")}),
            # Compose and send run at once (each lane composes while its senders send): one phase.
            Phase(day, "dispatch", counts["send"], "messages", *clock["dispatch"], extra={
                "composed": counts["composed"], "messages_made": added("dispatch", "message"),
                "notices": added("remind", "notice") + added("escalate", "notice"),
                "processes": max(processes) if processes else 1,
                "connections": sink_after["connections"] - sink_before["connections"],
                "bytes": sink_after["bytes"] - sink_before["bytes"],
                "sink_cpu": (sink_cpu_after - sink_cpu_before) if None not in (sink_cpu_before, sink_cpu_after) else None,
            }),
        ]
        phases[-1].extra.update(self._message_sizes(spans["dispatch"]))
        phases[-1].extra.update(self._per_recipient(spans["dispatch"]))
        phases[-1].extra["backlog"] = backlog = self._backlog()
        if not self.per_run and any(backlog.values()):
            raise BenchError(f"the morning's dispatch left work behind: {backlog}")
        for name, profiler in profilers.items():
            self._dump_profile(f"{label or day}-{name}", profiler)
        if floors:
            self._floors({p.name: p for p in phases}, spans)
        self.run.phases.extend(phases)
        return phases

    def _message_sizes(self, spans: list[tuple[dict, dict]]) -> dict:
        """How big the messages got, in UTF-8 bytes: chat webhooks cap a text message (WeCom's
        group bot at 2,048 bytes), and one person's digest of a whole duty can be far larger."""
        lo, hi = spans[0][0]["message"], spans[-1][1]["message"]
        with self.engine.connect() as conn:
            sizes = sorted(len((body or "").encode()) for body in conn.scalars(
                sa.select(M.c.body).where(M.c.id > lo, M.c.id <= hi)))
        if not sizes:
            return {"body_bytes_max": 0, "body_bytes_median": 0, "over_2048_bytes": 0, "over_4096_bytes": 0}
        return {"body_bytes_max": sizes[-1], "body_bytes_median": sizes[len(sizes) // 2],
                "over_2048_bytes": sum(1 for n in sizes if n > 2048), "over_4096_bytes": sum(1 for n in sizes if n > 4096)}

    def _per_recipient(self, spans: list[tuple[dict, dict]]) -> dict:
        """Messages each person got this morning: a principal mutes a channel that sends seven."""
        lo, hi = spans[0][0]["message"], spans[-1][1]["message"]
        with self.engine.connect() as conn:
            per = [n for (n,) in conn.execute(sa.select(sa.func.count()).where(M.c.id > lo, M.c.id <= hi)
                                             .group_by(M.c.person_id))]
        return {"recipients": len(per), "messages_per_recipient": round(sum(per) / len(per), 3) if per else 0,
                "most_messages_one_recipient": max(per, default=0)}

    def _backlog(self) -> dict:
        """What the day's dispatches left for a later one (a cap on a batch, a retry)."""
        with self.engine.connect() as conn:
            notices = conn.scalar(sa.select(sa.func.count()).select_from(N).where(N.c.message_id.is_(None)))
            pending = conn.scalar(sa.select(sa.func.count()).select_from(M).where(M.c.status.in_(("pending", "sending"))))
        return {"notices": notices, "messages": pending}

    def _floors(self, by_name: dict[str, Phase], spans: dict[str, list[tuple[dict, dict]]]) -> None:
        """Floors for the phases just run, over exactly the rows each phase wrote."""
        # The tables each phase writes. Dispatch's floor: its messages inserted, then posted
        # (its deliveries and audit rows, and the update of the notices, are in no floor).
        written = {"plan": ("plan", [O, A]), "remind": ("remind", [N, A]), "escalate": ("escalate", [E, N, A])}
        for name, (span, tables) in written.items():
            rows = [(t, [r for a, b in spans[span] for r in self._rows_since(t, a[t.name], b[t.name])]) for t in tables]
            if any(r for _, r in rows):
                by_name[name].floor = insert_floor(self.engine, rows, "Core INSERT")
        dispatch = by_name["dispatch"]
        messages = [m for a, b in spans["dispatch"] for m in self._rows_since(M, a["message"], b["message"])]
        if not dispatch.count or not messages:
            return
        made = insert_floor(self.engine, [(M, messages)], "Core INSERT")
        payloads = [apprise_json_payload(m["title"], m["body"]) for m in messages if m["status"] == "sent"]
        url, concurrency = f"{self.sink.base}/sink/floor", self.rt.settings.send_concurrency
        # as many processes as pingan's dispatch used (it fans out from send_fanout_at persons)
        posted = http_floor(url, payloads, concurrency, keepalive=True, processes=dispatch.extra["processes"])
        dispatch.floor = Floor(f"Core INSERT + {posted.label}", posted.count, made.seconds + posted.seconds,
                               made.cpu + posted.cpu)
        dispatch.extra["floor_parts"] = {"insert": asdict(made), "post": asdict(posted)}
        # Apprise's way (a connection per POST) on a sample: it only explains the gap.
        sample = payloads[:: max(1, len(payloads) // NEW_CONNECTION_SAMPLE)][:NEW_CONNECTION_SAMPLE]
        dispatch.extra["floor_new_connection"] = asdict(http_floor(url, sample, concurrency, keepalive=False))
        if self.profile_dir:
            self._profile_deliver(dispatch.day, [m for m in messages if m["status"] == "sent"])

    def _profile_deliver(self, day: str, messages: list[dict], n: int = 2000) -> None:
        """cProfile sees only the main thread, so profile ``transports.deliver`` serially on a sample."""
        with self.engine.connect() as conn:
            urls = dict(conn.execute(sa.select(Channel.__table__.c.id, Channel.__table__.c.url)).tuples().all())
        sample = messages[:: max(1, len(messages) // n)][:n]
        timeout = self.rt.settings.send_timeout
        profiler = cProfile.Profile()
        profiler.enable()
        for m in sample:
            transports.deliver(urls[m["channel_id"]], m["title"], m["body"], timeout=timeout)
        profiler.disable()
        self._dump_profile(f"{day}-deliver-serial-{len(sample)}", profiler)

    # ------------------------------------------------------------------ the re-run
    def rerun(self, day: str) -> dict:
        """The same day again: must insert nothing and send nothing."""
        before, sink_before = self._counts(), self.sink.stats()
        phases = self.day(day, floors=False, label=f"{day}-again")
        for p in phases:
            p.day = f"{day} (re-run)"
        after, sink_after = self._counts(), self.sink.stats()
        posts = sink_after["requests"] - sink_before["requests"]
        result = {
            "inserted": {name: after[name] - before[name] for name in after},
            "counts": {p.name: p.count for p in phases},
            "posts": posts,
            "seconds": sum(p.seconds for p in phases),
        }
        result["idempotent"] = not any(result["inserted"].values()) and not any(result["counts"].values()) and posts == 0
        self.run.reruns[day] = result
        if not result["idempotent"]:
            raise BenchError(f"re-running the {day} day changed something: {result}")
        return result


def run_once(db: Database, sink: Sink, units: int, days: list[str], runs: list[Run], *, rerun: bool = True,
             profile_dir: Path | None = None, log: Callable[[str], None] = print, per_run: bool = False,
             history: bool = False) -> Run:
    """Set up and run the days; the Run is appended to ``runs`` first, so a failed check keeps what was measured."""
    with _collect_warnings() as notes:
        bench = Bench(db, sink, units, profile_dir=profile_dir, per_run=per_run)
        run = bench.setup()
        runs.append(run)
        try:
            log(f"  {db.backend}: {units:,} units, {run.org['persons']:,} persons loaded in {run.setup['org_load']:.1f} s")
            if history:
                rows = bench.history(days[0], log)
                log(f"  history: {sum(rows.values()):,} rows in {run.setup['history']:.0f} s ({rows})")
            for day in days:
                t0 = time.perf_counter()
                phases = bench.day(day)
                log(f"  {day}: " + ", ".join(f"{p.name} {p.count:,} {p.unit} {p.seconds:.1f} s" for p in phases)
                    + f" (with floors {time.perf_counter() - t0:.0f} s)")
                if rerun:
                    r = bench.rerun(day)
                    log(f"  {day} re-run: {'idempotent' if r['idempotent'] else 'NOT idempotent'}, "
                        f"{sum(r['inserted'].values())} rows, {r['posts']} POSTs, {r['seconds']:.1f} s")
        finally:
            run.sink = sink.stats()
            run.notes = list(notes)
            run.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return run
