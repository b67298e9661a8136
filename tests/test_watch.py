"""The holiday watch: rosters before each holiday, a report every day of it, a dead man's switch.

Pure rules first (deadlines, roster entries, report states), then the database: a replay of the
2026 Mid-autumn and National Day holidays on the small organisation against reminders and
escalations worked out here from the rules and the facts of the calendar, a unit that reports
an incident instead of a zero report, operator periods, and the CLI.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from factories import at, rows
from typer.testing import CliRunner

from models import Escalation, Notice, Occurrence, Person, Unit, WatchRoster
from pingan.cli import app
from pingan.core.calendar import WorkCalendar
from pingan.core.clock import TZ
from pingan.core.db import get_engine, session_scope
from pingan.core.periods import days
from pingan.core.settings import REPO_ROOT, Settings
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import CatalogError, load_catalog
from pingan.duties.runtime import build_runtime
from pingan.duties.service import ensure_catalog
from pingan.incidents import rules as incident_rules
from pingan.incidents import service as incidents
from pingan.incidents.workflow import CLOCK
from pingan.org.snapshot import load_org
from pingan.watch import rules as watch_rules
from pingan.watch import service as watch
from pingan.watch import views as watch_views
from pingan.watch.workflow import WATCH, result_of

CATALOG = REPO_ROOT / "catalog"
ROSTER, REPORT = "erdao-holiday-duty-roster", "erdao-holiday-zero-report"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG)


@pytest.fixture(scope="module")
def rules(catalog):
    return watch_rules.read_rules(CATALOG / "flows" / "holiday.yaml", catalog.duties)


def period(name="国庆节", first="2026-10-01", last="2026-10-07", created="2026-09-01T00:00", pid=1) -> watch_rules.PeriodView:
    return watch_rules.PeriodView(pid, watch_rules.period_key(name, dt.date.fromisoformat(first)), name, dt.date.fromisoformat(first),
                            dt.date.fromisoformat(last), "calendar", dt.datetime.fromisoformat(created).replace(tzinfo=TZ))


# --------------------------------------------------------------------------- pure

def test_the_shipped_rules_name_the_erdao_duties_of_point_7(catalog, rules):
    assert (rules.roster.duty, rules.daily_report.duty) == (ROSTER, REPORT)
    for key in (ROSTER, REPORT):
        duty = catalog.duty(key)
        assert (duty.source.document, duty.source.clause, duty.flow) == ("002_8ab6cc7abff1c59e.txt", "7", "holiday")
        assert duty.escalation.key == "watch"
    assert "值班值宿" in catalog.duty(ROSTER).text and "零报告" in catalog.duty(REPORT).text
    assert rules.daily_report.due_time == dt.time(16, 0) and rules.roster.workdays_before == 1
    assert rules.contains(at("2026-10-03", "08:00")) and not rules.contains(at("2026-10-03", "21:00"))


def test_the_calendar_watches_national_day_2026_but_not_its_make_up_working_day():
    found = WorkCalendar().holiday_periods(dt.date(2026, 9, 1), dt.date(2026, 10, 31))
    assert [(p.name, p.start, p.end) for p in found] == [
        ("中秋节", dt.date(2026, 9, 25), dt.date(2026, 9, 27)),
        ("国庆节", dt.date(2026, 10, 1), dt.date(2026, 10, 7)),
    ]
    assert WorkCalendar().is_workday(dt.date(2026, 10, 10))  # Saturday, a make-up working day


def test_the_roster_is_due_on_the_last_working_day_before_the_period():
    cal = WorkCalendar()
    assert watch_rules.roster_due_day(dt.date(2026, 10, 1), 1, cal) == dt.date(2026, 9, 30)
    assert watch_rules.roster_due_day(dt.date(2026, 9, 25), 1, cal) == dt.date(2026, 9, 24)
    assert watch_rules.roster_due_day(dt.date(2026, 10, 1), 2, cal) == dt.date(2026, 9, 29)
    assert watch_rules.roster_due_day(dt.date(2026, 11, 16), 1, cal) == dt.date(2026, 11, 13)  # a Monday: Friday before
    assert watch_rules.roster_due_day(dt.date(2026, 10, 1), 0, cal) == dt.date(2026, 10, 1)


def test_roster_and_report_deadlines(catalog, rules):
    roster, report = catalog.duty(ROSTER), catalog.duty(REPORT)
    d = watch_rules.roster_deadline(period(), roster, rules.roster, WorkCalendar())
    assert (d.opens_at, d.due_at, d.escalate_at) == (at("2026-09-24", "00:00"), at("2026-09-30", "16:00"), at("2026-09-30", "17:00"))
    late = watch_rules.roster_deadline(period(created="2026-09-30T18:20"), roster, rules.roster, WorkCalendar())
    assert late.due_at == at("2026-10-01", "16:00")  # added after the hour: due the next day, never in the past
    same_day = watch_rules.roster_deadline(period(created="2026-09-30T17:00"), roster, rules.roster, WorkCalendar())
    assert same_day.due_at == at("2026-10-01", "16:00")
    morning = watch_rules.roster_deadline(period(name="x", first="2026-10-02", created="2026-10-01T09:00"), roster, rules.roster, WorkCalendar())
    assert morning.due_at == at("2026-10-01", "16:00")
    r = watch_rules.report_deadline(dt.date(2026, 10, 3), report, rules.daily_report)
    assert (r.opens_at, r.due_at, r.escalate_at) == (at("2026-10-03", "00:00"), at("2026-10-03", "16:00"), at("2026-10-03", "17:00"))


def test_slots_cover_open_rosters_and_each_day_so_far_once(catalog, rules):
    roster, report = catalog.duty(ROSTER), catalog.duty(REPORT)
    extra = period(name="值守", first="2026-10-03", last="2026-10-05", pid=2)
    found = watch_rules.slot_rows([period(), extra], [10, 11], roster, report, rules, WorkCalendar(), at("2026-10-03", "08:00"))
    keys = Counter((r["duty_key"], r["period_key"]) for r in found)
    assert keys == {
        (ROSTER, "2026-10-01-国庆节"): 2, (ROSTER, "2026-10-03-值守"): 2,
        (REPORT, "2026-10-01"): 2, (REPORT, "2026-10-02"): 2, (REPORT, "2026-10-03"): 2,
    }
    assert watch_rules.slot_rows([period()], [10], roster, report, rules, WorkCalendar(), at("2026-09-23", "23:59")) == []


def test_roster_entries_are_checked_and_must_cover_every_day():
    p = period(first="2026-10-01", last="2026-10-03")
    leader = watch_rules.parse_entry("王校长：13800000001", "leader", "--leader", 1)
    assert leader == watch_rules.RosterEntry("leader", "王校长", "13800000001")
    staff = [watch_rules.parse_entry(f"2026-10-0{d}=值班员{d}:0431-8888000{d}", "staff", "--staff", d) for d in (1, 2)]
    with pytest.raises(watch_rules.WatchError, match="2026-10-03.*值班值宿"):
        watch_rules.check_roster([leader, *staff], p)
    watch_rules.check_roster([leader, *staff, watch_rules.parse_entry("2026-10-03=值班员3:13900000003", "staff", "--staff", 3)], p)
    with pytest.raises(watch_rules.WatchError, match="--staff 第 1 项.*2026-10-09"):
        watch_rules.check_roster([leader, watch_rules.parse_entry("2026-10-09=某人:13900000000", "staff", "--staff", 1)], p)
    with pytest.raises(watch_rules.WatchError, match="--leader 第 2 项.*电话号码"):
        watch_rules.parse_entry("张三:call me", "leader", "--leader", 2)
    with pytest.raises(watch_rules.WatchError, match="--staff 第 1 项.*姓名:电话"):
        watch_rules.parse_entry("张三 13900000000", "staff", "--staff", 1)
    entries = [e.as_dict() for e in [leader, *staff]]
    assert watch_rules.on_duty(entries, dt.date(2026, 10, 2)) == {"leader": ["王校长 13800000001"], "staff": ["值班员2 0431-88880002"]}


def test_report_states():
    due, state = at("2026-10-03", "16:00"), watch_rules.report_state
    assert state("ok", at("2026-10-03", "09:00"), "accepted", due, at("2026-10-03", "10:00")) == "ok"
    assert state("ok", at("2026-10-03", "17:30"), "accepted", due, at("2026-10-03", "18:00")) == "ok_late"
    assert state("incident", at("2026-10-03", "09:00"), "accepted", due, at("2026-10-03", "18:00")) == "incident"
    assert state(None, None, "submitted", due, at("2026-10-03", "18:00")) == "handed_in"
    assert state(None, None, "none", due, at("2026-10-03", "15:59")) == "pending"
    assert state(None, None, "none", due, at("2026-10-03", "16:00")) == "missing"


def test_a_bad_rules_file_names_the_file_and_field(tmp_path, catalog):
    path = tmp_path / "holiday.yaml"
    path.write_text("roster: {duty: erdao-holiday-duty-roster, due_time: 16:00}\ndaily_report: {duty: erdao-holiday-zero-report}\n")
    with pytest.raises(CatalogError, match=r"holiday.yaml: field roster.due_time: write the time in quotes"):
        watch_rules.read_rules(path, catalog.duties)
    path.write_text("roster: {duty: school-monthly-drill}\ndaily_report: {duty: erdao-holiday-zero-report}\n")
    with pytest.raises(CatalogError, match=r"holiday.yaml: field roster.duty: 'school-monthly-drill' is not a catalog duty with flow: holiday"):
        watch_rules.read_rules(path, catalog.duties)
    path.write_text("roster: {duty: erdao-holiday-duty-roster}\ndaily_report: {duty: erdao-holiday-zero-report}\n"
                    "send_hours: {from: '20:00', to: '08:00'}\n")
    with pytest.raises(CatalogError, match=r"field send_hours: 'to' must be after 'from'"):
        watch_rules.read_rules(path, catalog.duties)


# --------------------------------------------------------------------------- database

@pytest.fixture
def rt(migrated_db):
    return build_runtime(Settings(catalog_dir=CATALOG, send_backoff=0), load_catalog(CATALOG))


def run_watch(rt, as_of):
    result = result_of(as_of, WATCH.run(rt, as_of=as_of))
    dispatch(rt, as_of)
    return result


def in_session(rt, work):
    """``work(session, org)`` in one transaction, the catalog synced first (what the CLI does)."""
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return work(session, load_org(session))


def report_incident(rt, req, as_of, *, actor):
    """Register an incident (own transaction), then run its clock at once and send (the CLI, unscheduled)."""
    registered = in_session(rt, lambda s, org: incidents.register(s, rt, org, req, as_of, actor=actor))
    escalated = CLOCK.run(rt, as_of=as_of)["escalate"]["incidents"]
    return SimpleNamespace(registered=registered, escalated=escalated, sent=dispatch(rt, as_of).sent)


# The small organisation of tests/factories.py: who carries the watch duties (principal and
# safety officer; the kindergarten has no safety officer) and whom each escalation target reaches.
ASSIGNEES = {"S1": {"s1-head", "s1-safe"}, "S2": {"s2-head", "s2-safe"}, "K1": {"k1-head"}}
TARGETS = {
    "unit_principal": {"S1": {"s1-head"}, "S2": {"s2-head"}, "K1": {"k1-head"}},
    "unit_leader": {"S1": {"dep-b"}, "S2": {"dep-b"}, "K1": {"dep-a"}},  # 包保
    "safety_section": {u: {"safe-head"} for u in ASSIGNEES},
    "bureau_principal": {u: {"chief"} for u in ASSIGNEES},
    "safety_lead": {u: {"dep-a"} for u in ASSIGNEES},
}
# The State Council's 2026 holidays: Mid-autumn 25–27 Sept; National Day 1–7 Oct, with the
# make-up working days Sun 20 Sept and Sat 10 Oct. A roster is due on the last working day
# before the first day: Thu 24 Sept and Wed 30 Sept.
HOLIDAYS = [("2026-09-25-中秋节", dt.date(2026, 9, 25), dt.date(2026, 9, 27), dt.date(2026, 9, 24)),
            ("2026-10-01-国庆节", dt.date(2026, 10, 1), dt.date(2026, 10, 7), dt.date(2026, 9, 30))]
FIRST, LAST = dt.date(2026, 9, 17), dt.date(2026, 10, 12)


def run_times(rules) -> list[dt.datetime]:
    """The deployment's schedule: every hour on the hour within the sending hours, every day."""
    from deployments.incidents import watch_cron

    first, last = (int(h) for h in watch_cron(rules.send_hours).split()[1].split("-"))
    assert (first, last) == (rules.send_hours.start.hour, rules.send_hours.end.hour - 1)
    return [dt.datetime.combine(d, dt.time(h), tzinfo=TZ) for d in days(FIRST, LAST) for h in range(first, last + 1)]


def expected(rt, rules, filed: dict[tuple[str, str, str], dt.datetime]):
    """Reminder notices and escalations from the rules: each task, each step, the runs that see it.

    A reminder step goes out at the first run at or after its time, if that run comes before the
    next step's time and before escalation starts; an escalation level fires at the first run at
    or after its time. Runs at or after the moment a task was filed see nothing of it.
    """
    runs = run_times(rules)
    tasks = []  # (duty, unit, period key, opens, due)
    for key, first, last, due_day in HOLIDAYS:
        roster = rt.catalog.duty(ROSTER)
        opens = dt.datetime.combine(first - roster.window.opens_before, dt.time(0), tzinfo=TZ)
        for unit in ASSIGNEES:
            tasks.append((ROSTER, unit, key, opens, dt.datetime.combine(due_day, rules.roster.due_time, tzinfo=TZ)))
            for day in days(first, last):
                tasks.append((REPORT, unit, day.isoformat(), dt.datetime.combine(day, dt.time(0), tzinfo=TZ),
                              dt.datetime.combine(day, rules.daily_report.due_time, tzinfo=TZ)))
    reminders, escalations = set(), set()
    for duty_key, unit, key, opens, due in tasks:
        duty = rt.catalog.duty(duty_key)
        escalate = due + duty.escalation.grace
        stop = filed.get((duty_key, unit, key), dt.datetime.max.replace(tzinfo=TZ))
        seen = [r for r in runs if opens <= r < stop]
        steps = sorted(((opens if s.anchor == "open" else due) + s.offset, s.key) for s in duty.reminders)
        for i, (when, step) in enumerate(steps):
            until = min(steps[i + 1][0] if i + 1 < len(steps) else escalate, escalate)
            first_run = next((r for r in seen if when <= r), None)
            if first_run is not None and first_run < until:
                for person in ASSIGNEES[unit]:
                    reminders.add((person, duty_key, unit, key, step, first_run))
        for level in duty.escalation.levels:
            when = escalate + level.after
            first_run = next((r for r in seen if when <= r), None)
            if first_run is not None:
                people = set().union(*(TARGETS[target][unit] for target in level.to)) - ASSIGNEES[unit]
                escalations.add((duty_key, unit, key, level.level, first_run, tuple(sorted(people))))
    return reminders, escalations


def recorded(session):
    O, N, E, U, P = Occurrence.__table__, Notice.__table__, Escalation.__table__, Unit.__table__, Person.__table__
    reminders = {
        (r.person, r.duty_key, r.unit, r.period_key, r.step, r.created_at)
        for r in session.execute(
            sa.select(P.c.code.label("person"), N.c.duty_key, U.c.code.label("unit"), O.c.period_key, N.c.step, N.c.created_at)
            .join(P, P.c.id == N.c.person_id).join(O, O.c.id == N.c.occurrence_id).join(U, U.c.id == O.c.unit_id)
            .where(N.c.kind == "reminder", N.c.duty_key.in_((ROSTER, REPORT))))
    }
    codes = dict(session.execute(sa.select(P.c.id, P.c.code)).all())
    escalations = {
        (r.duty_key, r.unit, r.period_key, r.level, r.fired_at, tuple(sorted(codes[p] for p in r.recipients)))
        for r in session.execute(
            sa.select(O.c.duty_key, U.c.code.label("unit"), O.c.period_key, E.c.level, E.c.fired_at, E.c.recipients)
            .join(O, O.c.id == E.c.occurrence_id).join(U, U.c.id == O.c.unit_id).where(O.c.duty_key.in_((ROSTER, REPORT))))
    }
    notices = Counter(
        (r.person, r.duty_key, r.unit, r.period_key, r.level)
        for r in session.execute(
            sa.select(P.c.code.label("person"), N.c.duty_key, U.c.code.label("unit"), O.c.period_key, N.c.level)
            .join(P, P.c.id == N.c.person_id).join(O, O.c.id == N.c.occurrence_id).join(U, U.c.id == O.c.unit_id)
            .where(N.c.kind == "escalation", N.c.duty_key.in_((ROSTER, REPORT))))
    )
    return reminders, escalations, notices


def roster_entries():
    return [watch_rules.RosterEntry("leader", "带班校长", "13800000001"), watch_rules.RosterEntry("staff", "值班员", "13900000002")]


def test_it_replays_the_2026_national_day_holiday(rt, ids, sent):
    rules = watch_rules.load_rules(rt)
    def file_roster(unit, key):
        return lambda s, org, when: watch.file_roster(s, rt, org, unit=unit, entries=roster_entries(), as_of=when,
                                                      actor=f"person:{unit}", period=key)

    def file_ok(unit, day):
        return lambda s, org, when: watch.file_report(s, rt, org, unit=unit, day=dt.date.fromisoformat(day), as_of=when,
                                                      actor=f"person:{unit}")

    def s1_incident(s, org, when):
        req = incidents.IncidentRequest("S1", at("2026-10-03", "08:50"), "injury", "general", "学生摔伤",
                                        phoned_at=at("2026-10-03", "09:00"))
        return watch.file_report(s, rt, org, unit="S1", day=dt.date(2026, 10, 3), as_of=when, actor="person:S1", incident=req)

    filings = [  # (when, work); "filed" is what the expectation needs: the run after which a task is done
        (at("2026-09-21", "09:30"), file_roster("S1", "2026-09-25-中秋节")),
        (at("2026-09-22", "14:10"), file_roster("S2", "2026-09-25-中秋节")),
        (at("2026-09-28", "10:30"), file_roster("S1", "2026-10-01-国庆节")),
        (at("2026-10-01", "10:00"), file_roster("S2", "2026-10-01-国庆节")),  # late: after level 1, before level 2
    ]
    filed = {
        (ROSTER, "S1", "2026-09-25-中秋节"): at("2026-09-21", "09:30"),
        (ROSTER, "S2", "2026-09-25-中秋节"): at("2026-09-22", "14:10"),
        (ROSTER, "S1", "2026-10-01-国庆节"): at("2026-09-28", "10:30"),
        (ROSTER, "S2", "2026-10-01-国庆节"): at("2026-10-01", "10:00"),
    }
    for _, first, last, _ in HOLIDAYS:
        for day in days(first, last):
            d = day.isoformat()
            if d == "2026-10-03":  # S1 reports an incident instead of a zero report
                filings.append((at(d, "09:10"), s1_incident))
                filed[(REPORT, "S1", d)] = at(d, "09:10")
            else:
                filings.append((at(d, "09:30"), file_ok("S1", d)))
                filed[(REPORT, "S1", d)] = at(d, "09:30")
            if d == "2026-10-05":  # after its level 1 escalation
                filings.append((at(d, "17:30"), file_ok("S2", d)))
                filed[(REPORT, "S2", d)] = at(d, "17:30")
            elif d != "2026-10-04":  # on 4 Oct S2 never reports
                filings.append((at(d, "15:30"), file_ok("S2", d)))
                filed[(REPORT, "S2", d)] = at(d, "15:30")
    # K1 files nothing, but registers an incident on 6 Oct at 11:00: the 12:00 run counts it as the day's report.
    filings.append((at("2026-10-06", "11:00"), "k1-incident"))
    filed[(REPORT, "K1", "2026-10-06")] = at("2026-10-06", "12:00")

    events = sorted([(r, 1, None) for r in run_times(rules)] + [(when, 0, work) for when, work in filings], key=lambda e: (e[0], e[1]))
    for when, is_run, work in events:
        if is_run:
            run_watch(rt, when)
        elif work == "k1-incident":
            report_incident(rt, incidents.IncidentRequest("K1", at("2026-10-06", "10:40"), "injury", "general",
                                                          phoned_at=at("2026-10-06", "10:55")),
                            when, actor="person:K1")
        else:
            in_session(rt, lambda s, org, work=work, when=when: work(s, org, when))

    want_reminders, want_escalations = expected(rt, rules, filed)
    with session_scope() as session:
        got_reminders, got_escalations, notices = recorded(session)
        tasks = rows(session, "select duty_key, count(*) from occurrence group by duty_key order by duty_key")
        statuses = dict(rows(session, "select status, count(*) from message group by status"))
        deliveries = rows(session, "select count(*) from delivery")[0][0]
    assert got_reminders == want_reminders
    assert got_escalations == want_escalations
    # each escalation reached each of its recipients once, and nobody else
    assert notices == Counter({(p, d, u, k, lvl): 1 for d, u, k, lvl, _, people in want_escalations for p in people})

    # Figures to read the replay by (all follow from the expectation above).
    assert dict(tasks) == {ROSTER: 6, REPORT: 30, "school-incident-report": 4}
    assert not any(k.startswith(("2026-10-08", "2026-10-09", "2026-10-10")) for _, _, k, *_ in got_escalations)
    assert (ROSTER, "S2", "2026-10-01-国庆节", 1, at("2026-09-30", "17:00"), ("dep-b", "safe-head")) in got_escalations
    assert not any(e[:4] == (ROSTER, "S2", "2026-10-01-国庆节", 2) for e in got_escalations)
    assert (REPORT, "S2", "2026-10-04", 2, at("2026-10-05", "17:00"), ("chief",)) in got_escalations
    assert (REPORT, "S2", "2026-10-05", 1, at("2026-10-05", "17:00"), ("dep-b", "safe-head")) in got_escalations
    assert not any(e[:4] == (REPORT, "S2", "2026-10-05", 2) for e in got_escalations)
    k1 = sorted((k, lvl) for d, u, k, lvl, *_ in got_escalations if d == REPORT and u == "K1")
    assert k1 == [(d, lvl) for d in ["2026-09-25", "2026-09-26", "2026-09-27", "2026-10-01", "2026-10-02", "2026-10-03",
                                     "2026-10-04", "2026-10-05", "2026-10-07"] for lvl in (1, 2)]
    assert not any(u == "S1" for _, u, *_ in got_escalations)
    # Counted by hand: roster reminders 7 (Mid-autumn) + 11 (National Day), report reminders
    # 20 (S2 files after 13:00 every day) + 9 (K1, but not on 6 Oct); escalations 5 rosters
    # (K1 twice each, S2 once for National Day) and 21 reports (K1 9 days × 2, S2 4 Oct × 2 and 5 Oct).
    assert len(want_reminders) == 47 and len(want_escalations) == 26
    # the outbox sent every message once
    assert set(statuses) == {"sent"} and deliveries == statuses["sent"] == len(sent.calls)

    # the board of 3 Oct in the evening, and of 6 Oct (K1's incident counts)
    with session_scope() as session:
        org = load_org(session)
        covering, board = watch_views.board(session, rt, org, dt.date(2026, 10, 3), at("2026-10-03", "20:00"))
        _, board6 = watch_views.board(session, rt, org, dt.date(2026, 10, 6), at("2026-10-06", "20:00"))
        s1_incident_id = session.scalar(sa.text("select incident_id from watch_report where day = :d"), {"d": dt.date(2026, 10, 3)})
    assert [p.name for p in covering] == ["国庆节"]
    assert [(r.unit_code, r.roster, r.report, r.level, r.incidents) for r in board] == [
        ("K1", "missing", "missing", 1, ()), ("S1", "filed", "incident", 0, (s1_incident_id,)), ("S2", "late", "ok", 0, ()),
    ]
    assert board[1].leaders == ("带班校长 13800000001",) and board[1].staff == ("值班员 13900000002",)
    assert [(r.unit_code, r.report) for r in board6] == [("K1", "incident"), ("S1", "ok"), ("S2", "ok")]
    # nothing is queued twice when a run repeats
    before = recorded_counts()
    run_watch(rt, at("2026-10-05", "17:00"))
    run_watch(rt, at("2026-10-12", "20:00"))
    assert recorded_counts() == before


def recorded_counts():
    with session_scope() as session:
        return {t: session.scalar(sa.text(f"select count(*) from {t}")) for t in ("occurrence", "notice", "escalation", "message")}


def test_a_unit_reports_an_incident_instead_of_a_zero_report(rt, ids, sent):
    run_watch(rt, at("2026-10-02", "08:00"))
    req = incidents.IncidentRequest("S2", at("2026-10-02", "09:40"), "溺水", "较大", "学生在河边溺水，已送医")
    filed = in_session(rt, lambda s, org: watch.file_report(s, rt, org, unit="S2", day=dt.date(2026, 10, 2),
                                                            as_of=at("2026-10-02", "10:00"), actor="person:s2-safe", incident=req))
    assert (filed.status, filed.created, filed.late) == ("incident", True, False)
    with session_scope() as session:
        incident = session.execute(sa.text("select id, category, severity, phone_due_at from incident")).one()
        report_row = rows(session, "select status, incident_id from watch_report")
        clock = rows(session, "select period_key, review from occurrence where duty_key = 'school-incident-report' order by period_key")
    assert report_row == [("incident", incident.id)]
    assert (incident.category, incident.severity) == ("drowning", "larger")
    assert [k for k, _ in clock] == sorted([incident_rules.report_key(incident.id, "phone"), incident_rules.report_key(incident.id, "written")])
    for hm in ("13:00", "17:00"):
        run_watch(rt, at("2026-10-02", hm))
    with session_scope() as session:
        org = load_org(session)
        _, board = watch_views.board(session, rt, org, dt.date(2026, 10, 2), at("2026-10-02", "18:00"))
        s2_notices = rows(session, "select n.kind from notice n join occurrence o on o.id = n.occurrence_id "
                                   "join unit u on u.id = o.unit_id where u.code = 'S2' and o.period_key = '2026-10-02'")
    assert s2_notices == []  # no reminder at 13:00, no escalation at 17:00 for the day S2 reported
    assert {r.unit_code: (r.report, r.incidents) for r in board}["S2"] == ("incident", (incident.id,))
    # the incident's own clock runs: the phone report was due at 10:10
    assert CLOCK.run(rt, as_of=at("2026-10-02", "10:10"))["escalate"]["incidents"] == [incident.id]
    # a zero report filed afterwards does not hide the incident; reporting it again changes nothing
    again = in_session(rt, lambda s, org: watch.file_report(s, rt, org, unit="S2", day=dt.date(2026, 10, 2),
                                                            as_of=at("2026-10-02", "18:00"), actor="person:s2-safe"))
    assert (again.status, again.created, again.incident_id) == ("incident", False, incident.id)


def test_an_incident_reported_after_a_zero_report_replaces_it(rt, ids, sent):
    in_session(rt, lambda s, org: watch.file_report(s, rt, org, unit="S1", day=dt.date(2026, 10, 1),
                                                    as_of=at("2026-10-01", "09:00"), actor="person:s1-head"))
    registered = report_incident(rt, incidents.IncidentRequest("S1", at("2026-10-01", "11:00"), "fire", "general"),
                                 at("2026-10-01", "11:10"), actor="person:s1-head")
    filed = in_session(rt, lambda s, org: watch.file_report(s, rt, org, unit="S1", day=dt.date(2026, 10, 1),
                                                            as_of=at("2026-10-01", "11:15"), actor="person:s1-head",
                                                            incident_id=registered.registered.id))
    assert (filed.status, filed.created, filed.late) == ("incident", True, False)
    with session_scope() as session:
        assert rows(session, "select status, incident_id, filed_at is not null from watch_report") == [
            ("incident", registered.registered.id, True)]


def test_filing_errors_name_the_option_and_change_nothing(rt, ids, sent):
    def file(**kw):
        return in_session(rt, lambda s, org: watch.file_report(s, rt, org, actor="operator:x", **kw))

    with pytest.raises(watch_rules.WatchError, match="--day：2026-10-09 不是值守日"):
        file(unit="S1", day=dt.date(2026, 10, 9), as_of=at("2026-10-09", "09:00"))
    with pytest.raises(watch_rules.WatchError, match="--day：2026-10-03 还没到"):
        file(unit="S1", day=dt.date(2026, 10, 3), as_of=at("2026-10-02", "09:00"))
    with pytest.raises(watch_rules.WatchError, match="--unit：单位 SAFE（安全科）不承担「重大事件零报告」"):
        file(unit="SAFE", day=dt.date(2026, 10, 2), as_of=at("2026-10-02", "09:00"))
    with pytest.raises(watch_rules.WatchError, match="--incident：没有单位 S1 的事故 #99"):
        file(unit="S1", day=dt.date(2026, 10, 2), as_of=at("2026-10-02", "09:00"), incident_id=99)
    with pytest.raises(incident_rules.IncidentError, match="--category"):
        file(unit="S1", day=dt.date(2026, 10, 2), as_of=at("2026-10-02", "09:00"),
             incident=incidents.IncidentRequest("S1", at("2026-10-02", "08:00"), "火星撞地球", "一般"))
    with pytest.raises(watch_rules.WatchError, match="值班表不完整"):
        in_session(rt, lambda s, org: watch.file_roster(s, rt, org, unit="S1", entries=roster_entries()[:1],
                                                        as_of=at("2026-09-25", "09:00"), actor="x", period="2026-10-01-国庆节"))
    with session_scope() as session:
        assert rows(session, "select (select count(*) from watch_report), (select count(*) from watch_roster), "
                             "(select count(*) from incident), (select count(*) from audit where action != 'catalog.synced')") == [(0, 0, 0, 0)]


def test_an_operator_period_is_watched_and_cancelling_it_waives_its_open_tasks(rt, ids, sent):
    in_session(rt, lambda s, org: watch.add_period(s, "高考期间", dt.date(2026, 6, 7), dt.date(2026, 6, 9),
                                                   at("2026-06-01", "09:00"), actor="operator:x"))
    again = in_session(rt, lambda s, org: watch.add_period(s, "高考期间", dt.date(2026, 6, 7), dt.date(2026, 6, 9),
                                                           at("2026-06-01", "10:00"), actor="operator:x"))
    assert again[1] is False
    # roster due on Fri 5 June (the last working day before Sun 7 June) at 16:00
    run_watch(rt, at("2026-06-05", "17:00"))
    run_watch(rt, at("2026-06-07", "17:00"))
    with session_scope() as session:
        tasks = rows(session, "select duty_key, period_key, count(*) from occurrence group by duty_key, period_key order by 1, 2")
        fired = rows(session, "select count(*) from escalation")[0][0]
    assert tasks == [(ROSTER, "2026-06-07-高考期间", 3), (REPORT, "2026-06-07", 3)]
    assert fired == 9  # rosters: level 1 on 5 June 17:00, level 2 on 6 June; reports of 7 June: level 1
    with pytest.raises(watch_rules.WatchError, match="--to 早于 --from"):
        in_session(rt, lambda s, org: watch.add_period(s, "反了", dt.date(2026, 6, 9), dt.date(2026, 6, 7),
                                                       at("2026-06-01", "09:00"), actor="operator:x"))
    period_id = again[0]
    waived = in_session(rt, lambda s, org: watch.cancel_period(s, rt, period_id, at("2026-06-07", "18:00"), actor="operator:x"))
    assert waived == 6
    assert in_session(rt, lambda s, org: watch.cancel_period(s, rt, period_id, at("2026-06-07", "18:00"), actor="operator:x")) is None
    run_watch(rt, at("2026-06-08", "17:00"))
    run_watch(rt, at("2026-06-08", "18:00"))  # level 2 of the 7 June reports would be due now
    with session_scope() as session:
        assert rows(session, "select count(*) from escalation")[0][0] == 9
        assert rows(session, "select count(*) from occurrence")[0][0] == 6


def test_it_holds_reminders_and_escalations_outside_the_sending_hours(rt, ids, sent):
    # A first run in the night of 1 Oct records the holidays then: no roster for the Mid-autumn
    # holiday that is over, and for National Day the roster (due the next day at 16:00, not in
    # the past) and the report of 1 Oct.
    result = run_watch(rt, at("2026-10-01", "22:00"))
    assert (result.in_hours, result.new_periods, result.planned, result.reminders, result.escalations) == (False, 2, 3 + 3, 0, 0)
    assert sent.calls == []
    result = run_watch(rt, at("2026-10-02", "08:00"))  # the roster's due-2d reminder and 1 Oct's escalation go out now
    assert (result.planned, result.reminders, result.escalations) == (3, 5, 3)
    # one digest per person: the 5 assignees; dep-b (包保 of S1 and S2), dep-a (K1) and the safety section
    assert sorted(url.rsplit("/", 1)[-1] for url, _, _ in sent.calls) == sorted(
        ["s1-head", "s1-safe", "s2-head", "s2-safe", "k1-head", "dep-a", "dep-b", "safe-head"])



# --------------------------------------------------------------------------- CLI

def test_the_cli_files_rosters_and_reports_and_shows_who_has_reported(rt, ids, sent):
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, ["watch", *args])

    listed = cli("list", "--as-of", "2026-09-20", "--json")
    assert listed.exit_code == 0, listed.output
    assert "2026-10-01-国庆节" in listed.output and "2026-09-30T16:00:00+08:00" in listed.output
    done = cli("roster", "--unit", "S1", "--period", "2026-10-01-国庆节", "--leader", "王校长:13800000001",
               "--staff", "李老师:13900000002", "--as-of", "2026-09-28T10:00")
    assert done.exit_code == 0 and "S1" in done.output and "国庆节" in done.output, done.output
    replaced = cli("roster", "--unit", "S1", "--period", "2", "--leader", "王校长:13800000001",
                   "--staff", "李老师:13900000002", "--staff", "2026-10-02=赵老师:13700000003", "--as-of", "2026-10-01T20:00")
    assert replaced.exit_code == 0 and "值班表已更新" in replaced.output, replaced.output
    with session_scope() as session:
        roster = session.scalars(sa.select(WatchRoster)).one()
    assert [e["name"] for e in roster.entries] == ["王校长", "李老师", "赵老师"]
    # the first filing's time is what the deadline judges
    assert (roster.filed_at, roster.updated_at) == (at("2026-09-28", "10:00"), at("2026-10-01", "20:00"))
    bad = cli("roster", "--unit", "S1", "--leader", "王校长", "--staff", "李老师:13900000002", "--as-of", "2026-09-28T10:00")
    assert bad.exit_code == 2 and "--leader 第 1 项" in bad.output
    ok = cli("report", "--unit", "S1", "--as-of", "2026-10-01T09:00")
    assert ok.exit_code == 0 and "平安无事" in ok.output, ok.output
    inc = cli("report", "--unit", "K1", "--as-of", "2026-10-01T11:00", "--incident-at", "2026-10-01T10:30",
              "--category", "食物中毒", "--severity", "一般", "--note", "午餐后 3 名幼儿呕吐")
    assert inc.exit_code == 0 and "事故 #1" in inc.output, inc.output
    partial = cli("report", "--unit", "K1", "--as-of", "2026-10-01T11:00", "--category", "溺水")
    assert partial.exit_code == 2 and "--incident-at" in partial.output
    off = cli("report", "--unit", "S2", "--day", "2026-10-10", "--as-of", "2026-10-10T09:00")
    assert off.exit_code == 2 and "2026-10-10 不是值守日" in off.output
    status = cli("status", "--as-of", "2026-10-01T17:00", "--json")
    assert status.exit_code == 0, status.output
    assert '"report": "incident"' in status.output and '"report": "ok"' in status.output
    with session_scope() as session:
        assert rows(session, "select u.code, r.status from watch_report r join unit u on u.id = r.unit_id order by u.code") == [
            ("K1", "incident"), ("S1", "ok")]
        # the new incident's clock started: its phone report (due 11:00) is not late yet
        assert rows(session, "select count(*) from occurrence where duty_key = 'school-incident-report'")[0][0] == 2
    added = cli("add", "--name", "高考期间", "--from", "2026-06-07", "--to", "2026-06-09", "--as-of", "2026-06-01")
    assert added.exit_code == 0 and "高考期间" in added.output
    run = cli("run", "--as-of", "2026-06-07T17:00")
    assert run.exit_code == 0 and "督办 9" in run.output, run.output


# --------------------------------------------------------------------------- every break (issue 14 finding 2)

def test_the_breaks_lie_between_the_terms():
    # Default terms: spring 1 March – 15 July, autumn 1 September – 15 January.
    found = watch_rules.term_breaks(watch_rules.Terms(), dt.date(2026, 6, 1), dt.date(2027, 3, 31))
    assert [(b.name, b.start, b.end) for b in found] == [
        ("暑假", dt.date(2026, 7, 16), dt.date(2026, 8, 31)),
        ("寒假", dt.date(2027, 1, 16), dt.date(2027, 2, 28)),
    ]
    south = watch_rules.Terms(spring=("02-20", "07-05"), autumn=("09-01", "01-20"))
    assert [(b.start, b.end) for b in watch_rules.term_breaks(south, dt.date(2027, 1, 1), dt.date(2027, 2, 28))] == [
        (dt.date(2027, 1, 21), dt.date(2027, 2, 19))]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_winter_break_is_watched_with_a_roster_before_and_a_report_every_day(rt, ids, sent):
    # 2027 has no official calendar yet: 元旦 and 春节 come from the statutory days (provisional).
    # The winter break starts Saturday 16 January 2027; its roster opens 7 days before (9 January)
    # and is due on the last working day before it, Friday 15 January, at 16:00.
    run_watch(rt, at("2027-01-10", "09:00"))
    with session_scope() as session:
        found = {(p.key, p.source) for p in watch.periods(session, since=dt.date(2027, 1, 1))}
        O, U = Occurrence.__table__, Unit.__table__
        rosters = session.execute(sa.select(U.c.code, O.c.due_at).join(U, U.c.id == O.c.unit_id).where(
            O.c.duty_key == ROSTER, O.c.period_key == "2027-01-16-寒假").order_by(U.c.code)).all()
    assert ("2027-01-16-寒假", "term") in found and ("2027-01-01-元旦", "provisional") in found
    assert [(code, due.astimezone(TZ).strftime("%Y-%m-%d %H:%M")) for code, due in rosters] == [
        ("K1", "2027-01-15 16:00"), ("S1", "2027-01-15 16:00"), ("S2", "2027-01-15 16:00")]

    run_watch(rt, at("2027-01-17", "10:00"))
    run_watch(rt, at("2027-02-06", "10:00"))  # 春节 inside the break: still one report a unit a day
    with session_scope() as session:
        assert "2027-02-05-春节" in {p.key for p in watch.periods(session, since=dt.date(2027, 2, 1))}
        reports = rows(session, "select period_key, count(*) from occurrence where duty_key = :d "
                                "and period_key >= '2027-01-16' group by period_key order by period_key", d=REPORT)
    days_reported = [dt.date.fromisoformat(k) for k, _ in reports]
    assert all(n == 3 for _, n in reports)  # S1, S2 and K1, once each
    assert dt.date(2027, 1, 16) in days_reported and dt.date(2027, 2, 6) in days_reported
    # a run catches up the LOOKBACK (7 days) it missed: 30 January to 6 February, and 16–17 January
    assert days_reported == [dt.date(2027, 1, 16), dt.date(2027, 1, 17)] + list(days(dt.date(2027, 1, 30), dt.date(2027, 2, 6)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_breaks_can_be_left_to_the_operator(rt, ids, sent, tmp_path):
    import shutil

    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG, directory)
    path = directory / "flows" / "holiday.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("term_breaks: true", "term_breaks: false"), encoding="utf-8")
    rt_off = build_runtime(Settings(catalog_dir=directory, send_backoff=0), load_catalog(directory))
    run_watch(rt_off, at("2026-07-10", "09:00"))
    with session_scope() as session:
        assert not [p for p in watch.periods(session, since=dt.date(2026, 7, 1)) if p.source == "term"]


def _rt_with_holidays(tmp_path, text: str | None):
    path = tmp_path / "holidays.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    return build_runtime(Settings(catalog_dir=CATALOG, holiday_file=path, send_backoff=0), load_catalog(CATALOG))


def _spring_festival(session):
    return [(p.key, p.ends_on, p.source, p.cancelled_at is not None)
            for p in watch.periods(session, since=dt.date(2027, 2, 1), include_cancelled=True) if "春节" in p.name]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_provisional_holiday_follows_the_notice_once_it_is_imported(ids, sent, tmp_path):
    # Statutory 春节 2027: 除夕 Friday 5 February to 初三 Monday 8 February (provisional). The roster
    # window opens 7 days before: the period is recorded on 29 January.
    run_watch(_rt_with_holidays(tmp_path, None), at("2027-01-30", "09:00"))
    with session_scope() as session:
        assert _spring_festival(session) == [("2027-02-05-春节", dt.date(2027, 2, 8), "provisional", False)]
    # the notice keeps 5 February as the first day but gives the whole week off, to 11 February
    notice = "years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-05, to: 2027-02-11}\nworkdays: [2027-02-20]\n"
    run_watch(_rt_with_holidays(tmp_path, notice), at("2027-02-01", "09:00"))
    with session_scope() as session:
        assert _spring_festival(session) == [("2027-02-05-春节", dt.date(2027, 2, 11), "calendar", False)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_provisional_holiday_the_notice_moves_is_cancelled_and_replaced(ids, sent, tmp_path):
    run_watch(_rt_with_holidays(tmp_path, None), at("2027-01-30", "09:00"))
    notice = "years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-06, to: 2027-02-12}\n"
    run_watch(_rt_with_holidays(tmp_path, notice), at("2027-02-01", "09:00"))
    with session_scope() as session:
        assert sorted(_spring_festival(session)) == [
            ("2027-02-05-春节", dt.date(2027, 2, 8), "provisional", True),
            ("2027-02-06-春节", dt.date(2027, 2, 14), "calendar", False),  # Friday 12th, then the weekend
        ]
        waived = rows(session, "select count(*) from waiver w join occurrence o on o.id = w.occurrence_id "
                               "where o.period_key = '2027-02-05-春节'")[0][0]
    assert waived == 3  # the three units' rosters of the moved period
