"""What keeps a morning's cost proportional to what is due, not to the history behind it.

- the reminder and escalation engines read only the tasks with a step or an event due
  (``occurrence.next_reminder_at`` / ``next_escalation_at``), and still fire every step and
  event on the day the policy says;
- a period already planned for the organisation as it is is skipped (``plan_mark``) — until
  the organisation changes;
- compose works in batches of whole persons: a batch limit never splits a person's notices;
- ``GroupCommit`` shares commits between threads, and a failing statement fails only its caller.

Expected days and times below are worked out by hand from the catalog's ``standard`` policy
(grace 1 d; levels after 0, 3 and 7 d; repeats every 7 d doubling to 28 d) and the 2026
calendar (no holiday in November or December; 1 January 2027 is New Year's Day).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import threading

import pytest
import sqlalchemy as sa
from factories import make_runtime, rows

from models import Notice, Occurrence, Person, Role, Unit
from pingan.core.clock import TZ
from pingan.core.db import GroupCommit, WriterTurn, get_engine, session_scope
from pingan.core.periods import days
from pingan.delivery import notices
from pingan.delivery.outbox import compose
from pingan.duties import cycle as cycle_module
from pingan.duties.workflow import cycle

MEETING = "school-meeting"  # monthly, standard policy; carried by the principal and safety officer of S1 and S2


@pytest.fixture
def rt(tmp_path, migrated_db):
    return make_runtime(tmp_path, send_backoff=0)


def at(day: dt.date | str, hm: str = "10:00") -> dt.datetime:
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return dt.datetime.combine(day, dt.time.fromisoformat(hm), tzinfo=TZ)


def working_days(first: str, last: str) -> list[dt.date]:
    holidays = {dt.date(2027, 1, 1)}
    return [d for d in days(dt.date.fromisoformat(first), dt.date.fromisoformat(last)) if d.weekday() < 5 and d not in holidays]


class Reads:
    """Spy on the one query both engines read tasks with: how many tasks each call returned."""

    def __init__(self, monkeypatch):
        self.counts: list[int] = []
        real = cycle_module._tasks

        def spy(session, duty_key, where):
            found = real(session, duty_key, where)
            self.counts.append(len(found))
            return found

        monkeypatch.setattr(cycle_module, "_tasks", spy)


def test_every_step_and_event_fires_on_its_day_and_a_quiet_run_reads_no_task(rt, ids, monkeypatch):
    reads = Reads(monkeypatch)
    quiet: dict[dt.date, list[int]] = {}
    for day in working_days("2026-11-02", "2026-12-31"):
        before = len(reads.counts)
        cycle(rt, MEETING, at(day))
        quiet[day] = reads.counts[before:]  # [remind reads, escalate reads]
    with session_scope() as session:
        got = rows(session, "select o.period_key, n.step, n.created_at from notice n join occurrence o on o.id = n.occurrence_id "
                            "where n.duty_key = :d", d=MEETING)
        events = rows(session, "select o.period_key, e.level, e.seq, e.fired_at from escalation e "
                               "join occurrence o on o.id = e.occurrence_id where o.duty_key = :d", d=MEETING)
    fired = {}
    for period, step, created in got:
        if not step.startswith("L"):  # escalation notices go to leaders; level 1 (the principal) has none here
            fired.setdefault((period, step), set()).add(str(created)[:10])
    for period, level, seq, when in events:  # the events themselves, notice or not
        fired.setdefault((period, f"L{level}" + (f"R{seq}" if seq else "")), set()).add(str(when)[:10])
    # October's task: 31 Oct is a Saturday, so it is due on the next working day, Mon 2 Nov 17:30
    #   (escalation from Tue 3 Nov 17:30). The first run, on 2 Nov, finds "open", "due-7d" and
    #   "due-1d" (1 Nov 17:30) past: only the latest, due-1d, is sent. due (2 Nov 17:30) on Tue 3 Nov;
    #   L1 (3 Nov 17:30) on Wed 4 Nov, L2 (6 Nov 17:30) on Mon 9 Nov, L3 (10 Nov 17:30) on Wed 11 Nov,
    #   repeats +7 d (17 Nov 17:30) on 18 Nov, +14 d (1 Dec 17:30) on 2 Dec, +28 d (29 Dec 17:30) on 30 Dec.
    # November's task (due Mon 30 Nov 17:30, escalation from Tue 1 Dec 17:30):
    #   open on Mon 2 Nov, due-7d (23 Nov 17:30) on Tue 24 Nov, due-1d (Sun 29 Nov 17:30) on Mon 30 Nov,
    #   due (30 Nov 17:30) on Tue 1 Dec (before escalation begins that evening);
    #   L1 (1 Dec 17:30) on Wed 2 Dec, L2 (4 Dec 17:30) on Mon 7 Dec, L3 (8 Dec 17:30) on Wed 9 Dec,
    #   L3 repeat 1 (+7 d: 15 Dec 17:30) on Wed 16 Dec, repeat 2 (+14 d: 29 Dec 17:30) on Wed 30 Dec.
    # December's task (due Thu 31 Dec 17:30): open on Tue 1 Dec, due-7d (24 Dec 17:30) on Fri 25 Dec,
    #   due-1d (30 Dec 17:30) on Thu 31 Dec; its "due" step comes after the last run.
    # Each notice is stamped by the run that queued it, at 10:00 Shanghai = 02:00 UTC the same day.
    assert fired == {
        ("2026-10", "due-1d"): {"2026-11-02"}, ("2026-10", "due"): {"2026-11-03"},
        ("2026-10", "L1"): {"2026-11-04"}, ("2026-10", "L2"): {"2026-11-09"}, ("2026-10", "L3"): {"2026-11-11"},
        ("2026-10", "L3R1"): {"2026-11-18"}, ("2026-10", "L3R2"): {"2026-12-02"}, ("2026-10", "L3R3"): {"2026-12-30"},
        ("2026-11", "open"): {"2026-11-02"}, ("2026-11", "due-7d"): {"2026-11-24"},
        ("2026-11", "due-1d"): {"2026-11-30"}, ("2026-11", "due"): {"2026-12-01"},
        ("2026-11", "L1"): {"2026-12-02"}, ("2026-11", "L2"): {"2026-12-07"}, ("2026-11", "L3"): {"2026-12-09"},
        ("2026-11", "L3R1"): {"2026-12-16"}, ("2026-11", "L3R2"): {"2026-12-30"},
        ("2026-12", "open"): {"2026-12-01"}, ("2026-12", "due-7d"): {"2026-12-25"}, ("2026-12", "due-1d"): {"2026-12-31"},
    }
    # A run with nothing due reads no task at all (before, escalation re-read every overdue task).
    assert quiet[dt.date(2026, 12, 10)] == [0, 0]
    assert quiet[dt.date(2026, 12, 9)] == [0, 2]  # L3 of the two November tasks (S1, S2)
    assert quiet[dt.date(2026, 12, 30)] == [0, 4]  # repeats of October's and November's
    assert quiet[dt.date(2026, 12, 25)] == [2, 0]  # due-7d of December's
    with session_scope() as session:
        nxt = dict(((p, u), (r, e)) for p, u, r, e in rows(
            session, "select period_key, unit_id, next_reminder_at, next_escalation_at from occurrence where duty_key = :d",
            d=MEETING))
    s1 = ids["S1"]
    # November: no reminder left; the next repeat 28 d after 29 Dec 17:30. December: its "due" step next.
    assert (nxt[("2026-11", s1)][0], str(nxt[("2026-11", s1)][1])[:16]) == (None, "2027-01-26 09:30")
    assert str(nxt[("2026-12", s1)][0])[:16] == "2026-12-31 09:30"  # 17:30 Shanghai, stored in UTC


def test_a_rejected_hand_in_and_a_revoked_waiver_bring_a_task_back(rt, ids, monkeypatch):
    for day in working_days("2026-11-02", "2026-12-03"):
        cycle(rt, MEETING, at(day))
    task = rows_one("select id from occurrence where duty_key = :d and period_key = '2026-11' and unit_id = :u",
                    d=MEETING, u=ids["S1"])
    with session_scope() as session:  # handed in on 3 Dec, then rejected on 8 Dec after L2 was due
        session.execute(sa.update(Occurrence).where(Occurrence.id == task).values(review="submitted"))
    for day in working_days("2026-12-04", "2026-12-07"):
        cycle(rt, MEETING, at(day))
    with session_scope() as session:
        session.execute(sa.update(Occurrence).where(Occurrence.id == task).values(review="rejected"))
    cycle(rt, MEETING, at("2026-12-08"))
    with session_scope() as session:
        levels = rows(session, "select level, seq, reason from escalation where occurrence_id = :t order by level", t=task)
    # L1 fired on 2 Dec; L2 (due 4 Dec) waited while the evidence was under review and fires on
    # the first run after the rejection, with the reason "rejected".
    assert [tuple(r) for r in levels] == [(1, 0, "missing"), (2, 0, "rejected")]


def rows_one(sql: str, **params):
    with session_scope() as session:
        return rows(session, sql, **params)[0][0]


def test_the_same_instant_again_plans_nothing_until_the_organisation_changes(rt, ids, monkeypatch):
    written: list[int] = []
    real = cycle_module.insert_new

    def spy(session, table, rows_, *args, **kwargs):
        if table is Occurrence.__table__:
            written.append(len(rows_))
        return real(session, table, rows_, *args, **kwargs)

    monkeypatch.setattr(cycle_module, "insert_new", spy)
    first = cycle(rt, MEETING, at("2026-11-02"))
    again = cycle(rt, MEETING, at("2026-11-02", "10:05"))
    # On 2 Nov two periods are open (October's, due on Mon 2 Nov as 31 Oct is a Saturday, and
    # November's), for the two junior/primary schools S1 and S2.
    assert (first.planned, again.planned) == (4, 0)
    assert written == [4, 0]  # the second run did not even offer the four tasks to the database
    with session_scope() as session:  # a new junior school joins: the period is planned again, for it alone
        unit = Unit(code="S3", name="三中", kind="junior", parent_id=ids["B"])
        session.add(unit)
        session.flush()
        person = Person(code="s3-head", name="三中校长", unit_id=unit.id)
        session.add(person)
        session.flush()
        session.add(Role(person_id=person.id, unit_id=unit.id, role="principal"))
    later = cycle(rt, MEETING, at("2026-11-02", "10:10"))
    assert later.planned == 2 and written[-1] == 6  # both periods offered again for all three; S3's two are new
    assert cycle(rt, MEETING, at("2026-11-02", "10:15")).planned == 0 and written[-1] == 0


def test_compose_never_splits_a_persons_notices_across_batches(rt, ids):
    people = ["chief", "dep-a", "dep-b", "s1-head", "s2-head"]
    stamp = at("2026-11-02", "09:00")
    with session_scope() as session:
        notices.queue(session, [notices.notice(ids[code], f"n{i}", "announcement", "t", {"text": f"第{i}条"}, stamp)
                                for code in people for i in range(3)])
    made = []
    while True:
        n = compose(get_engine(), rt.settings, stamp, describe=rt.describe, persons=2)
        if not n:
            break
        made.append(n)
    assert made == [2, 2, 1]
    with session_scope() as session:
        per_person = rows(session, "select person_id, count(distinct message_id), count(*) from notice group by person_id")
        unlinked = session.scalar(sa.select(sa.func.count()).select_from(Notice).where(Notice.message_id.is_(None)))
        bodies = dict(rows(session, "select person_id, body from message"))
    assert sorted((m, c) for _, m, c in per_person) == [(1, 3)] * 5 and unlinked == 0
    assert all(all(f"第{i}条" in bodies[ids[code]] for i in range(3)) for code in people)


def _burst(write: GroupCommit, keys: list[int], grouped=None) -> tuple[dict, dict]:
    """Each key inserted by a thread of its own; the first holds the writer until the others wait
    in its queue. ``grouped``: the others hand their key to this handler (``write.many``)."""
    hold, results, errors = threading.Event(), {}, {}

    def insert(index: int, k: int) -> None:
        def work(conn):
            if index == 0:
                hold.wait(10)
            conn.exec_driver_sql(f"insert into gc_probe (k) values ({k})")
            return k
        try:
            results[index] = write.many(grouped, k) if grouped and index else write(work)
        except sa.exc.IntegrityError as exc:
            errors[index] = exc

    threads = [threading.Thread(target=insert, args=(i, k)) for i, k in enumerate(keys)]
    threads[0].start()
    while write._queue.qsize():  # the writer has taken the first item
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while write._queue.qsize() < len(keys) - 1:
        threading.Event().wait(0.001)
    hold.set()
    for t in threads:
        t.join()
    return results, errors


def test_group_commit_shares_commits_and_fails_only_the_faulty_statement(migrated_db):
    engine = get_engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("create table gc_probe (k integer primary key)")
    commits: list[int] = []

    def count(conn) -> None:
        commits.append(1)

    sa.event.listen(engine, "commit", count)
    try:
        with GroupCommit(engine) as write:
            results, errors = _burst(write, list(range(10)))
            assert sorted(results.values()) == list(range(10)) and not errors
            assert len(commits) == 2  # the first alone, then the nine that queued behind it in one commit
            commits.clear()
            results, errors = _burst(write, [10, 11, 12, 13, 11])  # the last clashes with the second
            assert list(errors) == [4] and sorted(results.values()) == [10, 11, 12, 13]
            # the failed batch rolled back, then each of its statements ran alone: 1 + 3 commits
            assert len(commits) == 4
        with engine.connect() as conn:
            assert sorted(conn.exec_driver_sql("select k from gc_probe").scalars()) == list(range(14))
    finally:
        sa.event.remove(engine, "commit", count)


def test_group_commit_writes_the_items_of_a_batch_with_one_call_of_their_handler(migrated_db):
    engine = get_engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("create table gc_probe (k integer primary key)")
    calls: list[list[int]] = []

    def insert_all(conn, keys: list[int]) -> list[int]:
        calls.append(sorted(keys))
        conn.execute(sa.text("insert into gc_probe (k) values (:k)"), [{"k": k} for k in keys])
        return [k * 10 for k in keys]

    with GroupCommit(engine) as write:
        results, errors = _burst(write, list(range(10)), grouped=insert_all)
        # the nine queued behind the first went in with one call, each caller got its own answer
        assert calls == [list(range(1, 10))] and not errors
        assert results == {0: 0, **{i: i * 10 for i in range(1, 10)}}
        calls.clear()
        results, errors = _burst(write, [10, 11, 12, 13, 11], grouped=insert_all)
        # the batch failed on the repeated key, then each item ran alone: only the clash failed
        assert calls[0] == [11, 11, 12, 13] and sorted(calls[1:]) == [[11], [11], [12], [13]]
        assert len(errors) == 1 and set(errors) <= {1, 4} and sorted(results.values()) == [10, 110, 120, 130]
    with engine.connect() as conn:
        assert sorted(conn.exec_driver_sql("select k from gc_probe").scalars()) == list(range(14))


def test_notices_written_in_bulk_come_back_as_written_and_only_once(migrated_db):
    """``insert_new`` (psycopg's own executemany on PostgreSQL, a plain executemany on SQLite):
    time zones, JSON and booleans as written; a repeat inserts nothing; a new key is counted."""
    from models import Notice, Person, Unit
    from pingan.core.clock import TZ
    from pingan.core.db import _psycopg_executemany
    from pingan.delivery import notices

    as_of = dt.datetime(2026, 10, 8, 8, 35, tzinfo=TZ)
    with session_scope() as session:
        unit = Unit(code="u1", name="一中", kind="primary")
        session.add(unit)
        session.flush()
        people = [Person(code=f"p{i}", name=f"人{i}", unit_id=unit.id) for i in range(3)]
        session.add_all(people)
        session.flush()
        rows = [notices.notice(p.id, f"k:{p.id}", "reminder", "open", {"duty": "d", "due": "2026-10-15T17:30:00+08:00",
                                                                        "名称": "安全检查"}, as_of,
                               urgent=i == 0, release_at=as_of + dt.timedelta(minutes=25)) for i, p in enumerate(people)]
        if session.get_bind().dialect.name == "postgresql":  # the fast path is taken, not its fallback
            stmt = sa.dialects.postgresql.insert(Notice.__table__).on_conflict_do_nothing(
                index_elements=["person_id", "dedupe_key"]).returning(Notice.__table__.c.id)
            assert len(_psycopg_executemany(session, stmt, rows[:1])) == 1
            assert notices.queue(session, rows) == 2
        else:
            assert notices.queue(session, rows) == 3
        assert notices.queue(session, rows) == 0
        assert notices.queue(session, [{**rows[0], "dedupe_key": "k:new"}]) == 1
    with session_scope() as session:
        got = session.execute(sa.select(Notice.dedupe_key, Notice.payload, Notice.urgent, Notice.release_at)
                              .order_by(Notice.id)).all()
    assert [g.dedupe_key for g in got] == [r["dedupe_key"] for r in rows] + ["k:new"]
    assert all(g.payload == rows[0]["payload"] for g in got)
    assert [g.urgent for g in got] == [True, False, False, True]
    assert all(g.release_at == as_of + dt.timedelta(minutes=25) and g.release_at.utcoffset() is not None for g in got)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_group_commit_writers_of_several_processes_take_turns_on_one_sqlite_file(migrated_db):
    """While one writer is in its transaction, the lock file every other writer (of any process)
    must take first is held: a second open of it cannot lock (what another process would see)."""
    engine = get_engine()
    turn = WriterTurn.of(engine)
    assert turn.path == f"{engine.url.database}.writer-lock"
    with GroupCommit(engine) as write:
        def probe(conn) -> bool:
            with open(turn.path) as other:
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                return False
        assert write(probe) is True  # held during the writer's transaction
    with open(turn.path) as other:  # and free once it committed
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert WriterTurn.of(sa.create_engine("sqlite://")).path is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_duty_flow_run_makes_as_many_task_runs_at_20000_schools_as_at_10(migrated_db, prefect_harness):
    """The orchestration does not grow with the organisation: one task run per step, whatever the size."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.duty_cycle import duty_cycle
    from pingan.duties.runtime import get_runtime
    from pingan.org.demo import synthetic_organisation
    from pingan.org.service import store_org

    duty = get_runtime().catalog.duty("school-daily-patrol")

    def grow_to(n: int) -> int:
        data = synthetic_organisation(n)
        with session_scope() as session:
            store_org(session, data, actor="test")
        return sum(1 for u in data.units if u.kind in duty.carrier.unit_kinds)

    def task_runs(as_of: dt.datetime) -> tuple[int, int]:
        state = duty_cycle(duty=duty.key, as_of=as_of, return_state=True)
        with get_client(sync_client=True) as client:
            found = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        return len(found), state.result()["planned"]

    small_schools = grow_to(10)
    small = task_runs(at("2026-11-02", "08:35"))
    large_schools = grow_to(20_000)  # the same bureau grows: its first ten schools are kept
    large = task_runs(at("2026-11-03", "08:35"))
    assert (small[1], large[1]) == (small_schools, large_schools) and large_schools > 15_000
    assert small[0] == large[0] == len(("plan", "remind", "escalate", "publish"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_province_parameter_runs_a_duty_on_that_shards_database(migrated_db, prefect_harness, tmp_path, monkeypatch):
    import json

    from flows.duty_cycle import duty_cycle
    from flows.dispatch import outbox_dispatch
    from pingan.core.migrate import upgrade
    from pingan.core.settings import reset_settings
    from pingan.duties.runtime import reset_runtime
    from pingan.org.demo import synthetic_organisation
    from pingan.org.service import store_org

    shards = {name: f"sqlite:///{tmp_path / name}.db" for name in ("jl", "ln")}
    for name, url in shards.items():
        upgrade("head", url=url)
        with session_scope(get_engine(url)) as session:
            store_org(session, synthetic_organisation(30 if name == "jl" else 12, prefix=name.upper()), actor="test")
    monkeypatch.setenv("PINGAN_SHARDS", json.dumps(shards))
    reset_settings()
    reset_runtime()
    try:
        # the patrol's reminder (3 h before its 17:30 deadline) goes out at the 15:00 digest
        done = duty_cycle(duty="school-daily-patrol", as_of=at("2026-11-02", "14:35"), province="ln")
        outbox_dispatch(as_of=at("2026-11-02", "15:00"), province="ln")

        def count(url: str, sql: str) -> int:
            with get_engine(url).connect() as conn:
                return conn.exec_driver_sql(sql).scalar()

        from pingan.duties.runtime import get_runtime
        kinds = ", ".join(f"'{k.value}'" for k in get_runtime().catalog.duty("school-daily-patrol").carrier.unit_kinds)
        schools = count(shards["ln"], f"select count(*) from unit where kind in ({kinds})")
        assert done["planned"] == count(shards["ln"], "select count(*) from occurrence") == schools > 0
        assert count(shards["ln"], "select count(*) from message") > 0
        assert count(shards["jl"], "select count(*) from occurrence") == 0
        assert count(migrated_db.url.render_as_string(hide_password=False), "select count(*) from occurrence") == 0
        state = duty_cycle(duty="school-daily-patrol", as_of=at("2026-11-02", "08:35"), province="xz", return_state=True)
        assert state.is_failed() and "province 'xz' is not a shard" in str(state.message) + repr(state.result(raise_on_failure=False))
    finally:
        monkeypatch.delenv("PINGAN_SHARDS")
        reset_settings()
        reset_runtime()
