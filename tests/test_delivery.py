"""The one dispatcher: one message per person at the digest slot, pacing per destination, and
what a crash can do — at every risky window, with exact counts.

Channels are ``json://`` (and ``smsgw://``) URLs of a loopback sink (``factories.Sink``) unless
a test patches the HTTP session for a chat service. Crashes are real: ``tests/faults.py`` runs
the dispatcher in a process of its own and ends it with ``os._exit`` (as ``kill -9`` does) at
the chosen point; the test then lets the lease lapse by moving the claim's last renewal back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections import Counter

import pytest
import requests
import sqlalchemy as sa
from sqlmodel import Session

from factories import DUTIES, at, make_catalog_dir, make_org, make_runtime, rows
from models import Audit, Channel, Delivery, Message, MessageStatus, Notice, NoticeKind, Person
from pingan.cli.supervisor import poll
from pingan.core.clock import TZ
from pingan.core.db import GroupCommit, get_engine, session_scope
from pingan.core.settings import REPO_ROOT
from pingan.delivery import notices, outbox, release
from pingan.delivery.limits import LIMITS, Limit
from pingan.delivery.outbox import compose, send
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import load_catalog
from pingan.duties.runtime import build_runtime
from pingan.core.settings import Settings
from pingan.duties.workflow import cycle

PEOPLE = ("chief", "dep-a", "dep-b", "safe-head", "off-head", "s1-head", "s1-safe", "s2-head", "s2-safe", "k1-head")


@pytest.fixture
def world(tmp_path, migrated_db, sink, monkeypatch):
    """The named organisation, every person's one channel a path of the sink."""
    rt = make_runtime(tmp_path, send_backoff=0, send_retries=0, send_concurrency=4, send_timeout=2.0)
    with session_scope() as session:
        ids = make_org(session, channel=lambda code: sink.url(f"p/{code}"))
    return rt, ids


def tune(rt, **settings):
    """The same runtime with other settings."""
    return build_runtime(rt.settings.model_copy(update=settings), rt.catalog)


def announce(ids, people=PEOPLE, *, as_of=None, key="a"):
    """An announcement released now for each of ``people``."""
    as_of = as_of or at("2026-11-10")
    with session_scope() as session:
        notices.queue(session, [notices.notice(ids[code], f"{key}:{code}", NoticeKind.announcement, "t",
                                               {"text": f"通知 {code}"}, as_of) for code in people])
    return as_of


def statuses(session) -> Counter:
    return Counter(dict(rows(session, "select status, count(*) from message group by status")))


def set_channel(ids, code: str, *urls: str) -> None:
    with session_scope() as session:
        session.execute(sa.delete(Channel).where(Channel.person_id == ids[code]))
        for priority, url in enumerate(urls, 1):
            session.add(Channel(person_id=ids[code], priority=priority, url=url))


# =========================================================================== when notices go

MONDAY, SATURDAY = dt.date(2026, 11, 9), dt.date(2026, 11, 14)


def moment(day: dt.date, hm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hm), tzinfo=TZ)


@pytest.mark.parametrize("queued, due, urgent, expected", [
    (moment(MONDAY, "08:35"), moment(MONDAY + dt.timedelta(days=5), "17:30"), False, moment(MONDAY, "09:00")),
    (moment(MONDAY, "09:00"), None, False, moment(MONDAY, "09:00")),
    (moment(MONDAY, "10:00"), moment(MONDAY, "17:30"), False, moment(MONDAY, "15:00")),  # due today: the afternoon
    (moment(MONDAY, "10:00"), moment(MONDAY + dt.timedelta(days=1), "17:30"), False, moment(MONDAY + dt.timedelta(days=1), "09:00")),
    (moment(MONDAY, "15:30"), moment(MONDAY, "17:30"), False, moment(MONDAY + dt.timedelta(days=1), "09:00")),
    (moment(SATURDAY, "10:00"), moment(SATURDAY, "17:30"), False, moment(SATURDAY + dt.timedelta(days=2), "09:00")),
    (moment(SATURDAY, "10:00"), None, True, moment(SATURDAY, "10:00")),  # urgent: at once, any day
    # the National Day holiday 2026 (1 to 7 October): the next working morning is Thursday 8 October
    (moment(dt.date(2026, 9, 30), "16:00"), None, False, moment(dt.date(2026, 10, 8), "09:00")),
])
def test_a_notice_waits_for_its_digest_slot(tmp_path, queued, due, urgent, expected):
    rt = make_runtime(tmp_path)
    got = release.release_at(queued, calendar=rt.calendar, morning=dt.time(9), afternoon=dt.time(15), due_at=due,
                             urgent=urgent)
    assert got == expected


def test_without_a_morning_slot_everything_goes_at_once(tmp_path):
    rt = make_runtime(tmp_path)
    queued = moment(SATURDAY, "23:00")
    assert release.release_at(queued, calendar=rt.calendar, morning=None, afternoon=None) == queued


SCHOOL_DRILL = """
  - key: school-drill
    name: 学校每月演练
    name_en: School monthly drill
    source: {document: test.txt, clause: 七（七）}
    text: 中小学校每月开展 1 次安全演练
    carrier: {unit_kinds: [primary, junior], roles: [principal, safety_officer]}
    cadence: {every: monthly}
    evidence: [drill_record]
    reminders: periodic
    escalation: standard
"""


def test_a_morning_of_duty_runs_is_one_message_per_person(tmp_path, migrated_db, sink):
    """Every duty's morning run queues; the 09:00 dispatcher sends each person one message."""
    catalog_dir = make_catalog_dir(tmp_path, DUTIES + SCHOOL_DRILL)
    rt = build_runtime(Settings(catalog_dir=catalog_dir, send_backoff=0, digest_morning=dt.time(9),
                                digest_afternoon=dt.time(15)), load_catalog(catalog_dir))
    with session_scope() as session:
        make_org(session, channel=lambda code: sink.url(f"p/{code}"))
    duties = ("school-meeting", "school-drill", "kindergarten-drill", "office-report", "leader-inspection")
    # 1 October 2026 is a holiday; 8 October the first working day after it: every period opens.
    for minute, key in enumerate(duties):
        cycle(rt, key, moment(dt.date(2026, 10, 8), f"08:{31 + minute * 7:02d}"))
    with session_scope() as session:
        owed = rows(session, "select person_id, count(*) from notice group by person_id")
    assert max(n for _, n in owed) > 1, "somebody is owed several notices: the digest has something to do"
    assert dispatch(rt, moment(dt.date(2026, 10, 8), "08:59")).sent == 0  # nothing before the slot
    report = dispatch(rt, moment(dt.date(2026, 10, 8), "09:00"))
    assert report.sent == len(owed) == len(sink.received)
    assert set(sink.paths().values()) == {1}


# =========================================================================== crashes

def run_faulty(point: str, nth: int, *, env_extra: dict | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "PINGAN_SEND_CONCURRENCY": "1", "PINGAN_SEND_BACKOFF": "0",
                "PINGAN_SEND_RETRIES": "0", **(env_extra or {})})
    done = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "faults.py"), point, str(nth)], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode


def lapse_leases(seconds: int = 61) -> None:
    """The dispatcher that held the claims stopped renewing them ``seconds`` ago."""
    M = Message.__table__
    with session_scope() as session:
        claims = session.execute(sa.select(M.c.id, M.c.claimed_at).where(M.c.status == "sending")).all()
        for mid, claimed in claims:
            session.execute(sa.update(M).where(M.c.id == mid).values(claimed_at=claimed - dt.timedelta(seconds=seconds)))


def test_a_crash_after_a_send_before_its_outcome_repeats_that_message_only(world, sink):
    rt, ids = world
    announce(ids)
    assert run_faulty("finish", 3) == 137  # the 3rd message reached the sink; its outcome was never written
    assert len(sink.received) == 3
    with session_scope() as session:
        # all ten claimed in one chunk: two sent, one call in flight, seven not started
        assert statuses(session) == Counter({"sent": 2, "sending": 8})
        assert rows(session, "select count(*) from delivery where ok is null")[0][0] == 1
    assert dispatch(rt, at("2026-11-10")).sent == 0  # the claim is still live: nothing is taken from it
    lapse_leases()
    report = dispatch(rt, at("2026-11-10"))
    assert (report.recovered, report.possible_repeats, report.sent) == (8, 1, 8)
    counts = sink.paths()
    assert sorted(counts.values()) == [1] * 9 + [2] and len(counts) == len(PEOPLE)  # 0 lost, 1 repeat
    with session_scope() as session:
        assert statuses(session) == Counter({"sent": 10})
        repeat = rows(session, "select p.code from message m join person p on p.id = m.person_id where m.possible_repeat")
        assert [r[0] for r in repeat] == [path.rsplit("/", 1)[-1] for path, n in counts.items() if n == 2]
        assert rows(session, "select count(*) from delivery where interrupted")[0][0] == 1
        details = [d if isinstance(d, dict) else json.loads(d)
                   for (d,) in rows(session, "select detail from audit where action = 'message.sent'")]
        assert sum(1 for d in details if d.get("possible_repeat")) == 1


def test_a_crash_between_the_numbers_of_an_sms_sends_only_the_rest(world, sink):
    rt, ids = world
    set_channel(ids, "s1-head", f"smsgw://tok@127.0.0.1:{sink.port}/sms?to=13800000001,13800000002,13800000003")
    announce(ids, ("s1-head",))
    assert run_faulty("start", 2) == 137  # the 1st number got it and was recorded; the 2nd never started
    assert [r["json"]["to"] for r in sink.received] == ["13800000001"]
    lapse_leases()
    report = dispatch(rt, at("2026-11-10"))
    assert (report.recovered, report.possible_repeats, report.sent) == (1, 0, 1)
    assert sorted(r["json"]["to"] for r in sink.received) == ["13800000001", "13800000002", "13800000003"]
    with session_scope() as session:
        parts = rows(session, "select part, ok from delivery order by id")
    assert parts == [("138****0001", True), ("138****0002", True), ("138****0003", True)]


def test_sms_failing_part_way_never_repeats_the_numbers_that_got_it(world, sink):
    rt, ids = world
    set_channel(ids, "s1-head", f"smsgw://tok@127.0.0.1:{sink.port}/sms?to=13800000001,13800000002,13800000003")
    sink.script["/sms"] = [200, 503]  # the 2nd call (the 2nd number) fails once
    announce(ids, ("s1-head",))
    first = dispatch(rt, at("2026-11-10"))
    assert (first.sent, first.retrying) == (0, 1)
    with session_scope() as session:
        session.execute(sa.text("update message set next_attempt_at = null"))  # its backoff has passed
    assert dispatch(rt, at("2026-11-10")).sent == 1
    assert Counter(r["json"]["to"] for r in sink.received) == Counter(
        {"13800000001": 1, "13800000002": 2, "13800000003": 1})


def test_a_live_dispatcher_past_its_lease_keeps_its_messages(world, sink, monkeypatch):
    """A send slower than the lease: the holder renews its claim, a second dispatcher takes nothing."""
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=0, send_timeout=30.0,
                      send_lease_seconds=2, send_concurrency=1)
    set_channel(ids, "s1-head", sink.url("hang/s1-head"))
    announce(ids, ("s1-head", "s2-head"))
    first: dict = {}
    holder = threading.Thread(target=lambda: first.setdefault("report", dispatch(rt, at("2026-11-10"))))
    holder.start()
    poll(lambda: sink.received, 30, "the slow send")

    def claims() -> list:
        with session_scope() as session:
            return list(session.scalars(sa.select(Message.claimed_at).where(Message.claim_token.is_not(None))))

    (claimed,) = set(claims())  # both messages, claimed together
    past_lease = claimed + dt.timedelta(seconds=2 * rt.settings.send_lease_seconds)
    # the holder has renewed its claim after the first claim's lease would have run out twice over
    poll(lambda: all(c >= past_lease for c in claims()), 30, "the holder renewing its claim")
    second = dispatch(rt, at("2026-11-10"))
    assert (second.recovered, second.claimed, second.sent) == (0, 0, 0)
    sink.stopping.set()  # the hanging call returns (the connection closes): a transient failure
    holder.join(60)
    assert first["report"].claimed == 2  # both messages stayed the holder's: each called once
    assert Counter(r["path"] for r in sink.received) == Counter({"/hang/s1-head": 1, "/p/s2-head": 1})


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_two_dispatchers_at_once_send_each_message_once(world, sink):
    rt, ids = world
    for n in range(4):
        announce(ids, key=f"k{n}", as_of=at("2026-11-10", f"10:0{n}"))
    # four notices a person, composed by whichever dispatcher gets there first: one message each
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(dispatch(rt, at("2026-11-10", "11:00")))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in reports) == len(PEOPLE) == len(sink.received)
    assert set(sink.paths().values()) == {1}


def test_a_group_commit_records_its_calls_and_skips_the_messages_whose_claim_was_taken(world):
    """The writes of a batch of calls that one group commit writes together (``Store``): each
    call's row, then its outcome; a message another dispatcher took meanwhile gets no row, is
    not marked sent and has no audit row."""
    rt, ids = world
    started, finished = at("2026-11-10", "09:00"), at("2026-11-10", "09:01")
    codes = ("chief", "dep-a", "dep-b")
    with session_scope() as session:
        made = {code: Message(person_id=ids[code], title="t", body="b", status=MessageStatus.sending,
                              claim_token="mine", claimed_at=started, created_at=started) for code in codes}
        session.add_all(made.values())
        session.flush()
        mids = {code: m.id for code, m in made.items()}
        channel = dict(session.execute(sa.select(Channel.person_id, Channel.id)).tuples().all())
    jobs = {code: outbox._Job(mids[code], "t", "b", None, 0, code == "dep-a", ((channel[ids[code]], "json://x"),))
            for code in codes}
    row = {code: {"message_id": mids[code], "channel_id": channel[ids[code]], "part": "138****0001" if code == "dep-a" else None,
                   "destination": f"d-{code}", "claim_token": "mine", "at": started,
                   "possible_repeat": code == "dep-a", "permanent": False, "interrupted": False} for code in codes}
    engine = get_engine()

    def taken(code: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.update(Message).where(Message.id == mids[code]).values(claim_token="theirs"))

    with GroupCommit(engine) as write:
        store = outbox.Store(write, "mine", 3)
        taken("dep-b")
        with engine.begin() as conn:
            attempts = store._start_all(conn, [row[code] for code in codes])
        assert attempts[2] is None and None not in attempts[:2] and attempts[0] != attempts[1]
        taken("dep-a")
        with engine.begin() as conn:
            answers = store._finish_all(conn, [
                outbox._Finish(attempts[0], outbox.transports.OK, finished, (jobs["chief"], channel[ids["chief"]])),
                outbox._Finish(attempts[1], outbox.transports.Outcome(ok=False, error="HTTP 503"), finished,
                               (jobs["dep-a"], channel[ids["dep-a"]]))])
    assert answers == [True, False]
    with session_scope() as session:
        calls = {d.message_id: d for d in session.scalars(sa.select(Delivery))}
        messages = {m.id: m for m in session.scalars(sa.select(Message))}
        audit = session.scalars(sa.select(Audit).where(Audit.action == "message.sent")).all()
    assert sorted(calls) == sorted([mids["chief"], mids["dep-a"]])
    chief, dep_a = calls[mids["chief"]], calls[mids["dep-a"]]
    assert (chief.id, chief.part, chief.destination, chief.claim_token, chief.possible_repeat) == (
        attempts[0], None, "d-chief", "mine", False)
    assert (dep_a.id, dep_a.part, dep_a.possible_repeat) == (attempts[1], "138****0001", True)
    assert chief.at == dep_a.at == started and chief.at.utcoffset() == dt.timedelta(hours=8)
    assert (chief.ok, chief.permanent, chief.error, chief.finished_at) == (True, False, None, finished)
    assert (dep_a.ok, dep_a.error, dep_a.finished_at) == (False, "HTTP 503", finished)
    sent = messages[mids["chief"]]
    assert (sent.status, sent.claim_token, sent.sent_at, sent.channel_id) == (
        MessageStatus.sent, None, finished, channel[ids["chief"]])
    assert [(m.status, m.claim_token, m.sent_at) for m in (messages[mids["dep-a"]], messages[mids["dep-b"]])] == [
        (MessageStatus.sending, "theirs", None)] * 2
    assert [(a.object_id, a.at, a.detail) for a in audit] == [(str(mids["chief"]), finished, {"channel": channel[ids["chief"]]})]


# =========================================================================== failures by kind

def test_http_500_is_retried_then_left_for_a_later_run(world, sink):
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=2)
    set_channel(ids, "s1-head", sink.url("500/s1-head"))
    announce(ids, ("s1-head",))
    report = dispatch(rt, at("2026-11-10"))
    assert (report.sent, report.retrying) == (0, 1)
    with session_scope() as session:
        assert rows(session, "select status, attempts from message") == [("pending", 1)]
        assert rows(session, "select count(*), sum(case when ok then 1 else 0 end) from delivery")[0] == (3, 0)
        assert rows(session, "select next_attempt_at is not null from message")[0][0]
    assert len(sink.received) == 3


def test_a_timeout_is_transient(world, sink):
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=0, send_timeout=0.3)
    set_channel(ids, "s1-head", sink.url("slow/s1-head"))
    announce(ids, ("s1-head",))
    assert dispatch(rt, at("2026-11-10")).retrying == 1
    with session_scope() as session:
        (error,) = rows(session, "select error from delivery")[0]
    assert error.startswith("no response within")


def wecom(monkeypatch, reply: dict) -> list[dict]:
    """The WeCom bot API answering ``reply`` to every post (no network); returns what was posted."""
    posted: list[dict] = []

    def fake(self, method, url, **kwargs):
        if "qyapi.weixin.qq.com" not in url:
            return real(self, method, url, **kwargs)
        posted.append(json.loads(kwargs.get("data") or "{}"))
        response = requests.models.Response()
        response.status_code, response._content = 200, json.dumps(reply).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    real = requests.Session.request
    monkeypatch.setattr(requests.Session, "request", fake)
    return posted


def test_a_wecom_error_code_in_a_200_reply_falls_back_to_the_next_channel(world, sink, monkeypatch):
    rt, ids = world
    posted = wecom(monkeypatch, {"errcode": 93000, "errmsg": "invalid webhook url"})
    set_channel(ids, "s1-head", "wecombot://b7c1f5e2-9d4a-4c3e-8f1a-2e6d0c9b7a55", sink.url("p/s1-head"))
    announce(ids, ("s1-head",))
    report = dispatch(rt, at("2026-11-10"))
    assert (report.sent, report.fallbacks, len(posted), len(sink.received)) == (1, 1, 1, 1)
    with session_scope() as session:
        tries = rows(session, "select ok, permanent, error from delivery order by id")
    assert [t[:2] for t in tries] == [(False, True), (True, False)] and tries[0][2].startswith("WeCom error 93000")
    assert "b7c1f5e2" not in tries[0][2]


def test_a_message_too_big_for_wecom_gets_its_summary(world, monkeypatch):
    rt, ids = world
    posted = wecom(monkeypatch, {"errcode": 0, "errmsg": "ok"})
    set_channel(ids, "s1-head", "wecombot://b7c1f5e2-9d4a-4c3e-8f1a-2e6d0c9b7a55")
    with session_scope() as session:
        notices.queue(session, [notices.notice(ids["s1-head"], f"long:{n}", NoticeKind.announcement, "t",
                                               {"text": "很长的通知" * 60}, at("2026-11-10")) for n in range(5)])
    assert dispatch(rt, at("2026-11-10")).sent == 1
    (content,) = [p["text"]["content"] for p in posted]
    assert len(content.encode("utf-8")) <= LIMITS["wecombot"].max_bytes
    assert "5 条通知" in content


def on_one_bot(ids) -> list[int]:
    """25 persons (the named ten and 15 teachers) whose one channel is the same WeCom group bot,
    each with an announcement released now; their ids."""
    bot = "wecombot://b7c1f5e2-9d4a-4c3e-8f1a-2e6d0c9b7a55"
    with session_scope() as session:
        unit = session.scalar(sa.select(Person.unit_id).where(Person.id == ids["s1-head"]))
        extra = [Person(code=f"t{n}", name=f"教师{n}", unit_id=unit) for n in range(15)]
        session.add_all(extra)
        session.flush()
        session.add_all([Channel(person_id=p.id, url=bot) for p in extra])
        session.execute(sa.update(Channel).values(url=bot))
        people = [p.id for p in extra] + [ids[c] for c in PEOPLE]
        notices.queue(session, [notices.notice(pid, f"g:{pid}", NoticeKind.announcement, "t", {"text": "群通知"},
                                               at("2026-11-10")) for pid in people])
    return people


def test_a_group_bot_shared_by_many_is_paced_not_dropped(world, monkeypatch):
    """25 persons whose channel is one WeCom group bot (20 messages a minute): 20 go now, 5 wait
    for their slot — neither failed nor dropped — and a run right after adds none."""
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=0, send_linger=0)
    posted = wecom(monkeypatch, {"errcode": 0, "errmsg": "ok"})
    people = on_one_bot(ids)
    first = dispatch(rt, at("2026-11-10"))
    assert (first.sent, first.deferred, first.failed, len(posted)) == (20, 5, 0, 20)
    again = dispatch(rt, at("2026-11-10"))
    assert (again.sent, again.failed) == (0, 0) and len(posted) == 20
    with session_scope() as session:
        waiting = rows(session, "select count(*) from message where status = 'pending' and next_attempt_at is not null")
    assert waiting[0][0] == 5


def test_senders_in_two_processes_keep_together_to_a_shared_bots_rate(world, monkeypatch):
    """The same 25 persons on one WeCom bot (20 a minute), sent by two lanes at once: each lane
    keeps to half the rate, so the bot gets at most 20 — not 40 — and the rest wait for their slot."""
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=0, send_linger=0)
    posted = wecom(monkeypatch, {"errcode": 0, "errmsg": "ok"})
    people = on_one_bot(ids)
    made = 0
    while batch := compose(get_engine(), rt.settings, at("2026-11-10"), describe=rt.describe):
        made += batch
    assert made == 25
    engine, reports = get_engine(), {}

    def lane(n: int) -> None:
        reports[n] = send(lambda: Session(engine, expire_on_commit=False), rt.settings, at("2026-11-10"), lane=n, lanes=2)

    threads = [threading.Thread(target=lane, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    evens = sum(1 for pid in people if pid % 2 == 0)
    assert [reports[n].claimed for n in (0, 1)] == [evens, 25 - evens]  # each person in one lane
    # Each lane keeps to 10; a lane that starts after the other has sent also counts those
    # sends (its pacer is seeded from the delivery rows): never more than 20 together.
    assert all(reports[n].sent <= 10 for n in (0, 1)) and len(posted) == sum(r.sent for r in reports.values())
    assert len(posted) <= 20 and sum(r.sent + r.deferred for r in reports.values()) == 25
    assert not any(r.failed or r.retrying for r in reports.values())


@pytest.mark.parametrize("processes", [2, 3])
def test_limit_shares_add_up_to_no_more_than_the_limit(processes):
    for scheme, limit in LIMITS.items():
        share = limit.share(processes)
        for name in ("per_minute", "per_second"):
            whole, part = getattr(limit, name), getattr(share, name)
            assert (part is None) == (whole is None), (scheme, name)
            if whole is not None:
                assert 1 <= part and part * processes <= whole, (scheme, name)
    assert LIMITS["wecombot"].share(1) == LIMITS["wecombot"]


def test_a_large_send_fans_out_to_processes_and_sends_each_message_once(world, sink):
    rt, ids = world
    rt = tune(rt, send_processes=2, send_fanout_at=len(PEOPLE))
    announce(ids)
    report = dispatch(rt, at("2026-11-10"))
    assert (report.processes, report.claimed, report.sent) == (2, len(PEOPLE), len(PEOPLE))
    assert Counter(r["path"] for r in sink.received) == Counter({f"/p/{code}": 1 for code in PEOPLE})
    announce(ids, PEOPLE[:3], key="b")  # below the fan-out threshold: sent from this process
    assert dispatch(rt, at("2026-11-10")).processes == 1


def test_each_composed_batch_is_sent_while_the_next_one_is_composed(world, sink, monkeypatch):
    """The composer holds its second batch until a message of its first has been delivered: the
    dispatcher sends each batch once it is committed, not after composing them all (it would
    wait forever here and the guard's timeout would fail the test)."""
    rt, ids = world
    announce(ids)
    monkeypatch.setattr(outbox._Composer, "persons", 3)
    delivered, waited, real_deliver, real_compose = threading.Event(), [], outbox.transports.deliver, outbox.compose

    def deliver(*args, **kwargs):
        outcome = real_deliver(*args, **kwargs)
        delivered.set()
        return outcome

    calls = []

    def compose_holding(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second batch waits for the first one's delivery
            waited.append(delivered.wait(30))
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(outbox.transports, "deliver", deliver)
    monkeypatch.setattr(outbox, "compose", compose_holding)
    report = dispatch(rt, at("2026-11-10"))
    assert waited == [True]
    assert (report.composed, report.sent) == (len(PEOPLE), len(PEOPLE))
    assert sink.paths() == Counter({f"/p/{code}": 1 for code in PEOPLE})


def test_a_run_lingers_for_its_paced_slots_when_composing_ends_after_its_last_batch(world, monkeypatch):
    """25 persons on one bot paced at 10 a second, every wait deferred (no sleeping in a thread):
    10 go, 15 wait for their slots. The composer ends only once the senders look for more, so
    the run lingers for those slots after composing has ended — and for slots that came while
    it sent the ones before — and sends all 25 itself."""
    rt, ids = world
    rt = tune(rt, send_backoff=0, send_retries=0)
    posted = wecom(monkeypatch, {"errcode": 0, "errmsg": "ok"})
    people = on_one_bot(ids)
    monkeypatch.setattr(outbox, "MAX_SLEEP", 0.0)
    monkeypatch.setattr(outbox, "limit_for", lambda url: Limit(max_bytes=2048, per_second=10))
    looking, real_wait, real_compose, calls = threading.Event(), outbox._Composer.wait_after, outbox.compose, []

    def wait_after(self, batches):
        looking.set()
        return real_wait(self, batches)

    def compose_late(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the last (empty) batch: only once the senders have looked for more
            assert looking.wait(30)
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(outbox._Composer, "wait_after", wait_after)
    monkeypatch.setattr(outbox, "compose", compose_late)
    report = dispatch(rt, at("2026-11-10"))
    assert (report.sent, len(posted), report.claimed - report.deferred) == (len(people), len(people), len(people))


def _late(ids, code: str, text: str) -> None:
    """Another run queues a notice released now for ``code`` (its own transaction)."""
    with session_scope() as session:
        notices.queue(session, [notices.notice(ids[code], f"late:{text}", NoticeKind.announcement, "t",
                                               {"text": text}, at("2026-11-10"))])


def _composed(session) -> tuple[int, dict[int, str]]:
    unlinked = session.scalar(sa.select(sa.func.count()).select_from(Notice).where(Notice.message_id.is_(None)))
    return unlinked, dict(rows(session, "select person_id, body from message"))


def test_a_notice_queued_while_a_batch_renders_sends_the_batch_again_with_it(world, monkeypatch):
    """A batch is rendered outside its write: a notice queued for one of its persons meanwhile
    makes the claim differ from what was read, so the batch is rolled back and read again —
    the person's one message carries the new notice too, and none is left unlinked."""
    rt, ids = world
    announce(ids)
    renders, real = [], outbox._Batch.render

    def render(self, found):
        renders.append(len(found.notices))
        if len(renders) == 1:
            _late(ids, "chief", "迟到的通知")
        return real(self, found)

    monkeypatch.setattr(outbox._Batch, "render", render)
    assert compose(get_engine(), rt.settings, at("2026-11-10"), describe=rt.describe) == len(PEOPLE)
    assert renders == [len(PEOPLE), len(PEOPLE) + 1]
    with session_scope() as session:
        unlinked, bodies = _composed(session)
    assert unlinked == 0 and len(bodies) == len(PEOPLE)
    assert "迟到的通知" in bodies[ids["chief"]] and "通知 chief" in bodies[ids["chief"]]


def test_a_batch_that_keeps_changing_is_composed_under_its_claim(world, monkeypatch):
    """After as many changed batches as it tries, compose claims first and renders inside its
    transaction: it always ends, and with every notice in the message."""
    rt, ids = world
    announce(ids)
    renders, real = [], outbox._Batch.render

    def render(self, found):
        renders.append(len(found.notices))
        if len(renders) <= outbox._OPTIMISTIC_TRIES:  # a new notice each time, until the claimed try
            _late(ids, "chief", f"第{len(renders)}条迟到的通知")
        return real(self, found)

    monkeypatch.setattr(outbox._Batch, "render", render)
    assert compose(get_engine(), rt.settings, at("2026-11-10"), describe=rt.describe) == len(PEOPLE)
    tries = outbox._OPTIMISTIC_TRIES
    assert renders == [len(PEOPLE) + n for n in range(tries + 1)]
    with session_scope() as session:
        unlinked, bodies = _composed(session)
    assert unlinked == 0 and all(f"第{n}条迟到的通知" in bodies[ids["chief"]] for n in range(1, tries + 1))


def test_a_composer_that_fails_fails_the_run_after_sending_what_it_committed(world, sink, monkeypatch):
    rt, ids = world
    announce(ids)
    monkeypatch.setattr(outbox._Composer, "persons", 3)
    real, calls = outbox.compose, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise sa.exc.OperationalError("insert", {}, Exception("disk I/O error"))
        return real(*args, **kwargs)

    monkeypatch.setattr(outbox, "compose", failing)
    with pytest.raises(sa.exc.OperationalError):
        dispatch(rt, at("2026-11-10"))
    assert len(sink.received) == 3  # the first batch: committed, then sent
    monkeypatch.setattr(outbox, "compose", real)
    assert dispatch(rt, at("2026-11-10")).sent == len(PEOPLE) - 3  # the task's retry: the rest, once
    assert sink.paths() == Counter({f"/p/{code}": 1 for code in PEOPLE})


def test_without_the_digest_each_notice_is_a_message_of_its_own(world, sink):
    rt, ids = world
    announce(ids, key="a")
    announce(ids, key="b")
    report = dispatch(tune(rt, digest=False), at("2026-11-10"))
    assert report.sent == 2 * len(PEOPLE) == len(sink.received)
    with session_scope() as session:
        links = rows(session, "select n.person_id, n.message_id, m.person_id from notice n join message m on m.id = n.message_id")
    assert len(links) == 2 * len(PEOPLE) and len({mid for _, mid, _ in links}) == 2 * len(PEOPLE)
    assert all(owner == person for person, _, owner in links)


def test_it_keeps_connections_alive(world, sink):
    rt, ids = world
    for n in range(3):
        announce(ids, key=f"c{n}", as_of=at("2026-11-10", f"1{n}:00"))
        dispatch(rt, at("2026-11-10", f"1{n}:00"))
    assert len(sink.received) == 3 * len(PEOPLE)
    assert sink.connections <= rt.settings.send_concurrency
