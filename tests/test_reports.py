"""Compliance reports and digests, against a quarter replayed for the small organisation.

The quarter (2026-Q4, one run at 09:00 each day) is replayed once per backend; along the way
people hand evidence in, the operator accepts, rejects and waives, a leader's inspection is
closed without evidence, and hazards are recorded. The expected figures are worked out here
from the catalog and that script — which tasks fall due in the quarter (``periods_between`` and
``timing``, as tests/test_replay.py does), each task's outcome from what was done to it and
when, and the escalation levels each task reached from the policy's schedule, the working-time
runs and the moment the task stopped needing evidence — not from the engine's tables.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import at, make_org, make_runtime
from openpyxl import load_workbook
from typer.testing import CliRunner

from models import Message, Notice, Occurrence, Waiver
from models.hazard import Hazard
from pingan.delivery.workflow import dispatch
from pingan.duties.workflow import replay
from pingan.reports import digests
from pingan.evidence import service as evidence
from pingan.delivery import transports
from pingan.core.db import dispose_engines, session_scope
from pingan.core.migrate import upgrade
from pingan.core.periods import days, periods_between, timing
from pingan.core.clock import TZ
from pingan.reports.compute import OUTCOMES, Version, Waived, judge, report_for
from pingan.reports.rules import ReportError, ReportPeriod, parse_period, previous_quarter, previous_week
from pingan.org.snapshot import load_org
from pingan.duties.rules import escalation_schedule, is_working_time
from pingan.duties.runtime import reset_runtime
from pingan.core.settings import Settings, reset_settings
from pingan.delivery.transports import Outcome

START, END = dt.date(2026, 10, 1), dt.date(2026, 12, 31)
RUN = dt.time(9, 0)
AS_OF = at("2027-01-04", "09:00")
NEVER = dt.datetime.max.replace(tzinfo=TZ)
# Who answers for what in tests/factories.py: 副局长甲 is 包保 of the kindergarten, 副局长乙 of both
# schools and 分管 of the office; each carries his own quarterly inspection (unit B).
ANSWERS = {"dep-a": {"K1"}, "dep-b": {"S1", "S2", "OFF"}}


# =========================================================================== the scenario

@dataclass
class Scenario:
    ids: dict[str, int]
    tasks: dict[tuple, dict] = field(default_factory=dict)  # (duty, unit, person code, period) → expectations

    def task(self, duty: str, unit: str, period: str, person: str | None = None) -> dict:
        return self.tasks[(duty, unit, person, period)]


def occurrence(session, ids, duty: str, unit: str, period: str, person: str | None = None) -> int:
    O = Occurrence.__table__
    return session.execute(sa.select(O.c.id).where(
        O.c.duty_key == duty, O.c.unit_id == ids[unit], O.c.period_key == period,
        O.c.person_key == (ids[person] if person else 0))).scalar_one()


def hand_in(rt, ids, key, who: str, when: dt.datetime) -> int:
    with session_scope() as session:
        task = evidence.load_task(session, rt, occurrence(session, ids, *key))
        person = session.get(evidence.Person, ids[who])
        checked = evidence.CheckedHandIn(kind="meeting_minutes", fields={}, note="见附件", files=[])
        return evidence.hand_in(session, rt, task=task, person=person, checked=checked, as_of=when).id


def review(rt, evidence_id: int, accept: bool, when: dt.datetime) -> None:
    with session_scope() as session:
        evidence.review(session, rt, evidence_id=evidence_id, accept=accept, reason=None if accept else "缺少签到表",
                        actor="operator:test", as_of=when)


def build_scenario(rt, ids: dict[str, int]) -> Scenario:
    """Replay the quarter with the actions below; return each Q4 task's expected outcome and levels."""
    half = dt.timedelta(minutes=30)
    made: dict[str, int] = {}
    A = ("school-meeting", "S1", "2026-10")
    B = ("school-meeting", "S2", "2026-10")
    C = ("school-meeting", "S1", "2026-11")
    D = ("office-report", "OFF", "2026-12")
    E = ("kindergarten-drill", "K1", "2026-Q4")
    F = ("leader-inspection", "B", "2026-Q4", "dep-a")
    G = ("office-report", "OFF", "2026-10")

    def waive(key, granted: dt.datetime, until: dt.datetime):
        with session_scope() as session:
            session.add(Waiver(occurrence_id=occurrence(session, ids, *key), granted_by="局长", reason="校舍改造停课",
                               until=until, created_at=granted))

    def close_without_evidence(key, when):
        with session_scope() as session:
            session.execute(sa.update(Occurrence).where(Occurrence.id == occurrence(session, ids, *key))
                            .values(review="accepted", closed_at=when))

    actions = {
        at("2026-10-10", "09:00"): lambda t: waive(G, t, at("2026-10-20", "18:00")),  # ends before the deadline
        at("2026-10-20", "09:00"): lambda t: made.__setitem__("A", hand_in(rt, ids, A, "s1-head", t)),
        at("2026-10-21", "09:00"): lambda t: review(rt, made["A"], True, t),
        at("2026-11-05", "09:00"): lambda t: made.__setitem__("B", hand_in(rt, ids, B, "s2-safe", t)),
        at("2026-11-06", "09:00"): lambda t: review(rt, made["B"], True, t),
        at("2026-11-20", "09:00"): lambda t: made.__setitem__("C", hand_in(rt, ids, C, "s1-safe", t)),
        at("2026-11-23", "09:00"): lambda t: review(rt, made["C"], False, t),
        at("2026-12-01", "09:00"): lambda t: waive(E, t, at("2027-01-31", "18:00")),
        at("2026-12-15", "09:00"): lambda t: close_without_evidence(F, t),
        at("2026-12-28", "09:00"): lambda t: made.__setitem__("D", hand_in(rt, ids, D, "off-head", t)),
    }
    # (outcome, the moment the task stopped needing evidence: no escalation from then on)
    fates = {
        A: ("on_time", at("2026-10-20", "09:30")), B: ("late", at("2026-11-05", "09:30")), C: ("missing", NEVER),
        D: ("pending", at("2026-12-28", "09:30")), E: ("waived", at("2026-12-01", "09:30")),
        F: ("on_time", at("2026-12-15", "09:30")), G: ("missing", NEVER),
    }

    def step(as_of: dt.datetime) -> None:
        if as_of in actions:
            actions[as_of](as_of + half)

    replay(rt, START, END, times=(RUN,), send_messages=False, on_step=step)
    dispatch(rt, at("2026-12-31", "20:00"))  # what the replay queued leaves before any digest
    with session_scope() as session:
        session.add_all([
            Hazard(unit_id=ids["S1"], place="食堂", description="燃气软管老化", level="major", source="patrol",
                   state="rectifying", reported_by="person:s1-safe", rectifier_id=ids["s1-safe"],
                   found_at=at("2026-11-02"), deadline=at("2026-11-09", "17:30")),
            Hazard(unit_id=ids["S2"], place="楼梯", description="扶手松动", level="general", source="half_monthly",
                   state="closed", reported_by="person:s2-safe", rectifier_id=ids["s2-safe"], found_at=at("2026-10-12"),
                   deadline=at("2026-10-19", "17:30"), closed_at=at("2026-10-22"), closed_by="operator:test"),
            Hazard(unit_id=ids["K1"], place="滑梯", description="螺丝缺失", level="general", source="ad_hoc",
                   state="reported", reported_by="person:k1-head", rectifier_id=ids["k1-head"],
                   found_at=at("2026-12-30"), deadline=at("2027-01-08", "17:30")),
            Hazard(unit_id=ids["S2"], place="操场", description="地面破损（季度末未销号，元月销号）", level="general",
                   source="patrol", state="closed", reported_by="person:s2-safe", rectifier_id=ids["s2-safe"],
                   found_at=at("2026-12-20"), deadline=at("2027-01-05", "17:30"), closed_at=at("2027-01-02"),
                   closed_by="operator:test"),
            Hazard(unit_id=ids["S2"], place="围墙", description="裂缝（上季度已销号）", level="general", source="patrol",
                   state="closed", reported_by="person:s2-safe", rectifier_id=ids["s2-safe"], found_at=at("2026-08-01"),
                   deadline=at("2026-08-08", "17:30"), closed_at=at("2026-08-07"), closed_by="operator:test"),
        ])
    return Scenario(ids=ids, tasks=expectations(rt, fates))


def expectations(rt, fates: dict[tuple, tuple[str, dt.datetime]]) -> dict[tuple, dict]:
    """Every task due in Q4 from the catalog, with its outcome and the escalation it reached."""
    s = rt.settings
    runs = [dt.datetime.combine(d, RUN, tzinfo=TZ) for d in days(START, END)]
    work = [r for r in runs if is_working_time(r, rt.calendar, s.work_start, s.work_end)]
    with session_scope() as session:
        org = load_org(session)
    units = {u.id: u.code for u in org.units.values()}
    persons = {p.id: p.code for p in org.persons.values()}
    out = {}
    for duty in rt.catalog.planned:
        for period in periods_between(duty.cadence, START - dt.timedelta(days=100), END, rt.terms,
                                      dict(rt.catalog.key_dates), rt.calendar):
            due = timing(period, duty.window, rt.calendar).due_at
            if not START <= due.date() <= END:
                continue
            for unit_id, person_id in org.subjects(duty.carrier):
                key = (duty.key, units[unit_id], persons.get(person_id), period.key)
                short = (key[0], key[1], key[3]) + ((key[2],) if key[2] else ())  # as the script names tasks
                outcome, stop = fates.get(short, ("missing", NEVER))
                schedule = []
                for event in escalation_schedule(duty.escalation, due + duty.escalation.grace):
                    if event.at > runs[-1]:
                        break
                    schedule.append(event)
                levels, events = set(), 0
                for i, event in enumerate(schedule):
                    nxt = schedule[i + 1].at if event.seq and i + 1 < len(schedule) else NEVER
                    if any(event.at <= r < min(nxt, stop) for r in work):
                        levels.add(event.level)
                        events += 1
                out[key] = {"due": due, "outcome": outcome, "levels": levels, "events": events}
    return out


def expected_figures(scenario: Scenario, select) -> dict:
    chosen = [v for k, v in scenario.tasks.items() if select(k)]
    out = Counter(v["outcome"] for v in chosen)
    levels = Counter(n for v in chosen for n in v["levels"])
    return {"tasks": len(chosen), **{o: out.get(o, 0) for o in OUTCOMES}, "escalated": sum(1 for v in chosen if v["levels"]),
            **{f"level_{n}": levels.get(n, 0) for n in (1, 2, 3)}, "escalation_events": sum(v["events"] for v in chosen)}


def got_figures(row: dict) -> dict:
    return {k: row[k] for k in ("tasks", *OUTCOMES, "escalated", "level_1", "level_2", "level_3", "escalation_events")}


# =========================================================================== fixtures

@pytest.fixture(autouse=True)
def delivered(monkeypatch):
    monkeypatch.setattr(transports, "deliver", lambda *a, **k: Outcome(ok=True))


@pytest.fixture(scope="module")
def q4_sqlite(tmp_path_factory):
    """The replayed quarter on SQLite, built once per module; each test works on a copy."""
    base = tmp_path_factory.mktemp("q4")
    url = f"sqlite:///{base / 'pingan.db'}"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PINGAN_") and not name.startswith("PINGAN_TEST_"):
                mp.delenv(name)
        mp.setitem(Settings.model_config, "env_file", None)
        (base / "home").mkdir()
        mp.setenv("PINGAN_HOME", str(base / "home"))
        mp.setenv("PINGAN_DEMO", "1")
        mp.setenv("PINGAN_DATABASE_URL", url)
        mp.setattr(transports, "deliver", lambda *a, **k: Outcome(ok=True))
        reset_settings(), reset_runtime(), dispose_engines()
        upgrade("head", url=url)
        rt = make_runtime(base)
        with session_scope() as session:
            ids = make_org(session)
        scenario = build_scenario(rt, ids)
        dispose_engines()
        reset_settings(), reset_runtime()
    yield base / "pingan.db", scenario


@pytest.fixture
def q4(q4_sqlite, tmp_path, monkeypatch):
    """(runtime, scenario) on a fresh copy of the replayed quarter."""
    source, scenario = q4_sqlite
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", tmp_path / f"pingan.db{suffix}")
    monkeypatch.setenv("PINGAN_DATABASE_URL", f"sqlite:///{tmp_path / 'pingan.db'}")
    reset_settings(), dispose_engines()
    return make_runtime(tmp_path), scenario


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def replayed(request, tmp_path, monkeypatch):
    """The replayed quarter on each backend (PostgreSQL replays it afresh)."""
    if request.param == "sqlite":
        return request.getfixturevalue("q4")
    url = request.getfixturevalue("pg_url")
    upgrade("head", url=url)
    monkeypatch.setenv("PINGAN_DATABASE_URL", url)
    reset_settings(), dispose_engines()
    rt = make_runtime(tmp_path)
    with session_scope() as session:
        ids = make_org(session)
    return rt, build_scenario(rt, ids)


# =========================================================================== periods and outcomes (pure)

def test_it_reads_periods_and_defaults_to_the_quarter_just_ended():
    assert parse_period("2026-Q4", AS_OF) == ReportPeriod("2026-Q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert parse_period("2026", AS_OF) == ReportPeriod("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert parse_period("2026-h1", AS_OF) == ReportPeriod("2026-H1", dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    assert parse_period("2026-02", AS_OF) == ReportPeriod("2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert parse_period(None, AS_OF).key == "2026-Q4" == previous_quarter(at("2027-01-03", "07:00")).key
    assert previous_quarter(at("2026-10-01", "00:00")).key == "2026-Q3"
    assert parse_period("previous-year", AS_OF).key == "2026"
    assert previous_week(at("2026-11-09", "08:00")) == ReportPeriod("2026-W45", dt.date(2026, 11, 2), dt.date(2026, 11, 8))
    for bad in ("2026-Q5", "26-Q1", "2026-13", "Q4", "2026-Q4 "[:-1] + "x"):
        with pytest.raises(ReportError, match="--period"):
            parse_period(bad, AS_OF)


def test_it_judges_one_outcome_per_task_with_what_was_known_at_the_time():
    due = at("2026-11-02", "17:30")
    sub = lambda n, s, status="submitted", r=None: Version(n, at(s), status, at(r) if r else None)  # noqa: E731
    later = at("2026-12-01")
    waiver = Waived("局长", at("2026-12-31"), "停课")
    assert judge(due, "accepted", later, [sub(1, "2026-11-01", "accepted", "2026-11-05")], None, later)[0] == "on_time"
    assert judge(due, "accepted", later, [sub(1, "2026-11-01", "rejected", "2026-11-02"),
                                          sub(2, "2026-11-04", "accepted", "2026-11-05")], None, later)[:4] == (
        "late", "accepted", at("2026-11-04"), 2)
    # the review came after the moment judged: still awaiting review then
    assert judge(due, "accepted", later, [sub(1, "2026-11-01", "accepted", "2026-11-05")], None, at("2026-11-03"))[0] == "pending"
    # a hand-in after the moment judged does not exist yet
    assert judge(due, "submitted", None, [sub(1, "2026-11-10")], None, at("2026-11-03"))[0] == "missing"
    assert judge(due, "submitted", None, [sub(1, "2026-11-10")], None, at("2026-11-01"))[0] == "not_due"
    assert judge(due, "rejected", None, [sub(1, "2026-11-01", "rejected", "2026-11-02")], None, later)[:2] == ("missing", "rejected")
    assert judge(due, "none", None, [], waiver, later)[0] == "waived"
    assert judge(due, "submitted", None, [sub(1, "2026-11-01")], waiver, later)[0] == "waived"
    # closed by its own flow (incident clock, holiday watch): closed_at says when
    assert judge(due, "accepted", at("2026-11-03"), [], None, later)[:3] == ("late", "accepted", at("2026-11-03"))
    assert judge(due, "accepted", at("2026-11-01"), [], None, later)[0] == "on_time"


def test_the_clauses_it_cites_are_quoted_verbatim_from_the_seed_documents():
    from pingan.reports.text import BASIS, TITLES

    seeds = Settings().seeds_path
    if not seeds.is_dir():
        pytest.skip(f"{seeds} not present")
    clauses = {b.clause for b in BASIS}
    assert {"一（六）", "六（二）6", "一（八）"} <= clauses  # annual assessment, one-vote veto, accountability
    for b in BASIS:
        text = re.sub(r"\s+", "", (seeds / b.document).read_text(encoding="utf-8"))
        assert re.sub(r"\s+", "", b.text) in text, (b.document, b.clause)
        assert re.sub(r"\s+", "", TITLES[b.document]) in text
    assert "一票否决" in "".join(b.text for b in BASIS) and "追责" in "".join(b.text for b in BASIS)


# =========================================================================== the figures

def test_it_counts_a_replayed_quarter_per_unit_leader_and_duty(replayed):
    rt, scenario = replayed
    report = report_for(rt, "2026-Q4", AS_OF)
    data = report.as_dict()
    # Two schools × three months of meetings, three office reports, one kindergarten drill, two
    # leaders' inspections; September's tasks (due 30 Sep) belong to Q3 although planned on 1 Oct.
    assert len(scenario.tasks) == 6 + 3 + 1 + 2
    assert got_figures(data["totals"]) == expected_figures(scenario, lambda k: True)
    assert {o: data["totals"][o] for o in OUTCOMES} == {
        "on_time": 2, "late": 1, "pending": 1, "missing": 7, "waived": 1, "not_due": 0}
    assert data["totals"]["on_time_rate"] == round(2 / (12 - 1), 4)
    units = {r["key"]: r for r in data["by_unit"]}
    assert set(units) == {"B", "OFF", "S1", "S2", "K1"}
    for code, row in units.items():
        assert got_figures(row) == expected_figures(scenario, lambda k, c=code: k[1] == c), code
    duties = {r["key"]: r for r in data["by_duty"]}
    for key, row in duties.items():
        assert got_figures(row) == expected_figures(scenario, lambda k, d=key: k[0] == d), key
    leaders = {r["key"]: r for r in data["by_leader"]}
    assert set(leaders) == set(ANSWERS)  # the principal answers for no bureau-unit task here
    for code, row in leaders.items():
        assert got_figures(row) == expected_figures(
            scenario, lambda k, c=code: k[1] in ANSWERS[c] or k[2] == c), code
    assert leaders["dep-b"]["relations"] == {"patron": ["一小", "二中"], "in_charge": ["办公室"], "own": []}
    # The escalation the script implies, spelled out: S2's October meeting reached level 1 only
    # (handed in two days after its deadline); S1's was on time and never escalated.
    assert scenario.task("school-meeting", "S2", "2026-10")["levels"] == {1}
    assert scenario.task("school-meeting", "S1", "2026-10")["levels"] == set()
    assert scenario.task("office-report", "OFF", "2026-10")["levels"] == {1, 2, 3}
    # every figure is traceable: each row keeps the ids of its tasks, and they are the report's tasks
    ids = {t["task"] for t in data["tasks"]}
    assert set(data["totals"]["task_ids"]) == ids and len(ids) == len(scenario.tasks)
    assert sorted(i for r in data["by_unit"] for i in r["task_ids"]) == sorted(ids)
    # hazards: open at the end of the quarter by level (S2's playground was closed only on 2 January),
    # and found / closed in it (the wall closed in August is no business of Q4)
    assert {k: units[k]["open_major"] for k in units} == {"B": 0, "OFF": 0, "S1": 1, "S2": 0, "K1": 0}
    assert (units["S1"]["open_overdue"], units["K1"]["open_general"], units["K1"]["open_overdue"]) == (1, 1, 0)
    assert (units["S2"]["open_general"], units["S2"]["found_in_period"], units["S2"]["closed_in_period"]) == (1, 2, 1)
    assert (leaders["dep-b"]["open_major"], leaders["dep-b"]["found_in_period"], leaders["dep-a"]["open_general"]) == (1, 3, 1)
    assert (data["totals"]["open_general"], data["totals"]["open_major"], data["totals"]["open_overdue"]) == (2, 1, 1)
    assert sorted(h["hazard"] for h in data["hazards"]) == [1, 2, 3, 4]


def test_a_report_judges_the_quarter_as_it_stood_at_its_as_of(q4):
    rt, scenario = q4
    report = report_for(rt, "2026-Q4", at("2026-11-05", "12:00"))
    outcome = {(t.duty_key, t.unit_code, t.period_key): t.outcome for t in report.tasks if not t.person}
    assert outcome[("school-meeting", "S1", "2026-10")] == "on_time"
    assert outcome[("school-meeting", "S2", "2026-10")] == "pending"  # handed in at 09:30, accepted next day
    assert outcome[("office-report", "OFF", "2026-10")] == "missing"
    assert outcome[("school-meeting", "S1", "2026-11")] == "not_due"
    # December's three monthly tasks are planned on 1 December: not known yet, not counted
    assert report.totals.total == 12 - 3 and report.totals["not_due"] == 9 - 3 and report.totals.due == 3
    s2 = next(t for t in report.tasks if (t.duty_key, t.unit_code, t.period_key) == ("school-meeting", "S2", "2026-10"))
    assert s2.levels == (1,)  # fired on 4 Nov, before this moment
    assert report_for(rt, "2026-Q3", AS_OF).totals.total == 6  # September's tasks and the Q3 quarterlies


# =========================================================================== workbook and charts

def test_the_workbook_has_a_sheet_per_view_frozen_headers_and_totals(q4, tmp_path):
    from pingan.reports.xlsx import write_report

    rt, scenario = q4
    report = report_for(rt, "2026-Q4", AS_OF)
    files = write_report(report, tmp_path / "out" / "report.xlsx", chart_dir=tmp_path / "charts")
    wb = load_workbook(files["xlsx"])
    assert wb.sheetnames == ["说明", "按单位", "按责任领导", "按职责", "按时完成率矩阵", "隐患", "任务明细", "图表"]
    unit, leader, duty, tasks = wb["按单位"], wb["按责任领导"], wb["按职责"], wb["任务明细"]
    assert (unit.freeze_panes, leader.freeze_panes, duty.freeze_panes, tasks.freeze_panes) == ("C2", "C2", "C2", "B2")
    headers = [c.value for c in unit[1]]
    assert headers[:8] == ["单位编码", "单位", "类型", "包保/分管领导", "任务数", "应完成", "按时完成", "逾期完成"]
    assert {"待审核", "未完成", "已豁免", "按时完成率", "督办至第1级", "督办至第3级", "未销号重大隐患"} <= set(headers)
    assert [c.value for c in leader[1]][:3] == ["人员编码", "责任领导", "负责范围"]
    assert [c.value for c in duty[1]][:4] == ["职责编号", "职责", "依据文件", "条款"]
    col = {h: i for i, h in enumerate(headers)}
    body = [[c.value for c in r] for r in unit.iter_rows(min_row=2, max_row=unit.max_row - 1)]
    total = [c.value for c in unit[unit.max_row]]
    assert total[0] == "合计" and len(body) == 5
    for name in ("任务数", "按时完成", "逾期完成", "待审核", "未完成", "已豁免", "督办至第1级", "督办至第2级", "督办至第3级"):
        assert total[col[name]] == sum(r[col[name]] for r in body), name
    assert total[col["任务数"]] == 12 and total[col["按时完成"]] == 2
    assert math.isclose(total[col["按时完成率"]], 2 / 11) and unit.cell(2, col["按时完成率"] + 1).number_format == "0.0%"
    assert [c.value for c in leader[leader.max_row]][0] == "合计（任务不重复计）"
    by_leader = {r[0].value: [c.value for c in r] for r in leader.iter_rows(min_row=2, max_row=leader.max_row - 1)}
    assert by_leader["dep-b"][2] == "包保：一小、二中；分管：办公室；本人职责"
    # the task sheet lists every task behind the figures; filtering it reproduces a figure
    theads = [c.value for c in tasks[1]]
    trows = [dict(zip(theads, (c.value for c in r))) for r in tasks.iter_rows(min_row=2)]
    assert len(trows) == 12 and tasks.auto_filter.ref == f"A1:{tasks.cell(1, len(theads)).column_letter}13"
    assert {r["任务编号"] for r in trows} == {t.id for t in report.tasks}
    s1 = next(r for r in body if r[0] == "S1")
    assert s1[col["按时完成"]] == sum(1 for r in trows if r["单位编码"] == "S1" and r["结果"] == "按时完成") == 1
    assert s1[col["未完成"]] == sum(1 for r in trows if r["单位编码"] == "S1" and r["结果"] == "未完成") == 2
    waived = next(r for r in trows if r["结果"] == "已豁免")
    assert waived["单位编码"] == "K1" and "校舍改造停课" in waived["豁免"] and waived["截止时间"].tzinfo is None
    late = next(r for r in trows if r["结果"] == "逾期完成")
    assert (late["单位编码"], late["督办级别"], late["提交时间"]) == ("S2", "1", dt.datetime(2026, 11, 5, 9, 30))
    hz = wb["隐患"]
    assert [c.value for c in hz[hz.max_row]][0] == "合计" and hz.max_row == 2 + 4  # four hazards of the quarter
    about = "\n".join(str(r[0].value) for r in wb["说明"].iter_rows() if r[0].value)
    assert "一票否决" in about and "失职追责" in about and "2026-Q4" in about
    assert len(wb["图表"]._images) == 2


def test_the_charts_are_png_files(q4, tmp_path):
    from PIL import Image

    from pingan.reports import charts

    rt, _ = q4
    report = report_for(rt, "2026-Q4", AS_OF)
    files = charts.draw(report, tmp_path / "charts")
    assert set(files) == {"heatmap", "escalations"}
    for path in files.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 150
    assert charts.cjk_font() is not None  # fonts-noto-cjk on this machine
    # an empty period still draws (a "no data" chart)
    empty = charts.draw(report_for(rt, "2025-Q1", AS_OF), tmp_path / "empty")
    assert all(p.stat().st_size > 0 for p in empty.values())


def test_without_a_cjk_font_the_charts_warn_and_fall_back_to_codes(q4, tmp_path, monkeypatch):
    from pingan.reports import charts

    rt, _ = q4
    report = report_for(rt, "2026-Q4", AS_OF)
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    with pytest.warns(charts.NoCJKFontWarning):
        path = charts.heatmap(report, tmp_path / "h.png")
    assert path.stat().st_size > 0


def test_english_locale_names_sheets_and_columns_in_english(q4, tmp_path, monkeypatch):
    from pingan.reports.xlsx import write_workbook

    rt, _ = q4
    report = report_for(rt, "2026-Q4", AS_OF)
    monkeypatch.setenv("PINGAN_LOCALE", "en")
    reset_settings()
    wb = load_workbook(write_workbook(report, tmp_path / "en.xlsx"))
    assert wb.sheetnames == ["About", "By unit", "By leader", "By duty", "On-time matrix", "Hazards", "Tasks"]
    assert [c.value for c in wb["By unit"][1]][:5] == ["Unit code", "Unit", "Kind", "Responsible leader", "Tasks"]
    assert wb["By unit"].cell(wb["By unit"].max_row, 1).value == "Total"
    from pingan.reports.text import summary_markdown

    md = summary_markdown(report)
    assert md.startswith("# Safety compliance report · 2026-Q4") and "one-vote veto" in md and "Total" not in md[:10]


def test_the_summary_markdown_cites_the_basis_and_inlines_the_charts(q4, tmp_path):
    from pingan.reports.text import artifact_table, missing_table, summary_markdown
    from pingan.reports.xlsx import write_report

    rt, _ = q4
    report = report_for(rt, "2026-Q4", AS_OF)
    files = write_report(report, tmp_path / "r.xlsx", chart_dir=tmp_path)
    md = summary_markdown(report, files)
    assert md.startswith("# 安全工作履职考核报告 · 2026-Q4") and "一票否决" in md and "失职追责" in md
    assert md.count("](data:image/png;base64,") == 2 and str(files["xlsx"]) in md
    table = artifact_table(report, "leader")
    assert table[-1]["人员编码"] == "合计（任务不重复计）" and table[-1]["按时完成率"] == "18.2%"
    assert {r["结果"] for r in missing_table(report)} == {"未完成", "逾期完成"}


# =========================================================================== the command

def test_the_command_writes_the_workbook_and_charts(q4, tmp_path):
    rt, _ = q4
    runner = CliRunner()
    from pingan.cli import app

    out = runner.invoke(app, ["report", "--period", "2026-Q4", "--out", str(tmp_path / "report.xlsx"),
                              "--charts", str(tmp_path / "png"), "--as-of", "2027-01-04"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "report.xlsx").stat().st_size > 0 and "副局长乙" in out.output
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["escalations-2026-Q4.png", "heatmap-2026-Q4.png"]
    out = runner.invoke(app, ["report", "--period", "2026-Q4", "--json", "--as-of", "2027-01-04"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["totals"]["tasks"] == 12 and data["files"]["xlsx"].endswith("reports/2026-Q4/compliance-2026-Q4.xlsx")
    for args, named in ((["--period", "2026-Q9"], "--period"), (["--out", str(tmp_path / "r.csv")], "--out")):
        out = runner.invoke(app, ["report", *args])
        lines = [x for x in out.output.splitlines() if x.strip()]
        assert out.exit_code == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in out.output


def test_names_that_look_like_formulas_stay_text_in_the_report(q4, tmp_path):
    """Unit and leader names starting with = + - @ are text in every sheet: never a live formula."""
    import zipfile

    import openpyxl

    rt, _ = q4
    names = {"unit": '=HYPERLINK("http://x","一小")', "leader": "=1+1", "kindergarten": "+SUM(A1:A9)",
             "principal": "@cmd|' /C calc'!A0"}
    with session_scope() as session:
        session.execute(sa.text("update unit set name = :n where code = 'S1'"), {"n": names["unit"]})
        session.execute(sa.text("update unit set name = :n where code = 'K1'"), {"n": names["kindergarten"]})
        session.execute(sa.text("update person set name = :n where code = 'dep-b'"), {"n": names["leader"]})
        session.execute(sa.text("update person set name = :n where code = 's1-head'"), {"n": names["principal"]})
    from pingan.cli import app

    out = CliRunner().invoke(app, ["report", "--period", "2026-Q4", "--out", str(tmp_path / "report.xlsx"),
                                   "--as-of", "2027-01-04"])
    assert out.exit_code == 0, out.output
    with zipfile.ZipFile(tmp_path / "report.xlsx") as z:
        for part in (n for n in z.namelist() if n.startswith("xl/worksheets/")):
            assert b"<f>" not in z.read(part) and b"<f " not in z.read(part), part
    found = []
    for ws in openpyxl.load_workbook(tmp_path / "report.xlsx").worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value in names.values():
                    assert cell.data_type == "s" and cell.quotePrefix, (ws.title, cell.coordinate)
                    found.append((ws.title, cell.value))
    # each name is there as text: the units in the unit view, the matrix and the task list, the leader in his view
    sheets_of = {v: {title for title, value in found if value == v} for v in names.values()}
    assert len(sheets_of[names["unit"]]) >= 3 and len(sheets_of[names["kindergarten"]]) >= 3
    assert sheets_of[names["leader"]]


# =========================================================================== digests

def messages_by_person(session, since_id: int) -> Counter:
    M = Message.__table__
    return Counter(session.scalars(sa.select(M.c.person_id).where(M.c.id > since_id)).all())


def last_message(session) -> int:
    return session.scalar(sa.select(sa.func.coalesce(sa.func.max(Message.id), 0)))


def test_the_weekly_digest_is_one_message_per_leader_per_week(replayed):
    rt, scenario = replayed
    ids = scenario.ids
    monday = at("2026-11-09", "08:00")
    with session_scope() as session:
        before = last_message(session)
    first = digests.weekly(rt, monday)
    dispatch(rt, monday)
    assert (first.key, first.queued, first.recipients) == ("2026-W46", 2, ["dep-a", "dep-b"])
    with session_scope() as session:
        sent = messages_by_person(session, before)
        body = session.scalars(sa.select(Message.body).where(Message.person_id == ids["dep-b"], Message.id > before)).one()
        keys = session.scalars(sa.select(Notice.dedupe_key).where(Notice.step == "digest-weekly")).all()
    assert sent == Counter({ids["dep-a"]: 1, ids["dep-b"]: 1})
    assert sorted(keys) == ["digest:weekly:dep-a:2026-W46", "digest:weekly:dep-b:2026-W46"]
    # last week (2–8 Nov) three October tasks fell due: S1 on time, S2 late, the office's missing
    assert "每周安全工作简报" in body and "一小、二中、办公室及本人职责" in body
    assert "到期 3 项：按时完成 1，逾期完成 1，未完成 1" in body and "失职追责" in body
    # again the same week (a retry, a second run): nothing more
    with session_scope() as session:
        before = last_message(session)
    again = digests.weekly(rt, at("2026-11-11", "08:00"))
    dispatch(rt, at("2026-11-11", "08:00"))
    with session_scope() as session:
        assert again.queued == 0 and messages_by_person(session, before) == Counter()
    nxt = digests.weekly(rt, at("2026-11-16", "08:00"))
    assert (nxt.key, nxt.queued) == ("2026-W47", 2)


def test_the_daily_summary_goes_to_the_safety_section_on_working_days_only(q4):
    rt, scenario = q4
    ids = scenario.ids
    evening = at("2026-11-10", "18:00")
    with session_scope() as session:
        before = last_message(session)
    result = digests.daily(rt, evening)
    dispatch(rt, evening)
    assert (result.queued, result.recipients) == (1, ["safe-head"])
    assert digests.daily(rt, evening).queued == 0
    with session_scope() as session:
        assert messages_by_person(session, before) == Counter({ids["safe-head"]: 1})
        body = session.scalars(sa.select(Message.body).where(Message.id > before)).one()
    assert "每日安全工作小结" in body and "2026-11-10" in body and "重大 1" in body
    assert digests.daily(rt, at("2026-11-14", "18:00")).skipped == "not a working day"  # a Saturday
    assert digests.daily(rt, at("2026-10-05", "18:00")).skipped == "not a working day"  # National Day
    assert digests.daily(rt, at("2026-10-10", "18:00")).queued == 1  # a make-up working Saturday


# =========================================================================== deployments and flows

def test_the_deployments_are_scheduled_in_shanghai_and_tagged():
    from deployments.reports import ANNUAL_REPORT, QUARTERLY_REPORT, specs

    found = {s.name: s for s in specs()}
    assert set(found) == {QUARTERLY_REPORT, ANNUAL_REPORT, "每周安全工作简报", "每日安全工作小结"}
    crons = {name: [(x.cron, x.timezone, x.slug) for x in s.schedules] for name, s in found.items()}
    assert crons[QUARTERLY_REPORT] == [("0 7 3 1,4,7,10 *", "Asia/Shanghai", "after-each-quarter")]
    assert crons["每周安全工作简报"] == [("0 8 * * 1", "Asia/Shanghai", "monday-morning")]
    assert crons["每日安全工作小结"][0][0] == "0 18 * * *"
    assert found[ANNUAL_REPORT].parameters == {"period": "previous-year"}
    for spec in found.values():
        assert {"pingan", "报告"} <= set(spec.tags) and spec.description
        assert spec.flow_name in {"compliance-report", "weekly-digest", "daily-summary"}
    assert "一（八）" in found[QUARTERLY_REPORT].description


def test_the_flows_publish_artifacts_and_files(q4, monkeypatch, prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.compliance_report import compliance_report
    from flows.digests import daily_summary, weekly_digest
    from flows.dispatch import outbox_dispatch

    rt, _ = q4
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(rt.settings.catalog_dir))
    reset_settings(), reset_runtime()
    report = compliance_report(as_of=at("2027-01-03", "07:00"))
    weekly = weekly_digest(as_of=at("2026-11-09", "08:00"))
    sent = outbox_dispatch(as_of=at("2026-11-09", "08:00"))  # the digests go out at once, by the dispatcher
    again = weekly_digest(as_of=at("2026-11-09", "08:00"))
    daily = daily_summary(as_of=at("2026-11-14", "18:00"))
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts()}
    assert report["period"] == "2026-Q4" and report["totals"]["tasks"] == 12
    home = Path(rt.settings.home)
    assert {Path(p) for p in report["files"].values()} == {
        home / "reports" / "2026-Q4" / n for n in ("compliance-2026-Q4.xlsx", "heatmap-2026-Q4.png", "escalations-2026-Q4.png",
                                              "compliance-2026-Q4.json")}
    assert {"compliance-summary", "compliance-by-unit", "compliance-by-leader", "compliance-by-duty",
            "compliance-missing-tasks"} <= set(artifacts)
    assert "data:image/png;base64," in artifacts["compliance-summary"].data
    assert (weekly["queued"], sent["sent"], again["queued"]) == (2, 2, 0)
    assert daily["skipped"] == "not a working day"
