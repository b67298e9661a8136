"""The duty cycle against a real database (SQLite, and PostgreSQL where configured).

Transports are replaced by a recorder: the tests patch only ``pingan.delivery.transports.deliver``.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from factories import Recorder, at, make_runtime, rows

from models import Escalation, Message, Occurrence, Unit, Waiver
from pingan.delivery.workflow import dispatch
from pingan.duties.workflow import cycle
from pingan.core.clock import now
from pingan.delivery import transports
from pingan.core.db import session_scope
from pingan.delivery.transports import Outcome

ALL = ("school-meeting", "kindergarten-drill", "office-report", "leader-inspection")


@pytest.fixture
def rt(tmp_path, migrated_db):
    return make_runtime(tmp_path, send_backoff=0, send_retries=2)


def run_all(rt, as_of, duties=ALL):
    results = [cycle(rt, key, as_of) for key in duties]
    return results, dispatch(rt, as_of)


def table_counts(session) -> dict[str, int]:
    return {t: session.scalar(sa.text(f"select count(*) from {t}")) for t in ("occurrence", "notice", "message", "escalation", "delivery")}


def test_it_converges_when_the_same_instant_runs_three_times(rt, ids, sent):
    as_of = at("2026-11-10")
    for _ in range(3):
        run_all(rt, as_of)
    with session_scope() as session:
        counts = table_counts(session)
        slots = rows(session, "select duty_key, count(*) from occurrence group by duty_key order by duty_key")
    # 2 schools + 1 kindergarten + 1 office + 2 leaders; each assignee reminded once ("open")
    assert dict(slots) == {"kindergarten-drill": 1, "leader-inspection": 2, "office-report": 1, "school-meeting": 2}
    assert counts == {"occurrence": 6, "notice": 8, "message": 8, "escalation": 0, "delivery": 8}
    assert sorted(sent.to()) == sorted(["s1-head", "s1-safe", "s2-head", "s2-safe", "k1-head", "off-head", "dep-a", "dep-b"])
    assert set(sent.to().values()) == {1}


def test_two_runs_of_the_same_instant_at_once_create_and_send_everything_once(rt, ids, sent):
    """Two workers running the same duties at the same moment (threads released together)."""
    as_of = at("2026-11-10")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker():
        try:
            start.wait(timeout=30)
            run_all(rt, as_of)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    with session_scope() as session:
        counts = table_counts(session)
    assert counts == {"occurrence": 6, "notice": 8, "message": 8, "escalation": 0, "delivery": 8}
    assert len(sent.calls) == 8 and set(sent.to().values()) == {1}


def test_it_sends_one_digest_per_person_with_clause_link_and_evidence(rt, ids, sent):
    run_all(rt, at("2026-11-10"))
    body = next(b for url, _, b in sent.calls if url.endswith("/dep-b"))
    assert "班子成员季度检查" in body and "一（五）" in body and "《测试清单》" in body
    assert "/e/" in body and "检查记录" in body.replace("安全检查记录", "检查记录")
    title = next(t for url, t, _ in sent.calls if url.endswith("/s1-head"))
    assert "1 项待办提醒" in title


def test_it_holds_reminders_outside_working_time(rt, ids, sent):
    run_all(rt, at("2026-11-10", "20:00"))
    run_all(rt, at("2026-11-14", "10:00"))  # a Saturday
    assert sent.calls == []
    with session_scope() as session:
        assert table_counts(session)["occurrence"] == 6  # planning does not wait
    run_all(rt, at("2026-11-16", "08:30"))
    assert len(sent.calls) == 8


def test_it_sends_once_what_a_crashed_run_left_sending(rt, ids, monkeypatch):
    def crash(url, title, body, *, timeout):
        raise KeyboardInterrupt("killed between writing the message and sending it")

    monkeypatch.setattr(transports, "deliver", crash)
    with pytest.raises(KeyboardInterrupt):
        run_all(rt, at("2026-11-10"))
    with session_scope() as session:
        assert dict(rows(session, "select status, count(*) from message group by status")) == {"sending": 8}
        # the lease runs out: time passes for the crashed claim
        session.execute(sa.update(Message).values(claimed_at=now() - dt.timedelta(hours=1)))
    recorder = Recorder()
    monkeypatch.setattr(transports, "deliver", recorder)
    run_all(rt, at("2026-11-10", "10:15"))
    run_all(rt, at("2026-11-10", "10:30"))
    assert len(recorder.calls) == 8 and set(recorder.to().values()) == {1}
    with session_scope() as session:
        assert dict(rows(session, "select status, count(*) from message group by status")) == {"sent": 8}
        assert rows(session, "select count(*) from audit where action = 'message.recovered'")[0][0] == 8


def test_it_does_not_resend_a_message_whose_claim_is_still_fresh(rt, ids, monkeypatch):
    monkeypatch.setattr(transports, "deliver", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_all(rt, at("2026-11-10"))
    recorder = Recorder()
    monkeypatch.setattr(transports, "deliver", recorder)
    run_all(rt, at("2026-11-10", "10:01"))  # another run while the first could still be sending
    assert recorder.calls == []


def test_it_retries_then_falls_back_to_the_next_channel(rt, ids, monkeypatch):
    with session_scope() as session:
        session.execute(sa.text("insert into channel (person_id, priority, url, active) values (:p, 2, 'pingan://backup/dep-b', :t)"),
                        {"p": ids["dep-b"], "t": True})
    down = Outcome(ok=False, permanent=False, error="HTTP 500")
    recorder = Recorder({"pingan://local/dep-b": [down, down, down]})
    monkeypatch.setattr(transports, "deliver", recorder)
    _, report = run_all(rt, at("2026-11-10"))
    urls = [u for u, _, _ in recorder.calls if "dep-b" in u]
    assert urls == ["pingan://local/dep-b"] * 3 + ["pingan://backup/dep-b"]
    assert report.sent == 8 and report.fallbacks == 1
    with session_scope() as session:
        deliveries = rows(session, "select d.ok, d.error from delivery d join message m on m.id = d.message_id "
                                   "where m.person_id = :p order by d.id", p=ids["dep-b"])
        assert [(bool(ok), err) for ok, err in deliveries] == [(False, "HTTP 500")] * 3 + [(True, None)]


def test_it_records_a_permanent_failure_and_still_escalates(rt, ids, monkeypatch):
    bad = Outcome(ok=False, permanent=True, error="WeCom errcode 93000: invalid webhook")
    recorder = Recorder({"pingan://local/s1-safe": [bad]})
    monkeypatch.setattr(transports, "deliver", recorder)
    _, report = run_all(rt, at("2026-11-10"))
    assert report.failed == 1 and report.failures[0]["error"].startswith("WeCom errcode 93000")
    with session_scope() as session:
        failed = rows(session, "select m.error from message m join person p on p.id = m.person_id "
                               "where p.code = 's1-safe' and m.status = 'failed'")
        assert failed == [("WeCom errcode 93000: invalid webhook",)]
        assert rows(session, "select count(*) from audit where action = 'message.failed'")[0][0] == 1
    run_all(rt, at("2026-12-07", "09:00"))  # November's meeting never held: level 2 is reached anyway
    assert any(u.endswith("/dep-b") and "督办" in t for u, t, _ in recorder.calls)


def test_it_keeps_retrying_transient_failures_across_runs_until_the_cap(rt, ids, monkeypatch):
    down = Outcome(ok=False, permanent=False, error="timeout")
    recorder = Recorder({"pingan://local/k1-head": [down] * 100})
    monkeypatch.setattr(transports, "deliver", recorder)
    run_all(rt, at("2026-11-10"))
    with session_scope() as session:
        status, attempts = rows(session, "select m.status, m.attempts from message m join person p on p.id = m.person_id where p.code = 'k1-head'")[0]
        assert (status, attempts) == ("pending", 1)
        for _ in range(rt.settings.max_send_attempts):  # the backoff has passed each time
            session.execute(sa.update(Message).where(Message.status == "pending").values(next_attempt_at=None))
            session.commit()
            dispatch(rt, at("2026-11-10", "11:00"))
        status, attempts = rows(session, "select m.status, m.attempts from message m join person p on p.id = m.person_id where p.code = 'k1-head'")[0]
    assert (status, attempts) == ("failed", rt.settings.max_send_attempts)
    assert len([c for c in recorder.calls if c[0].endswith("k1-head")]) == rt.settings.max_send_attempts * 3


def escalations(session) -> list[tuple]:
    E, O, U = Escalation.__table__, Occurrence.__table__, Unit.__table__
    query = (
        sa.select(O.c.duty_key, U.c.code, E.c.level, E.c.seq, E.c.recipients)
        .join(O, O.c.id == E.c.occurrence_id).join(U, U.c.id == O.c.unit_id)
        .order_by(O.c.duty_key, U.c.code, E.c.level, E.c.seq)
    )
    return session.execute(query).all()


def test_it_climbs_a_schools_chain_level_by_level(rt, ids, sent):
    duties = ("school-meeting",)
    run_all(rt, at("2026-11-10"), duties)
    # due Mon 30 Nov 17:30, grace 1 day: escalation starts Tue 1 Dec 17:30
    run_all(rt, at("2026-12-01", "17:00"), duties)
    with session_scope() as session:
        assert escalations(session) == []
    run_all(rt, at("2026-12-02", "09:00"), duties)
    with session_scope() as session:
        # level 1 is the principal, who was reminded already: recorded, nobody new to tell
        assert [(e[1], e[2], e[4]) for e in escalations(session)] == [("S1", 1, []), ("S2", 1, [])]
    run_all(rt, at("2026-12-07", "09:00"), duties)  # level 2 due Fri 4 Dec 17:30: the 包保 leader
    run_all(rt, at("2026-12-09", "09:00"), duties)  # level 3 due Tue 8 Dec 17:30
    with session_scope() as session:
        found = [(e[1], e[2], sorted(e[4])) for e in escalations(session)]
    assert found == [
        ("S1", 1, []), ("S1", 2, [ids["dep-b"]]), ("S1", 3, sorted([ids["chief"], ids["safe-head"]])),
        ("S2", 1, []), ("S2", 2, [ids["dep-b"]]), ("S2", 3, sorted([ids["chief"], ids["safe-head"]])),
    ]
    to_dep_b = [t for u, t, _ in sent.calls if u.endswith("/dep-b")]
    assert "2 项逾期督办" in to_dep_b[-1]  # both schools in one digest


def test_it_climbs_a_departments_chain_to_the_leader_in_charge(rt, ids, sent):
    run_all(rt, at("2026-11-10"), ("office-report",))
    run_all(rt, at("2026-12-09", "09:00"), ("office-report",))
    with session_scope() as session:
        found = [(e[2], sorted(e[4])) for e in escalations(session)]
    assert found == [(1, []), (2, [ids["dep-b"]]), (3, sorted([ids["chief"], ids["safe-head"]]))]


def test_it_stops_escalating_accepted_tasks(rt, ids, sent):
    run_all(rt, at("2026-11-10"), ("school-meeting",))
    with session_scope() as session:
        session.execute(sa.text("update occurrence set review = 'accepted' where unit_id = :u"), {"u": ids["S1"]})
    run_all(rt, at("2026-12-09"), ("school-meeting",))
    with session_scope() as session:
        assert {e[1] for e in escalations(session)} == {"S2"}


def test_it_honours_a_waiver_and_resumes_when_it_expires(rt, ids, sent):
    run_all(rt, at("2026-11-10"), ("school-meeting",))
    with session_scope() as session:
        task = rows(session, "select id from occurrence where unit_id = :u and period_key = '2026-11'", u=ids["S1"])[0][0]
        session.add(Waiver(occurrence_id=task, granted_by="operator", reason="校舍维修停课", until=at("2026-12-05", "00:00")))
    run_all(rt, at("2026-12-02"), ("school-meeting",))
    with session_scope() as session:
        assert {e[1] for e in escalations(session)} == {"S2"}
    run_all(rt, at("2026-12-07"), ("school-meeting",))
    with session_scope() as session:
        assert [(e[1], e[2]) for e in escalations(session) if e[1] == "S1"] == [("S1", 1), ("S1", 2)]


def test_it_moves_a_due_date_off_the_weekend_and_plans_from_it(rt, ids, sent):
    run_all(rt, at("2026-10-20"), ("school-meeting",))
    with session_scope() as session:
        due = rows(session, "select distinct due_at from occurrence where period_key = '2026-10'")
    # 31 Oct 2026 is a Saturday: the task is due Monday 2 Nov
    assert [d[0] if isinstance(d[0], str) else d[0].isoformat() for d in due][0].startswith("2026-11-02")


def test_a_duty_removed_from_the_catalog_is_deactivated_and_comes_back_when_restored(rt, migrated_db):
    from dataclasses import replace

    from models import Duty
    from pingan.duties.cycle import sync_catalog

    def active(session):
        return dict(session.execute(sa.select(Duty.key, Duty.active)).tuples().all())

    fewer = replace(rt.catalog, duties={k: d for k, d in rt.catalog.duties.items() if k != "office-report"})
    with session_scope() as session:
        assert sync_catalog(session, rt.catalog) == len(rt.catalog.duties)
        assert sync_catalog(session, rt.catalog) == 0
        sync_catalog(session, fewer)
        assert active(session)["office-report"] is False
        assert sync_catalog(session, fewer) == 0
        assert sync_catalog(session, rt.catalog) == 1
        assert all(active(session).values())


def test_a_digest_lists_a_dozen_items_and_counts_the_rest():
    from pingan.delivery.messages import render_message

    items = [("escalation", f"【逾期督办】第 {i} 所学校") for i in range(1, 31)]
    title, body = render_message("局长", items, max_items=12)
    assert "30 项逾期督办" in title
    assert "第 12 所学校" in body and "第 13 所学校" not in body
    assert "另有 18 项未在此列出" in body and len(body.encode()) < 2048
    assert render_message("局长", items[:3], max_items=12)[1].count("第") == 3


def test_a_level_and_its_repeat_falling_due_together_list_the_task_once(rt, ids, sent):
    """After days without a run in working time, level 3 (due 8 Dec 17:30) and its first repeat
    (7 days later) fall due in the same run: the bureau principal hears of each school once."""
    duties = ("school-meeting",)
    run_all(rt, at("2026-11-10"), duties)
    run_all(rt, at("2026-12-16", "09:00"), duties)
    with session_scope() as session:
        fired = rows(session, "select o.unit_id, e.level, e.seq from escalation e join occurrence o on o.id = e.occurrence_id "
                              "order by o.unit_id, e.level, e.seq")
    # due Mon 30 Nov 17:30, grace 1 day → levels at 1 Dec, 4 Dec, 8 Dec 17:30; the repeat 15 Dec 17:30
    assert fired == [(ids[u], lvl, seq) for u in ("S1", "S2") for lvl, seq in ((1, 0), (2, 0), (3, 0), (3, 1))]
    to_chief = [(title, body) for url, title, body in sent.calls if url.endswith("/chief")]
    assert len(to_chief) == 1
    title, body = to_chief[0]
    assert "2 项逾期督办" in title  # two schools, not four events
    assert body.count("【督办·第3级】") == 2 and body.count("】一小「") == 1 and body.count("】二中「") == 1
    # 副局长乙 (包保 of both schools) is reached by level 2 only: two items as well
    to_dep_b = [title for url, title, _ in sent.calls if url.endswith("/dep-b")]
    assert to_dep_b == ["平安校园安全工作：2 项逾期督办"]


def test_a_reminder_says_how_far_its_deadline_is_when_it_goes_out(rt, ids, sent):
    """The 'due' step falls at the deadline itself (Mon 30 Nov 17:30), after working hours: it goes
    out the next morning, when the task is a day overdue; the '7 days before' step (Mon 23 Nov
    17:30) goes out on the 24th, six days before."""
    duties = ("school-meeting",)
    run_all(rt, at("2026-11-10"), duties)
    run_all(rt, at("2026-11-24", "09:00"), duties)
    run_all(rt, at("2026-11-30", "10:00"), duties)  # the "1 day before" step (29 Nov, a Sunday), on the due day
    run_all(rt, at("2026-12-01", "09:00"), duties)
    bodies = [body for url, _, body in sent.calls if url.endswith("/s1-head")]
    assert len(bodies) == 4
    assert "截止时间：2026-11-30 17:30（还剩 20 天）" in bodies[0]
    assert "截止时间：2026-11-30 17:30（还剩 6 天）" in bodies[1]
    assert "截止时间：2026-11-30 17:30（今日截止）" in bodies[2]
    assert "截止时间：2026-11-30 17:30（已逾期 1 天）" in bodies[3]
    assert not any("今日截止" in b for b in (bodies[0], bodies[1], bodies[3]))


def test_due_labels_count_calendar_days_in_shanghai(monkeypatch):
    from pingan.core.settings import reset_settings
    from pingan.delivery.messages import due_label

    due = at("2026-11-30", "17:30")
    assert [due_label(due, at(d, hm)) for d, hm in (
        ("2026-11-27", "23:59"), ("2026-11-30", "00:00"), ("2026-11-30", "17:30"), ("2026-11-30", "17:31"),
        ("2026-12-01", "00:00"), ("2026-12-03", "09:00"))] == [
        "还剩 3 天", "今日截止", "今日截止", "已过今日截止时间", "已逾期 1 天", "已逾期 3 天"]
    # 30 Nov 17:30 in Shanghai is 09:30 UTC: an instant given in UTC is read in Shanghai
    assert due_label(due, dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.timezone.utc)) == "已逾期 1 天"
    monkeypatch.setenv("PINGAN_LOCALE", "en")
    reset_settings()
    assert due_label(due, at("2026-11-28", "09:00")) == "2 day(s) left"
    assert due_label(due, at("2026-12-02", "09:00")) == "overdue by 2 day(s)"


def test_a_run_says_why_a_count_is_zero(rt, ids, sent, monkeypatch):
    from typer.testing import CliRunner

    from pingan.cli import app
    from pingan.duties.workflow import CYCLE

    def whys(steps):
        return steps["plan"]["why"], steps["remind"]["why"], steps["escalate"]["why"]

    saturday = CYCLE.run(rt, duty="school-meeting", as_of=at("2026-11-14", "10:00"))
    assert saturday["plan"]["created"] == 2 and whys(saturday) == (None, "day_off", "day_off")
    evening = CYCLE.run(rt, duty="school-meeting", as_of=at("2026-11-16", "18:00"))  # a Monday, after 17:30
    assert whys(evening) == ("planned_before", "off_hours", "off_hours")
    monday = CYCLE.run(rt, duty="school-meeting", as_of=at("2026-11-16", "10:00"))
    assert monday["remind"]["queued"] == 4 and whys(monday) == ("planned_before", None, "nothing_due")
    again = CYCLE.run(rt, duty="school-meeting", as_of=at("2026-11-16", "10:05"))
    assert again["remind"]["queued"] == 0 and again["remind"]["why"] == "nothing_due"
    # Sat 10 Oct 2026 is a make-up working day: working time
    assert CYCLE.run(rt, duty="school-meeting", as_of=at("2026-10-10", "10:00"))["remind"]["why"] != "day_off"

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = CliRunner()
    def run(as_of):  # the output without white space (Rich wraps it at the terminal's width)
        return "".join(runner.invoke(app, ["run", "school-monthly-safety-meeting", "--local", "--as-of", as_of]).output.split())

    out = run("2026-11-14T10:00")
    assert "提醒0（非工作日）" in out and "督办0（非工作日）" in out, out
    out = run("2026-11-16T18:00")
    assert "新建任务0（本期任务此前已建立）" in out and "提醒0（非工作时间，工作时间为08:30–17:30）" in out, out
