"""A quarter replayed day by day for the small organisation, against counts worked out here.

The expectations are derived from the rules in a different form than the engine uses: a
reminder step is sent iff some run in working time falls between its time and the next step
(or the start of escalation); an escalation level fires iff some working-time run falls after
its time; a repeat fires iff some working-time run falls before the next repeat.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from factories import make_org, make_runtime

from pingan.duties.workflow import replay
from pingan.duties import service
from pingan.delivery import transports
from pingan.core.db import session_scope
from pingan.core.periods import days, periods_between, timing
from pingan.core.clock import TZ
from pingan.duties.rules import escalation_schedule, is_working_time, step_time, TaskView
from pingan.delivery.transports import Outcome

START, END = dt.date(2026, 10, 1), dt.date(2026, 12, 31)
TIMES = (dt.time(9, 0), dt.time(15, 0))


def expected(rt, org_ids) -> dict[str, dict[str, int]]:
    """Tasks, reminder notices and escalation events per duty, from the rules."""
    s = rt.settings
    runs = [dt.datetime.combine(d, t, tzinfo=TZ) for d in days(START, END) for t in TIMES]
    work = [r for r in runs if is_working_time(r, rt.calendar, s.work_start, s.work_end)]
    from pingan.org.snapshot import load_org

    with session_scope() as session:
        org = load_org(session)
    out = {}
    for duty in rt.catalog.planned:
        subjects = org.subjects(duty.carrier)
        tasks = reminders = events = 0
        lookback = START - dt.timedelta(days=120)
        for period in periods_between(duty.cadence, lookback, END + dt.timedelta(days=40), rt.terms, dict(rt.catalog.key_dates), rt.calendar):
            t = timing(period, duty.window, rt.calendar)
            escalate_at = t.due_at + duty.escalation.grace
            if not any(t.opens_at <= r <= escalate_at for r in runs):
                continue
            tasks += len(subjects)
            view = TaskView(0, duty.key, 0, None, period.key, t.opens_at, t.due_at, escalate_at, "none")
            times = sorted(step_time(step, view) for step in duty.reminders)
            bounds = times[1:] + [escalate_at]
            sent_steps = sum(
                1 for at, nxt in zip(times, bounds)
                if any(max(at, t.opens_at) <= r < min(nxt, escalate_at) for r in work)
            )
            for unit_id, person_id in subjects:
                reminders += sent_steps * len(org.assignees(duty.carrier, unit_id, person_id))
            schedule = []
            for event in escalation_schedule(duty.escalation, escalate_at):
                if event.at > dt.datetime.combine(END, dt.time(23, 59), tzinfo=TZ):
                    break
                schedule.append(event)
            fired = 0
            for i, event in enumerate(schedule):
                if event.seq == 0:
                    fired += any(r >= event.at for r in work)
                else:
                    nxt = schedule[i + 1].at if i + 1 < len(schedule) else dt.datetime.max.replace(tzinfo=TZ)
                    fired += any(event.at <= r < nxt for r in work)
            events += fired * len(subjects)
        out[duty.key] = {"tasks": tasks, "reminders": reminders, "escalations": events}
    return out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_replays_a_quarter_to_the_expected_counts(tmp_path, migrated_db, monkeypatch):
    monkeypatch.setattr(transports, "deliver", lambda *a, **k: Outcome(ok=True))
    rt = make_runtime(tmp_path)
    with session_scope() as session:
        ids = make_org(session)
    summary = replay(rt, START, END, times=TIMES)
    want = expected(rt, ids)
    with session_scope() as session:
        got = {key: service.counts(session, key) for key in want}
    for key in want:
        assert (got[key]["tasks"], got[key]["reminders"], got[key]["escalations"]) == (
            want[key]["tasks"], want[key]["reminders"], want[key]["escalations"]), key
    # The numbers behind the rules, spelled out for the school meeting (two schools):
    # Sep (caught up on 1 Oct, inside its grace), Oct, Nov and Dec; Dec is due 31 Dec, not yet escalated.
    assert want["school-meeting"]["tasks"] == 2 * 4
    # Sep: level 1 fires on 8 Oct (after National Day), level 2 and 3 later, one repeat by year end.
    assert summary.totals()["planned"] == sum(w["tasks"] for w in want.values())
    assert summary.totals()["reminders"] == sum(w["reminders"] for w in want.values())
    assert summary.totals()["escalations"] == sum(w["escalations"] for w in want.values())
    assert summary.failed == 0 and summary.sent > 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_replays_to_the_same_state_when_run_again(tmp_path, migrated_db, monkeypatch):
    monkeypatch.setattr(transports, "deliver", lambda *a, **k: Outcome(ok=True))
    rt = make_runtime(tmp_path)
    with session_scope() as session:
        make_org(session)
    replay(rt, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    with session_scope() as session:
        first = {t: session.scalar(sa.text(f"select count(*) from {t}")) for t in ("occurrence", "notice", "escalation", "message")}
    again = replay(rt, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    with session_scope() as session:
        second = {t: session.scalar(sa.text(f"select count(*) from {t}")) for t in ("occurrence", "notice", "escalation", "message")}
    assert first == second and again.totals()["planned"] == 0 and again.sent == 0
