"""A quarter replayed day by day for the small organisation, against counts worked out here.

The expectations are derived from the rules in a different form than the engine uses: a
reminder step is sent iff some run in working time falls between its time and the next step
(or the start of escalation); an escalation level fires iff some working-time run falls after
its time; a repeat fires iff some working-time run falls before the next repeat.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import at, make_org, make_runtime, rows

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


# =========================================================================== the whole system
#
# ``pingan replay`` runs every scheduled deployment at its own schedule (pingan.cli.replay,
# pingan.core.schedule). Below: the walker alone, then National Day 2026 and the end of the
# third quarter replayed for the small organisation with every flow, against counts worked out
# by hand from the organisation of tests/factories.py, the State Council's 2026 calendar and
# the catalog's rules (each written out where it is used).


def _job(name, crons, log, *, next_work=None, then=(), follow_up=False, flow="f"):
    from pingan.core.schedule import Job

    return Job(name, flow, tuple(crons), lambda as_of: log.append((name, as_of)) or {"s": {"n": 1}},
               next_work=next_work, then=tuple(then), follow_up=follow_up)


def test_the_walker_fires_each_schedule_in_time_order():
    from pingan.core.schedule import replay as walk

    log: list = []
    day = dt.date(2026, 10, 3)
    jobs = [_job("half-hourly", ["*/30 * * * *"], log), _job("hourly", ["0 * * * *", "0 8 * * *"], log)]
    tallies = walk(jobs, day, day)
    assert (tallies["half-hourly"].runs, tallies["hourly"].runs) == (48, 24)  # 08:00 named twice: one run
    assert tallies["hourly"]["s.n"] == 24
    assert log[:3] == [("half-hourly", at("2026-10-03", "00:00")), ("hourly", at("2026-10-03", "00:00")),
                       ("half-hourly", at("2026-10-03", "00:30"))]
    assert [when for _, when in log] == sorted(when for _, when in log)


def test_the_walker_skips_idle_runs_starts_others_and_follows_deadlines():
    from pingan.core.schedule import replay as walk

    log: list = []
    outbox: list[dt.datetime] = []  # what the "watch" queued, released at once; the "dispatcher" takes it
    deadline = at("2026-10-03", "10:17")

    def watch(as_of):
        log.append(("watch", as_of))
        outbox.append(as_of)
        return {}

    def dispatch(as_of):
        log.append(("dispatch", as_of))
        outbox.clear()
        return {}

    from pingan.core.schedule import Job

    clock_runs: list[dt.datetime] = []
    jobs = [
        Job("watch", "w", ("0 9,12 * * *",), watch, then=("dispatch",)),
        Job("dispatch", "d", ("*/5 * * * *",), dispatch, next_work=lambda as_of: min(outbox, default=None)),
        Job("clock", "c", (), lambda as_of: clock_runs.append(as_of) or {}, follow_up=True,
            next_work=lambda as_of: deadline if not clock_runs else None),
    ]
    tallies = walk(jobs, dt.date(2026, 10, 3), dt.date(2026, 10, 3))
    # the dispatcher runs right after each watch run, and at none of its 288 sweeps
    assert [x for x in log] == [("watch", at("2026-10-03", "09:00")), ("dispatch", at("2026-10-03", "09:00")),
                               ("watch", at("2026-10-03", "12:00")), ("dispatch", at("2026-10-03", "12:00"))]
    assert (tallies["dispatch"].runs, tallies["dispatch"].skipped) == (2, 288)
    assert clock_runs == [deadline] and tallies["clock"].runs == 1  # at its deadline, to the minute


ROSTER, ZERO = "erdao-holiday-duty-roster", "erdao-holiday-zero-report"


def system_catalog(tmp_path):
    """The test duties of tests/factories.py, the holiday watch's and the incident clock's duties
    as shipped, and the shipped hazard rules pointing at the Erdao half-monthly check, switched
    off here (the hazard watch runs, with no hazard and no risk point)."""
    import shutil

    import yaml

    from factories import make_catalog_dir
    from pingan.core.settings import REPO_ROOT

    directory = make_catalog_dir(tmp_path)
    shipped = REPO_ROOT / "catalog"
    shutil.copytree(shipped / "flows", directory / "flows")
    for name, keys in (("erdao-2021.yaml", {ROSTER, ZERO, "erdao-school-half-monthly-hazard-check"}),
                       ("dehui-bureau.yaml", {"school-incident-report"})):
        data = yaml.safe_load((shipped / name).read_text(encoding="utf-8"))
        data["duties"] = [d for d in data["duties"] if d["key"] in keys]
        for d in data["duties"]:
            if d["key"] == "erdao-school-half-monthly-hazard-check":
                d["enabled"] = False
        (directory / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    hazards = yaml.safe_load((shipped / "hazards.yaml").read_text(encoding="utf-8"))
    hazards["half_monthly_checks"]["duties"] = [
        d for d in hazards["half_monthly_checks"]["duties"] if d["duty"] == "erdao-school-half-monthly-hazard-check"]
    (directory / "hazards.yaml").write_text(yaml.safe_dump(hazards, allow_unicode=True), encoding="utf-8")
    return directory


def table_counts() -> dict[str, int]:
    from sqlmodel import SQLModel

    with session_scope() as session:
        return {name: session.scalar(sa.text(f"select count(*) from {name}")) for name in SQLModel.metadata.tables}


def test_it_replays_national_day_2026_and_the_quarter_end_with_every_flow(tmp_path, migrated_db, ids, sent, monkeypatch):
    from collections import Counter

    from pingan.cli.replay import by_flow, jobs
    from pingan.core.schedule import replay as walk
    from pingan.core.settings import Settings
    from pingan.duties.catalog import load_catalog
    from pingan.duties.runtime import build_runtime

    monkeypatch.delenv("PINGAN_DIGEST_MORNING")  # the production slots: 09:00 and 15:00
    directory = system_catalog(tmp_path)
    rt = build_runtime(Settings(catalog_dir=directory, send_backoff=0), load_catalog(directory))
    assert rt.settings.digest_morning == dt.time(9) and rt.settings.digest_afternoon == dt.time(15)
    first, last = dt.date(2026, 9, 28), dt.date(2026, 10, 8)
    chosen = jobs(rt)
    assert {j.flow for j in chosen} == {"duty-cycle", "outbox-dispatch", "hazard-watch", "incident-sweep", "incident-clock",
                                        "holiday-watch", "compliance-report", "weekly-digest", "daily-summary"}
    tallies = walk(chosen, first, last)
    flows = by_flow(chosen, tallies)

    # -- the calendar. The State Council's 2026 holidays: National Day 1–7 Oct (Thu–Wed); Mon 28,
    # Tue 29, Wed 30 Sept and Thu 8 Oct are working days. 11 days in all.
    days_ = 11
    working = [dt.date(2026, 9, 28), dt.date(2026, 9, 29), dt.date(2026, 9, 30), dt.date(2026, 10, 8)]
    holiday = [dt.date(2026, 10, d) for d in range(1, 8)]
    # -- runs, from the deployments' schedules: each duty twice a day; the holiday watch every hour
    # 08:00–20:00 (13 a day); the hazard watch daily at 09:05; the daily summary every evening;
    # the weekly digest on Mondays (28 Sept, 5 Oct); the quarterly report on 3 Oct at 07:00.
    assert flows["duty-cycle"].runs == 4 * 2 * days_
    assert flows["holiday-watch"].runs == 13 * days_
    assert flows["hazard-watch"].runs == days_
    assert (flows["daily-summary"].runs, flows["weekly-digest"].runs, flows["compliance-report"].runs) == (days_, 2, 1)
    # no incident: every five-minute sweep had nothing to do, and no deadline to follow
    assert (flows["incident-sweep"].runs, flows["incident-sweep"].skipped, flows["incident-clock"].runs) == (0, 288 * days_, 0)

    # -- the small organisation. The watch duties fall on the schools and the kindergarten,
    # carried by principal and safety officer (the kindergarten has no safety officer).
    assignees = {"S1": {"s1-head", "s1-safe"}, "S2": {"s2-head", "s2-safe"}, "K1": {"k1-head"}}
    carriers = sum(len(p) for p in assignees.values())  # 5
    # Policy "watch": level 1 an hour after the deadline to the unit's principal (a carrier
    # already), its 包保 leader and the safety section; level 2 a day later to the bureau principal.
    level1 = {"S1": {"dep-b", "safe-head"}, "S2": {"dep-b", "safe-head"}, "K1": {"dep-a", "safe-head"}}

    with session_scope() as session:
        tasks = dict(rows(session, "select duty_key, count(*) from occurrence group by duty_key"))
        notices = Counter(
            (r.duty_key, r.kind, r.step, local_hm(r.release_at))
            for r in session.execute(sa.text("select duty_key, kind, step, release_at from notice where duty_key in (:a, :b)"),
                                     {"a": ROSTER, "b": ZERO}))
        fired = Counter((r[0], r[1]) for r in rows(session, "select o.duty_key, e.level from escalation e "
                                                             "join occurrence o on o.id = e.occurrence_id"))
        zero_messages = rows(session, "select m.created_at, p.code, m.status from message m join person p on p.id = m.person_id "
                                      "where m.id in (select message_id from notice where duty_key = :d)", d=ZERO)
        roster_messages = rows(session, "select m.created_at from message m "
                                        "where m.id in (select message_id from notice where duty_key = :d)", d=ROSTER)
        digests = Counter(r[0] for r in rows(session, "select step from notice where kind = 'announcement'"))

    # -- the roster, before the holiday: asked for from 24 Sept (a week before), due on the last
    # working day before it, Wed 30 Sept 16:00. Reminder set "short": at open (seen by the first
    # run, 28 Sept 08:00), 2 days before (28 Sept 16:00), at the deadline (30 Sept 16:00).
    # Escalated at 17:00 on 30 Sept (level 1) and on 1 Oct (level 2); nobody filed one.
    assert tasks[ROSTER] == 3
    assert {k: n for k, n in notices.items() if k[0] == ROSTER and k[1] == "reminder"} == {
        (ROSTER, "reminder", step, when): carriers
        for step, when in (("open", "09-28 08:00"), ("due-2d", "09-28 16:00"), ("due", "09-30 16:00"))}
    assert (fired[(ROSTER, 1)], fired[(ROSTER, 2)]) == (3, 3)
    # sent at once, by the dispatcher the watch starts: before the holiday but for level 2
    assert sorted({local_hm(r[0]) for r in roster_messages}) == [
        "09-28 08:00", "09-28 16:00", "09-30 16:00", "09-30 17:00", "10-01 17:00"]

    # -- the zero report, every day of the holiday: one task per unit and day, reminded at 13:00
    # (3 hours before 16:00), escalated at 17:00 (level 1) and the next day at 17:00 (level 2;
    # the 7 Oct report's on 8 Oct, still in range).
    assert tasks[ZERO] == 3 * len(holiday)
    assert {k: n for k, n in notices.items() if k[0] == ZERO and k[1] == "reminder"} == {
        (ZERO, "reminder", "due-3h", f"{d:%m-%d} 13:00"): carriers for d in holiday}
    assert (fired[(ZERO, 1)], fired[(ZERO, 2)]) == (3 * len(holiday), 3 * len(holiday))
    # One message per person and run: at 13:00 each carrier; at 17:00 each level-1 leader, and
    # from 2 Oct the bureau principal for the day before.
    want = Counter()
    for d in holiday:
        want[(f"{d:%m-%d} 13:00", "reminder")] += carriers
        want[(f"{d:%m-%d} 17:00", "escalation")] += len(set().union(*level1.values()))
        if d > holiday[0]:
            want[(f"{d:%m-%d} 17:00", "escalation")] += 1
    want[("10-08 17:00", "escalation")] += 1
    got = Counter((local_hm(when), "reminder" if local_hm(when).endswith("13:00") else "escalation")
                  for when, _, _ in zero_messages)
    assert got == want and sum(want.values()) == 7 * 5 + 7 * 3 + 7
    assert {status for *_, status in zero_messages} == {"sent"}

    # -- the duties of the test catalog, planned on every run (weekends and holidays too):
    # September's and October's monthly tasks of the two schools and the office, the third and
    # fourth quarter's of the kindergarten and of the two bureau leaders.
    assert {k: tasks[k] for k in ("school-meeting", "office-report", "kindergarten-drill", "leader-inspection")} == {
        "school-meeting": 2 * 2, "office-report": 2, "kindergarten-drill": 2, "leader-inspection": 2 * 2}
    # Reminders only in working time: September's tasks (due Wed 30 Sept 17:30) get the step of 7
    # days before (28 Sept) and of 1 day before (30 Sept morning), not the one at the deadline
    # (the next working run, 8 Oct, is past the start of escalation); October's their first (8 Oct).
    carriers_per_task = {"school-meeting": 2, "office-report": 1, "kindergarten-drill": 1, "leader-inspection": 1}
    tasks_per_period = {"school-meeting": 2, "office-report": 1, "kindergarten-drill": 1, "leader-inspection": 2}
    reminders = sum(tasks_per_period[k] * carriers_per_task[k] * (2 + 1) for k in carriers_per_task)
    assert flows["duty-cycle"]["remind.queued"] == reminders == 24
    # Escalation of September's tasks waits for the first working run after the holiday (8 Oct
    # 08:3x): levels 1 and 2 (due 1 and 4 Oct 17:30) of the standard policy; level 1 of the
    # leaders' (grace 3 days: 3 Oct 17:30; level 2 only on 10 Oct).
    assert flows["duty-cycle"]["escalate.fired"] == (2 + 1 + 1) * 2 + 2 * 1 == 10

    # -- the quarter end: on 3 Oct at 07:00 the quarterly report of 2026-Q3 — the tasks due in
    # it that existed then: September's three monthly ones, the kindergarten's and the two
    # leaders' quarterlies, the three rosters (due 30 Sept). Nothing was handed in; only the
    # rosters were escalated by then (levels 1 and 2).
    report = json.loads((Path(rt.settings.home) / "reports" / "2026-Q3" / "compliance-2026-Q3.json").read_text("utf-8"))
    assert report["as_of"].startswith("2026-10-03T07:00")
    t = report["totals"]
    assert (t["tasks"], t["due"], t["missing"], t["on_time"], t["escalated"]) == (2 + 1 + 1 + 2 + 3, 9, 9, 0, 3)
    assert flows["compliance-report"]["write.written"] == 4  # workbook, two charts, the figures
    # -- digests: the daily summary to the safety section (安全科长) on working days only; the
    # weekly one on both Mondays to the two leaders with units (副局长甲, 副局长乙).
    assert digests == {"digest-daily": len(working), "digest-weekly": 2 * 2}
    assert flows["daily-summary"]["queue-daily-summary.queued"] == len(working)

    # -- idempotent: the same days again write nothing
    before = table_counts()
    files = {p: p.stat().st_mtime_ns for p in (Path(rt.settings.home) / "reports").rglob("*")}
    calls = len(sent.calls)
    again = by_flow(chosen, walk(chosen, first, last))
    assert table_counts() == before
    assert {p: p.stat().st_mtime_ns for p in (Path(rt.settings.home) / "reports").rglob("*")} == files
    assert len(sent.calls) == calls
    assert sum(again["duty-cycle"][k] for k in ("plan.created", "remind.queued", "escalate.fired")) == 0
    assert again["outbox-dispatch"].runs == 0 and again["compliance-report"]["write.written"] == 0


def local_hm(when) -> str:
    when = when if isinstance(when, dt.datetime) else dt.datetime.fromisoformat(str(when))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(TZ).strftime("%m-%d %H:%M")


def test_every_scheduled_deployment_is_replayed_by_its_own_flow():
    from deployments.build import all_specs
    from pingan.cli.replay import FLOWS, UNSCHEDULED, jobs
    from pingan.duties.catalog import load_catalog
    from pingan.duties.runtime import build_runtime

    rt = build_runtime()
    specs = all_specs(load_catalog())
    for spec in specs:
        if spec.entrypoint in UNSCHEDULED:
            assert not spec.schedules, spec.name
            continue
        assert spec.entrypoint in FLOWS, spec.name
        assert FLOWS[spec.entrypoint].name == spec.flow_name, spec.name  # --flows takes the names the UI shows
    chosen = jobs(rt)
    scheduled = [s for s in specs if s.schedules]
    assert [(j.name, j.crons) for j in chosen if j.crons] == [(s.name, tuple(x.cron for x in s.schedules)) for s in scheduled]
    # the flows that start the dispatcher at once in production start it in the replay
    import inspect

    for spec in specs:
        if spec.entrypoint in FLOWS:
            source = inspect.getsource(spec.load_flow().fn)
            assert FLOWS[spec.entrypoint].starts_dispatch == ("dispatch_released" in source), spec.name
    assert {j.flow for j in jobs(rt, flows={"holiday-watch"}, send=False)} == {"holiday-watch"}
    assert all(not j.then for j in jobs(rt, send=False))


def test_the_command_replays_the_chosen_flows_and_refuses_unknown_ones(migrated_db, ids, sent, monkeypatch):
    from typer.testing import CliRunner

    from pingan.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["replay", "--from", "2026-10-01", "--to", "2026-10-01", "--flows", "holiday-watch,nope"])
    assert bad.exit_code == 2 and "--flows" in bad.output and "nope" in bad.output and len(bad.output.strip().splitlines()) == 1
    bad = runner.invoke(app, ["replay", "--from", "2026-10-01", "--to", "2026-10-01", "--duty", "nope"])
    assert bad.exit_code == 2 and "--duty" in bad.output
    with session_scope() as session:
        assert rows(session, "select count(*) from occurrence")[0][0] == 0
    done = runner.invoke(app, ["replay", "--from", "2026-10-01", "--to", "2026-10-02", "--flows", "holiday-watch",
                               "--no-send", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    # every hour 08:00–20:00 of two days; three units report each day of National Day
    assert list(data["flows"]) == ["holiday-watch"] and data["flows"]["holiday-watch"]["runs"] == 2 * 13
    with session_scope() as session:
        assert rows(session, "select count(*) from occurrence where duty_key = :d", d=ZERO)[0][0] == 2 * 3
    assert sent.calls == []
    table = runner.invoke(app, ["replay", "--from", "2026-10-01", "--to", "2026-10-01", "--flows", "daily-summary"])
    assert table.exit_code == 0 and "daily-summary" in table.output and "简报 0" in table.output, table.output
