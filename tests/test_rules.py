"""The pure decisions of a duty cycle: subjects, state, reminder steps and escalation events."""

from __future__ import annotations

import datetime as dt

import pytest

from models import RoleKind, UnitKind
from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import (
    Carrier, DutySpec, EscalationLevel, EscalationPolicy, ReminderStep, Repeat, Source,
)
from pingan.core.periods import Terms
from pingan.core.clock import TZ
from pingan.org.snapshot import Org, PersonInfo, UnitInfo
from pingan.duties.rules import (
    PlanContext, TaskView, escalation_schedule, escalations_due, is_working_time, plan, reminder_due, state,
)

R = RoleKind


def at(day: str, hm: str = "10:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=TZ)


def small_org() -> Org:
    """A bureau with a principal (1), a safety deputy (2), a leader (3); the safety section (head 4);
    the office (head 5, 分管 by leader 3); two schools (principals 6, 8; safety officers 7, 9), both
    包保 by leader 3; a kindergarten (principal 10, 包保 by the safety deputy 2)."""
    u = lambda i, code, kind, parent=None, function=None, bus=False: UnitInfo(i, code, code, kind, parent, function, bus)
    units = {
        1: u(1, "bureau", UnitKind.bureau),
        2: u(2, "safety", UnitKind.department, 1, "safety"),
        3: u(3, "office", UnitKind.department, 1, "office"),
        4: u(4, "school-a", UnitKind.primary, 1, bus=True),
        5: u(5, "school-b", UnitKind.junior, 1),
        6: u(6, "kg", UnitKind.kindergarten, 1),
    }
    persons = {i: PersonInfo(i, f"p{i}", f"P{i}", unit) for i, unit in
               [(1, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 4), (7, 4), (8, 5), (9, 5), (10, 6)]}
    roles = [
        (1, 1, R.principal), (2, 1, R.safety_lead), (2, 1, R.leader), (3, 1, R.leader),
        (4, 2, R.principal), (5, 3, R.principal), (3, 3, R.in_charge),
        (6, 4, R.principal), (7, 4, R.safety_officer), (3, 4, R.patron),
        (8, 5, R.principal), (9, 5, R.safety_officer), (3, 5, R.patron),
        (10, 6, R.principal), (2, 6, R.patron),
    ]
    return Org(units=units, persons=persons, roles=roles)


POLICY = EscalationPolicy(
    key="standard", grace=dt.timedelta(days=1),
    levels=(
        EscalationLevel(level=1, after=dt.timedelta(0), to=("unit_principal",)),
        EscalationLevel(level=2, after=dt.timedelta(days=3), to=("unit_leader",)),
        EscalationLevel(level=3, after=dt.timedelta(days=7), to=("bureau_principal", "safety_section")),
    ),
    repeat=Repeat(every=dt.timedelta(days=7), max_every=dt.timedelta(days=28)),
)
STEPS = tuple(ReminderStep.model_validate(s) for s in ({"at": "open"}, {"before_due": "7d"}, {"before_due": "1d"}, {"at": "due"}))


def duty(**over) -> DutySpec:
    spec = dict(
        key="school-monthly-meeting", name="安全形势分析会", name_en="Safety meeting",
        source=Source(document="doc.txt", clause="七（四）"), text="每月至少召开 1 次",
        carrier=Carrier(unit_kinds=(UnitKind.primary, UnitKind.junior), roles=(R.principal, R.safety_officer)),
        cadence={"every": "monthly"}, evidence=("meeting_minutes",), reminders=STEPS, escalation=POLICY,
    )
    spec.update(over)
    return DutySpec.model_validate(spec)


CTX = PlanContext(calendar=WorkCalendar(), terms=Terms(), key_dates={})


def task(**over) -> TaskView:
    base = dict(id=1, duty_key="d", unit_id=4, person_id=None, period_key="2026-11",
                opens_at=at("2026-11-01", "00:00"), due_at=at("2026-11-30", "17:30"),
                escalate_at=at("2026-12-01", "17:30"), review="none")
    base.update(over)
    return TaskView(**base)


# --------------------------------------------------------------------------- subjects and plans

def test_it_gives_one_task_per_matching_unit():
    org = small_org()
    assert org.subjects(duty().carrier) == [(4, None), (5, None)]
    with_bus = Carrier(unit_kinds=(UnitKind.primary, UnitKind.junior), require={"has_school_bus": True})
    assert org.subjects(with_bus) == [(4, None)]


def test_it_gives_one_task_per_leader_for_personal_duties():
    carrier = Carrier(scope="person", unit_kinds=(UnitKind.bureau,), roles=(R.leader,))
    assert small_org().subjects(carrier) == [(1, 2), (1, 3)]


def test_it_reminds_role_holders_and_falls_back_to_the_principal():
    org = small_org()
    assert org.assignees(duty().carrier, 4, None) == [6, 7]
    officer_only = Carrier(unit_kinds=(UnitKind.kindergarten,), roles=(R.safety_officer,))
    assert org.assignees(officer_only, 6, None) == [10]


def test_it_plans_the_current_period_and_catches_up_one_still_in_grace():
    org = small_org()
    # 1 Dec 10:00: November's task is past due (30 Nov 17:30) but inside its one-day grace.
    slots = plan(duty(), org, at("2026-12-01", "10:00"), CTX)
    assert sorted({s.period.key for s in slots}) == ["2026-11", "2026-12"]
    assert len(slots) == 4
    # 2 Dec: November is past grace, so pingan never creates it late (escalation would start at once).
    assert {s.period.key for s in plan(duty(), org, at("2026-12-02", "10:00"), CTX)} == {"2026-12"}


def test_it_moves_due_dates_off_holidays_when_planning():
    slots = plan(duty(cadence={"every": "daily"}), small_org(), at("2026-10-03"), CTX)
    assert {s.due_at for s in slots} == {at("2026-10-08", "17:30")}


# --------------------------------------------------------------------------- state

@pytest.mark.parametrize(
    "over, as_of, escalated, expected",
    [
        ({}, at("2026-10-31"), False, "upcoming"),
        ({}, at("2026-11-15"), False, "open"),
        ({}, at("2026-11-30", "17:30"), False, "open"),
        ({}, at("2026-11-30", "17:31"), False, "overdue"),
        ({}, at("2026-12-05"), True, "escalated"),
        ({"review": "submitted"}, at("2026-12-05"), False, "submitted"),
        ({"review": "accepted"}, at("2026-12-05"), True, "accepted"),
        ({"review": "rejected"}, at("2026-12-05"), True, "escalated"),
        ({"waived_until": at("2026-12-31")}, at("2026-12-05"), True, "waived"),
        ({"waived_until": at("2026-12-04")}, at("2026-12-05"), True, "escalated"),
    ],
)
def test_it_derives_the_state_in_one_place(over, as_of, escalated, expected):
    assert state(task(**over), as_of, escalated) == expected


# --------------------------------------------------------------------------- reminders

@pytest.mark.parametrize(
    "as_of, step",
    [
        (at("2026-10-31"), None),
        (at("2026-11-01", "09:00"), "open"),
        (at("2026-11-22"), "open"),
        (at("2026-11-23", "17:30"), "due-7d"),
        (at("2026-11-29", "17:30"), "due-1d"),
        (at("2026-11-30", "17:30"), "due"),
        (at("2026-12-01", "17:00"), "due"),
        (at("2026-12-01", "17:30"), None),  # escalation has begun
    ],
)
def test_it_picks_the_latest_reminder_step_due(as_of, step):
    found = reminder_due(STEPS, task(), as_of)
    assert (found.key if found else None) == step


def test_it_sends_no_reminder_for_submitted_accepted_or_waived_tasks():
    as_of = at("2026-11-29", "18:00")
    assert reminder_due(STEPS, task(review="submitted"), as_of) is None
    assert reminder_due(STEPS, task(review="accepted"), as_of) is None
    assert reminder_due(STEPS, task(waived_until=at("2026-12-01")), as_of) is None
    assert reminder_due(STEPS, task(review="rejected"), as_of).key == "due-1d"
    assert reminder_due(STEPS, task(waived_until=at("2026-11-29")), as_of).key == "due-1d"  # expired


def test_it_only_sends_in_working_time():
    cal = WorkCalendar()
    start, end = dt.time(8, 30), dt.time(17, 30)
    assert is_working_time(at("2026-11-23", "08:30"), cal, start, end)
    assert not is_working_time(at("2026-11-23", "17:30"), cal, start, end)
    assert not is_working_time(at("2026-11-22", "10:00"), cal, start, end)  # Sunday
    assert not is_working_time(at("2026-10-05", "10:00"), cal, start, end)  # National Day
    assert is_working_time(at("2026-10-10", "10:00"), cal, start, end)  # make-up Saturday


# --------------------------------------------------------------------------- escalation

def test_it_schedules_levels_then_repeats_at_a_capped_interval():
    start = at("2026-12-01", "17:30")
    events = []
    for event in escalation_schedule(POLICY, start):
        events.append((event.level, event.seq, (event.at - start).days))
        if len(events) == 8:
            break
    # repeats after level 3 (day 7): +7, +14, +28, then capped at 28
    assert events == [(1, 0, 0), (2, 0, 3), (3, 0, 7), (3, 1, 14), (3, 2, 28), (3, 3, 56), (3, 4, 84), (3, 5, 112)]


def test_it_escalates_level_by_level():
    t = task()
    assert escalations_due(POLICY, t, at("2026-12-01", "17:29"), set()) == []
    assert [e.level for e in escalations_due(POLICY, t, at("2026-12-01", "17:30"), set())] == [1]
    assert escalations_due(POLICY, t, at("2026-12-02"), {(1, 0)}) == []
    assert [e.level for e in escalations_due(POLICY, t, at("2026-12-04", "17:30"), {(1, 0)})] == [2]


def test_it_never_skips_a_level_after_downtime_but_collapses_missed_repeats():
    due = escalations_due(POLICY, task(), at("2027-01-10"), set())
    # day 40 after escalation start: levels 1-3 and only the latest repeat (seq 2, day 28)
    assert [(e.level, e.seq) for e in due] == [(1, 0), (2, 0), (3, 0), (3, 2)]
    assert escalations_due(POLICY, task(), at("2027-01-10"), {(1, 0), (2, 0), (3, 0), (3, 2)}) == []


def test_it_stops_escalating_closed_or_waived_tasks_and_resumes_after_the_waiver():
    as_of = at("2026-12-10")
    assert escalations_due(POLICY, task(review="accepted"), as_of, set()) == []
    assert escalations_due(POLICY, task(review="submitted"), as_of, set()) == []
    assert escalations_due(POLICY, task(waived_until=at("2026-12-20")), as_of, set()) == []
    resumed = escalations_due(POLICY, task(waived_until=at("2026-12-09")), as_of, set())
    assert [e.level for e in resumed] == [1, 2, 3]
    assert [e.level for e in escalations_due(POLICY, task(review="rejected"), as_of, set())] == [1, 2, 3]


def test_it_climbs_a_schools_chain_to_its_patron_then_the_bureau():
    org = small_org()
    assert org.escalation_targets(("unit_principal",), 4) == [6]
    assert org.escalation_targets(("unit_leader",), 4) == [3]  # 包保
    assert org.escalation_targets(("bureau_principal", "safety_section"), 4) == [1, 4]
    assert org.escalation_targets(("unit_leader",), 6) == [2]  # the kindergarten's 包保 is the safety deputy


def test_it_climbs_a_departments_chain_to_the_leader_in_charge():
    org = small_org()
    assert org.escalation_targets(("unit_principal",), 3) == [5]
    assert org.escalation_targets(("unit_leader",), 3) == [3]  # 分管
    assert org.escalation_targets(("safety_lead",), 3) == [2]


# --------------------------------------------------------------------------- the chain of escalation

def _rank(org: Org) -> dict[int, int]:
    """How high each person stands in the chain the Dehui list draws (0 highest): the bureau
    principal (二), the deputies and other members of the leadership team (三, 四), the heads of the
    bureau's sections (五, 六), the school principals (七), the schools' other staff."""
    rank: dict[int, int] = {}
    for pid, uid, role in org.roles:
        kind = org.units[uid].kind
        if kind == UnitKind.bureau:
            r = 0 if role == R.principal else 1
        elif kind == UnitKind.department:
            r = 1 if role == R.in_charge else 2
        else:
            r = 1 if role == R.patron else (3 if role == R.principal else 4)
        rank[pid] = min(rank.get(pid, 9), r)
    return rank


def test_no_escalation_chain_reaches_the_owner_or_a_subordinate():
    # Issue 14 finding 5: `leadership` went to the safety deputy first, so the bureau head's own
    # missed duty went down to his deputy and then back to himself. Checked on whom each level
    # reaches, as the escalation engine computes it (Org.escalation_recipients).
    from pingan.core.settings import REPO_ROOT
    from pingan.duties.catalog import load_catalog

    org = small_org()
    org = Org(units=org.units, persons=org.persons, roles=[*org.roles, (2, 2, R.in_charge)])  # 安全科 分管: safety deputy
    rank = _rank(org)
    checked = 0
    for spec in load_catalog(REPO_ROOT / "catalog").duties.values():
        for unit_id, person_id in org.subjects(spec.carrier):
            owners = org.assignees(spec.carrier, unit_id, person_id)
            top = min(rank[p] for p in owners)
            for level in spec.escalation.levels:
                for p in org.escalation_recipients(level.to, unit_id, owners):
                    checked += 1
                    assert p not in owners, f"{spec.key} level {level.level} reaches its owner P{p}"
                    assert rank[p] <= top, f"{spec.key} level {level.level} goes down to P{p}"
    assert checked > 100


def test_the_head_supervises_the_leaders_at_once_and_the_heads_own_duties_reach_nobody():
    from pingan.core.settings import REPO_ROOT
    from pingan.duties.catalog import load_catalog

    catalog, org = load_catalog(REPO_ROOT / "catalog"), small_org()
    leaders = catalog.duty("leader-quarterly-safety-meeting").escalation  # 四（四）, supervised per 二（四）
    assert leaders.levels[0].after == dt.timedelta(0) and org.escalation_targets(leaders.levels[0].to, 1) == [1]
    own = catalog.duty("bureau-quarterly-safety-meeting").escalation
    assert all(org.escalation_targets(level.to, 1) == [] for level in own.levels)
    deputy = catalog.duty("safety-lead-target-assessment")  # 三（八）: the deputy's, up to the head
    assert deputy.carrier.roles == ("safety_lead",)
    assert [org.escalation_targets(level.to, 1) for level in deputy.escalation.levels] == [[1]]
