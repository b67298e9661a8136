"""The incident-report clock: phone report in 30 minutes, written report in 2 hours (Dehui list 七（十）).

Pure rules first (deadlines per jurisdiction, follow-up times, report states, the timeline),
then the clock against the database with each deadline met and missed — exact escalations,
notices and messages, nothing sent twice however often it runs — registration, scheduling of
follow-up runs, and the CLI.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from collections import Counter
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
import yaml
from factories import at, rows
from typer.testing import CliRunner

from models import Escalation, Notice, Occurrence, Person, UnitKind
from pingan.cli import app
from pingan.core.db import get_engine, session_scope
from pingan.core.settings import REPO_ROOT, Settings
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import CatalogError, load_catalog
from pingan.duties.runtime import build_runtime
from pingan.duties.service import ensure_catalog
from pingan.incidents import rules as incident_rules
from pingan.incidents import service as incidents
from pingan.incidents import views as incident_views
from pingan.incidents.workflow import CLOCK, follow_up
from pingan.org.snapshot import Org, PersonInfo, UnitInfo, load_org

CATALOG = REPO_ROOT / "catalog"
DUTY = "school-incident-report"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG)


@pytest.fixture(scope="module")
def rules(catalog):
    return incident_rules.read_rules(CATALOG / "flows" / "incident.yaml", catalog.duties)


def small_org() -> Org:
    units = {
        1: UnitInfo(1, "CITY", "市局", UnitKind.bureau, None, None),
        2: UnitInfo(2, "DIST", "区局", UnitKind.bureau, 1, None),
        3: UnitInfo(3, "S1", "一小", UnitKind.primary, 2, None),
        4: UnitInfo(4, "S2", "二中", UnitKind.junior, 2, None),
        5: UnitInfo(5, "S3", "三小", UnitKind.primary, 1, None),
    }
    return Org(units=units, persons={1: PersonInfo(1, "p", "某人", 1)}, roles=[])


# --------------------------------------------------------------------------- pure

def test_the_shipped_rules_are_the_documents_30_minutes_and_2_hours(catalog, rules):
    duty = catalog.duty(rules.duty)
    assert (duty.key, duty.source.document, duty.source.clause) == (DUTY, "000_835012ae156b196b.txt", "七（十）")
    assert "30 分钟内电话口头报告，2 小时内简要书面报告" in duty.text
    assert (rules.phone, rules.written) == (dt.timedelta(minutes=30), dt.timedelta(hours=2))
    assert duty.escalation.key == "immediate" and duty.escalation.grace == dt.timedelta(0)
    assert rules.categories["drowning"].name == "溺水" and rules.severities["major"].name == "重大"


def test_deadlines_come_from_the_nearest_jurisdiction(rules):
    local = rules.model_copy(update={"jurisdictions": {
        "DIST": incident_rules.Jurisdiction(phone=dt.timedelta(hours=4), written=dt.timedelta(hours=8)),
        "S2": incident_rules.Jurisdiction(written=dt.timedelta(hours=4), duty="erdao-urgent-information-report"),
    }})
    org = small_org()
    assert incident_rules.deadlines_for(local, org, 3) == incident_rules.Deadlines(DUTY, "DIST", dt.timedelta(hours=4), dt.timedelta(hours=8))
    # the school's own rule wins over its district's, and fills in from the default, not the district
    assert incident_rules.deadlines_for(local, org, 4) == incident_rules.Deadlines(
        "erdao-urgent-information-report", "S2", dt.timedelta(minutes=30), dt.timedelta(hours=4))
    assert incident_rules.deadlines_for(local, org, 5) == incident_rules.Deadlines(DUTY, "", dt.timedelta(minutes=30), dt.timedelta(hours=2))


def test_follow_up_runs_fall_on_every_escalation_time(catalog):
    policy = catalog.duty(DUTY).escalation  # immediate: level 1 at the deadline, level 2 an hour later
    times = incident_rules.follow_up_times([at("2026-10-03", "10:30"), at("2026-10-03", "12:00")], policy)
    assert times == [at("2026-10-03", "10:30"), at("2026-10-03", "11:30"), at("2026-10-03", "12:00"), at("2026-10-03", "13:00")]


def test_report_states():
    due = at("2026-10-03", "10:30")
    state = incident_rules.report_state
    assert state(due, None, at("2026-10-03", "10:29")) == "pending"
    assert state(due, None, at("2026-10-03", "10:30")) == "missing"
    assert state(due, at("2026-10-03", "10:30"), at("2026-10-03", "11:00")) == "on_time"
    assert state(due, at("2026-10-03", "10:31"), at("2026-10-03", "11:00")) == "late"
    assert state(due, at("2026-10-03", "10:31"), at("2026-10-03", "10:30")) == "missing"  # not yet known then


def test_categories_and_severities_by_key_or_name(rules):
    assert incident_rules.choose("溺水", rules.categories, "--category") == "drowning"
    assert incident_rules.choose("Food poisoning", rules.categories, "--category") == "food"
    assert incident_rules.choose("较大", rules.severities, "--severity") == "larger"
    with pytest.raises(incident_rules.IncidentError, match="--severity：'很严重' 不是可选值（general（一般）"):
        incident_rules.choose("很严重", rules.severities, "--severity")


def test_a_bad_rules_file_names_the_file_and_field(tmp_path, catalog):
    good = yaml.safe_load((CATALOG / "flows" / "incident.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "incident.yaml"
    for change, message in [
        ({"phone": "half an hour"}, r"incident.yaml: field phone: .*not a duration"),
        ({"written": "0m"}, r"incident.yaml: field \(file\): .*written: a deadline must be longer than zero"),
        ({"duty": "school-monthly-drill"}, r"field duty: 'school-monthly-drill' is not a catalog duty with flow: incident"),
        ({"jurisdictions": {"X": {"phone": "1h", "fax": "2h"}}}, r"field jurisdictions.X.fax: Extra inputs"),
    ]:
        path.write_text(yaml.safe_dump({**good, **change}, allow_unicode=True), encoding="utf-8")
        with pytest.raises(CatalogError, match=message):
            incident_rules.read_rules(path, catalog.duties)


def view(phone_at=None, written_at=None, escalations=()) -> incident_views.IncidentView:
    return incident_views.IncidentView(
        id=7, unit_code="S1", unit="一小", occurred_at=at("2026-10-03", "10:00"), category="drowning", category_name="溺水",
        severity="larger", severity_name="较大", summary="学生溺水", duty_key=DUTY, jurisdiction="",
        registered_at=at("2026-10-03", "10:05"), registered_by="operator:值班员",
        phone=incident_views.ReportView("phone", 1, at("2026-10-03", "10:30"), phone_at, "operator:值班员" if phone_at else None,
                                   "accepted" if phone_at else "none"),
        written=incident_views.ReportView("written", 2, at("2026-10-03", "12:00"), written_at, None, "accepted" if written_at else "none"),
        escalations=tuple(escalations),
    )


def test_the_timeline_tells_what_came_when_and_what_is_missing():
    esc = incident_views.EscalationView("written", 1, 0, at("2026-10-03", "12:00"), at("2026-10-03", "12:00"), ("副局长乙", "安全科长"))
    entries = incident_views.timeline(view(phone_at=at("2026-10-03", "10:20"), escalations=[esc]), at("2026-10-03", "12:30"))
    assert [(e.at.strftime("%H:%M"), e.event) for e in entries] == [
        ("10:00", "occurred"), ("10:05", "registered"), ("10:20", "phone"), ("10:30", "phone_due"),
        ("12:00", "written_due"), ("12:00", "escalation"), ("12:30", "missing"),
    ]
    assert "按时" in entries[2].detail and "副局长乙、安全科长" in entries[5].detail
    assert entries[6].detail == "书面报告：超时 30 分钟"
    late = incident_views.timeline(view(phone_at=at("2026-10-03", "11:45")), at("2026-10-03", "11:50"))
    assert [e.detail for e in late if e.event == "phone"] == ["operator:值班员，迟报 1 小时 15 分钟 / late"]
    assert [e.event for e in late][-1] == "written_due"  # the coming deadline is shown, nothing missing yet


# --------------------------------------------------------------------------- database

@pytest.fixture
def rt(migrated_db):
    return build_runtime(Settings(catalog_dir=CATALOG, send_backoff=0), load_catalog(CATALOG))


OCCURRED = at("2026-10-03", "10:00")  # a Saturday of the National Day holiday: the clock keeps no office hours


@dataclass
class Reported:
    registered: incidents.Registered
    escalated: list[int]
    sent: int
    scheduled: list[dt.datetime]


def report_incident(rt, req, as_of, *, actor, schedule=None) -> Reported:
    """What the CLI does: register (own transaction), run the clock at once and send, and have
    ``schedule`` (given only when a Prefect API is configured) schedule the follow-up runs."""
    ensure_catalog(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        registered = incidents.register(session, rt, load_org(session), req, as_of, actor=actor)
    escalated = CLOCK.run(rt, as_of=as_of)["escalate"]["incidents"]
    sent = dispatch(rt, as_of).sent
    scheduled = follow_up(rt, registered.id, as_of, schedule) if schedule and registered.created else []
    return Reported(registered, escalated, sent, scheduled)


def record(rt, incident_id, report, when, as_of, *, actor):
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return incidents.record_report(session, incident_id, report, when, as_of, actor=actor)


def register(rt, unit="S1", occurred=OCCURRED, as_of=at("2026-10-03", "10:05"), **kw):
    req = incidents.IncidentRequest(unit, occurred, kw.pop("category", "溺水"), kw.pop("severity", "较大"), **kw)
    return report_incident(rt, req, as_of, actor="operator:值班员")


def tick(rt, hm):
    as_of = at("2026-10-03", hm)
    escalated = CLOCK.run(rt, as_of=as_of)["escalate"]["incidents"]
    dispatch(rt, as_of)
    return escalated


def fired(session) -> list[tuple]:
    """(report, level, fired, recipient codes) of every escalation, in order."""
    E, O, P = Escalation.__table__, Occurrence.__table__, Person.__table__
    codes = dict(session.execute(sa.select(P.c.id, P.c.code)).all())
    out = []
    for r in session.execute(sa.select(O.c.period_key, E.c.level, E.c.seq, E.c.fired_at, E.c.recipients)
                             .join(O, O.c.id == E.c.occurrence_id).order_by(E.c.fired_at, O.c.period_key, E.c.level)):
        report = "phone" if r.period_key.endswith("电话报告") else "written"
        out.append((report, r.level, r.seq, r.fired_at.strftime("%H:%M"), tuple(sorted(codes[p] for p in r.recipients))))
    return out


def notices(session) -> Counter:
    N, P = Notice.__table__, Person.__table__
    return Counter(
        (r.code, r.step, r.urgent)
        for r in session.execute(sa.select(P.c.code, N.c.step, N.c.urgent).join(P, P.c.id == N.c.person_id).where(N.c.kind == "escalation"))
    )


# The small organisation: 一小 (S1) is carried by its principal and safety officer, 包保 by 副局长乙
# (dep-b); the safety section is led by 安全科长 (safe-head); the bureau principal is 局长 (chief)
# and the deputy in charge of safety 副局长甲 (dep-a). Policy "immediate": level 1 at the deadline
# to the unit's principal (an assignee already, so nobody new), its 包保 leader and the safety
# section; level 2 an hour later to the bureau principal and the deputy in charge of safety.
L1, L2 = ("dep-b", "safe-head"), ("chief", "dep-a")


def test_both_deadlines_met_nothing_escalates(rt, ids, sent):
    reg = register(rt).registered
    assert (reg.created, reg.phone_due_at, reg.written_due_at) == (True, at("2026-10-03", "10:30"), at("2026-10-03", "12:00"))
    record(rt, reg.id, "phone", at("2026-10-03", "10:20"), at("2026-10-03", "10:21"), actor="operator:值班员")
    tick(rt, "10:30")
    record(rt, reg.id, "written", at("2026-10-03", "11:50"), at("2026-10-03", "11:55"), actor="operator:值班员")
    for hm in ("11:30", "12:00", "13:00", "23:00"):
        assert tick(rt, hm) == []
    with session_scope() as session:
        assert fired(session) == [] and notices(session) == Counter()
        view = incident_views.load_views(session, rt, [reg.id])[0]
        assert incidents.open_incident_ids(session) == []
    assert sent.calls == []
    assert (view.phone.state(at("2026-10-03", "13:00")), view.written.state(at("2026-10-03", "13:00"))) == ("on_time", "on_time")
    assert not view.is_open()


def test_a_missed_phone_report_escalates_at_once_and_stops_when_it_comes(rt, ids, sent):
    reg = register(rt).registered
    assert tick(rt, "10:29") == []
    assert tick(rt, "10:30") == [reg.id]
    with session_scope() as session:
        assert fired(session) == [("phone", 1, 0, "10:30", L1)]
        assert notices(session) == Counter({("dep-b", "L1", True): 1, ("safe-head", "L1", True): 1})
    assert sent.to() == Counter({"dep-b": 1, "safe-head": 1})
    body = sent.calls[0][2]
    assert "事故#1·电话报告" in body and "七（十）" in body and "截止 2026-10-03 10:30" in body and "一小校长" in body
    # the school phones at 10:50 (late); level 2 (11:30) never fires; the written report comes in time
    record(rt, reg.id, "phone", at("2026-10-03", "10:50"), at("2026-10-03", "10:52"), actor="operator:值班员")
    record(rt, reg.id, "written", at("2026-10-03", "11:40"), at("2026-10-03", "11:41"), actor="operator:值班员")
    for hm in ("10:30", "11:30", "12:00", "13:00", "10:30"):  # repeated and out-of-order runs change nothing
        assert tick(rt, hm) == []
    with session_scope() as session:
        assert fired(session) == [("phone", 1, 0, "10:30", L1)]
        view = incident_views.load_views(session, rt, [reg.id])[0]
    assert len(sent.calls) == 2
    assert (view.phone.state(at("2026-10-03", "13:00")), view.written.state(at("2026-10-03", "13:00"))) == ("late", "on_time")
    events = [(e.at.strftime("%H:%M"), e.event) for e in incident_views.timeline(view, at("2026-10-03", "13:00"))]
    assert events == [("10:00", "occurred"), ("10:05", "registered"), ("10:30", "phone_due"), ("10:30", "escalation"),
                      ("10:50", "phone"), ("11:40", "written"), ("12:00", "written_due")]


def test_both_reports_missed_climb_level_by_level_and_nothing_twice(rt, ids, sent):
    reg = register(rt).registered
    for hm in ("10:30", "10:30", "11:30", "11:45", "12:00", "13:00", "13:00", "18:00"):
        tick(rt, hm)
    with session_scope() as session:
        assert fired(session) == [
            ("phone", 1, 0, "10:30", L1), ("phone", 2, 0, "11:30", L2),
            ("written", 1, 0, "12:00", L1), ("written", 2, 0, "13:00", L2),
        ]
        # each level of each report reached each of its recipients once
        assert notices(session) == Counter({(p, step, True): 2 for step, people in (("L1", L1), ("L2", L2)) for p in people})
        assert incidents.open_incident_ids(session) == [reg.id]
        audit = rows(session, "select count(*) from audit where action = 'escalation.fired'")[0][0]
    assert audit == 4
    assert sent.to() == Counter({"dep-b": 2, "safe-head": 2, "chief": 2, "dep-a": 2})
    assert all("逾期督办" in title for _, title, _ in sent.calls)


def test_a_clock_that_did_not_run_catches_up_without_skipping_a_level(rt, ids, sent):
    register(rt)
    tick(rt, "13:30")  # the first evaluation after both deadlines and both levels
    with session_scope() as session:
        assert sorted((r, lvl, when) for r, lvl, _, when, _ in fired(session)) == [
            ("phone", 1, "13:30"), ("phone", 2, "13:30"), ("written", 1, "13:30"), ("written", 2, "13:30")]
    # one digest per person, each holding both reports
    assert sent.to() == Counter({"dep-b": 1, "safe-head": 1, "chief": 1, "dep-a": 1})
    assert all("2 项逾期督办" in title for _, title, _ in sent.calls)


def test_a_late_registration_escalates_at_once_and_schedules_the_rest(rt, ids, sent):
    from tasks.incident import schedule_follow_ups

    scheduled = []

    def runner(name, **kwargs):
        scheduled.append((name, kwargs["parameters"], kwargs["scheduled_time"], kwargs["timeout"], kwargs["idempotency_key"]))

    req = incidents.IncidentRequest("S1", OCCURRED, "traffic", "general", summary="上学途中交通事故")
    schedule = functools.partial(schedule_follow_ups, runner=runner)
    result = report_incident(rt, req, at("2026-10-03", "10:45"), actor="operator:值班员", schedule=schedule)
    incident_id = result.registered.id
    assert result.escalated == [incident_id] and result.sent == 2
    assert [(n, p, w, t) for n, p, w, t, _ in scheduled] == [
        ("incident-clock/事故报告时限", {"incident_id": incident_id}, at("2026-10-03", hm), 0) for hm in ("11:30", "12:00", "13:00")]
    assert len({key for *_, key in scheduled}) == 3
    again = report_incident(rt, req, at("2026-10-03", "10:50"), actor="operator:值班员", schedule=schedule)
    assert (again.registered.id, again.registered.created, again.scheduled, again.sent) == (incident_id, False, [], 0)
    assert len(scheduled) == 3
    with session_scope() as session:
        assert fired(session) == [("phone", 1, 0, "10:45", L1)]
        assert rows(session, "select count(*) from incident")[0][0] == 1
        assert rows(session, "select action from audit where object_type = 'incident' order by id") == [
            ("incident.registered",), ("incident.follow_ups_scheduled",)]


def test_scheduling_needs_a_prefect_api_and_survives_its_failure(monkeypatch):
    from tasks.incident import schedule_follow_ups

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert schedule_follow_ups(1, [at("2026-10-03", "11:00")], at("2026-10-03", "10:00")) == []

    def broken(name, **kwargs):
        raise ConnectionError("server down")

    assert schedule_follow_ups(1, [at("2026-10-03", "11:00")], at("2026-10-03", "10:00"), runner=broken) == []


def test_a_phone_report_at_registration_and_reports_recorded_once(rt, ids, sent):
    reg = register(rt, phoned_at=at("2026-10-03", "10:04")).registered
    again = record(rt, reg.id, "phone", at("2026-10-03", "10:40"), at("2026-10-03", "10:41"), actor="operator:x")
    assert again == (False, at("2026-10-03", "10:04"))
    tick(rt, "12:00")
    with session_scope() as session:
        assert fired(session) == [("written", 1, 0, "12:00", L1)]


def test_registration_errors_name_the_field_and_change_nothing(rt, ids, sent):
    cases = [
        (dict(unit="NOPE"), "--unit：没有单位 'NOPE'"),
        (dict(unit="SAFE"), "--unit：单位 SAFE（安全科）不承担「学校安全事故报告"),
        (dict(occurred=at("2026-10-03", "11:00")), "--at：发生时间 2026-10-03 11:00 晚于现在"),
        (dict(category="陨石"), "--category：'陨石' 不是可选值"),
        (dict(phoned_at=at("2026-10-03", "09:00")), "--phoned-at：报告时间 2026-10-03 09:00 早于事故发生时间"),
        (dict(summary="很长" * 1001), "--summary：简要情况过长"),
    ]
    for kw, message in cases:
        with pytest.raises(incident_rules.IncidentError, match=message):
            register(rt, **kw)
    reg = register(rt).registered
    with pytest.raises(incident_rules.IncidentError, match="没有编号为 99 的事故"):
        record(rt, 99, "phone", at("2026-10-03", "10:20"), at("2026-10-03", "10:21"), actor="x")
    with pytest.raises(incident_rules.IncidentError, match="晚于现在"):
        record(rt, reg.id, "phone", at("2026-10-03", "10:30"), at("2026-10-03", "10:21"), actor="x")
    with session_scope() as session:
        assert rows(session, "select count(*) from incident")[0][0] == 1
        assert rows(session, "select count(*) from occurrence")[0][0] == 2


def test_another_jurisdiction_has_its_own_deadlines(tmp_path, migrated_db, ids, sent):
    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG, directory)
    path = directory / "flows" / "incident.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["jurisdictions"] = {"B": {"phone": "4h", "written": "8h"}}  # the bureau of the small organisation
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rt = build_runtime(Settings(catalog_dir=directory), load_catalog(directory))
    reg = register(rt).registered
    assert (reg.phone_due_at, reg.written_due_at) == (at("2026-10-03", "14:00"), at("2026-10-03", "18:00"))
    assert tick(rt, "13:59") == []
    assert tick(rt, "14:00") == [reg.id]
    with session_scope() as session:
        assert rows(session, "select jurisdiction from incident") == [("B",)]


def test_escalations_of_a_report_that_came_in_on_time_are_not_counted(rt, ids, sent):
    """Registered at 14:00 with nothing recorded, both reports are escalated at once; then the
    operator records the phone report at 10:20 (on time) and the written one at 12:30 (half an
    hour late: its level 1 fell due at 12:00, before it came; its level 2 at 13:00, after)."""
    from pingan.reports.compute import report_for

    reg = register(rt, as_of=at("2026-10-03", "14:00")).registered
    with session_scope() as session:
        assert sorted((r, lvl) for r, lvl, *_ in fired(session)) == [("phone", 1), ("phone", 2), ("written", 1), ("written", 2)]
    record(rt, reg.id, "phone", at("2026-10-03", "10:20"), at("2026-10-03", "14:10"), actor="operator:值班员")
    record(rt, reg.id, "written", at("2026-10-03", "12:30"), at("2026-10-03", "14:10"), actor="operator:值班员")
    report = report_for(rt, "2026-Q4", at("2026-10-08", "09:00"))
    facts = {f.period_key: f for f in report.tasks}
    phone, written = facts[incident_rules.report_key(reg.id, "phone")], facts[incident_rules.report_key(reg.id, "written")]
    assert (phone.outcome, phone.levels, phone.events) == ("on_time", (), 0)
    assert (written.outcome, written.levels, written.events) == ("late", (1,), 1)
    assert (report.totals.escalated, report.totals.events, dict(report.totals.levels)) == (1, 1, {1: 1})
    with session_scope() as session:
        view = incident_views.load_views(session, rt, [reg.id])[0]
    notes = [e.detail for e in incident_views.timeline(view, at("2026-10-03", "15:00")) if e.event == "escalation"]
    assert [("不计入考核" in n) for n in notes] == [True, True, False, True]


# --------------------------------------------------------------------------- CLI

def test_the_cli_registers_records_and_shows_an_incident(ids, sent, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, ["incident", *args])

    done = cli("report", "--unit", "S1", "--at", "2026-10-03T10:00", "--category", "溺水", "--severity", "较大",
               "--summary", "学生在校外河道溺水", "--as-of", "2026-10-03T10:05")
    assert done.exit_code == 0, done.output
    assert "事故 #1 已登记：一小 溺水（较大）" in done.output and "电话报告截止 2026-10-03 10:30" in done.output
    assert "书面报告截止 2026-10-03 12:00" in done.output and "pingan incident sweep" in done.output
    late = cli("phone", "1", "--at", "2026-10-03T10:40", "--as-of", "2026-10-03T10:41")
    assert late.exit_code == 0 and "迟报 late" in late.output, late.output
    swept = cli("sweep", "--as-of", "2026-10-03T12:00")
    assert swept.exit_code == 0 and "#1" in swept.output, swept.output
    listed = cli("list", "--as-of", "2026-10-03T12:05", "--json")
    assert listed.exit_code == 0 and '"written": "missing"' in listed.output and '"phone": "late"' in listed.output
    shown = cli("show", "1", "--as-of", "2026-10-03T12:05", "--json")
    assert shown.exit_code == 0 and '"event": "escalation"' in shown.output
    for args, message in [
        (("report", "--unit", "S1", "--at", "2026-10-03", "--category", "溺水", "--severity", "较大"), "--at：请给出日期和时刻"),
        (("report", "--unit", "S1", "--at", "2026-10-03T10:00", "--category", "溺水", "--severity", "超大"), "--severity"),
        (("written", "9"), "没有编号为 9 的事故"),
        (("show", "9"), "没有编号为 9 的事故"),
    ]:
        bad = cli(*args)
        assert bad.exit_code == 2 and message in bad.output, bad.output
    assert sent.to() == Counter({"dep-b": 1, "safe-head": 1})  # the written report's level 1 at 12:00


def test_registered_after_the_fact_reports_that_came_in_on_time_are_never_escalated(ids, sent, monkeypatch):
    """The school phoned at 10:20 and wrote at 11:45; the operator registers it all at 14:00."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, ["incident", *args])

    base = ("report", "--unit", "S1", "--at", "2026-10-03T10:00", "--category", "溺水", "--severity", "较大",
            "--as-of", "2026-10-03T14:00")
    bad = cli(*base, "--phoned-at", "2026-10-03T10:20", "--written-at", "2026-10-03T09:45")
    assert bad.exit_code == 2 and "--written-at：报告时间 2026-10-03 09:45 早于事故发生时间" in bad.output, bad.output
    with session_scope() as session:
        assert rows(session, "select count(*) from incident")[0][0] == 0
    done = cli(*base, "--phoned-at", "2026-10-03T10:20", "--written-at", "2026-10-03T11:45")
    assert done.exit_code == 0, done.output
    assert "督办" not in done.output
    swept = cli("sweep", "--as-of", "2026-10-03T18:00")
    assert swept.exit_code == 0 and "督办 0" in swept.output, swept.output
    shown = cli("show", "1", "--as-of", "2026-10-03T18:00", "--json")
    assert '"phone": "on_time"' in shown.output and '"written": "on_time"' in shown.output, shown.output
    with session_scope() as session:
        assert rows(session, "select count(*) from escalation")[0][0] == 0
        assert rows(session, "select count(*) from notice")[0][0] == 0
        assert rows(session, "select review, closed_at from occurrence order by period_key") == [
            ("accepted", rows(session, "select written_at from incident")[0][0]),
            ("accepted", rows(session, "select phone_at from incident")[0][0])]
    assert sent.calls == []


# --------------------------------------------------------------------------- deployments and flows

def test_the_deployments_of_the_clock_and_the_watch():
    import inspect

    from deployments.incidents import specs
    from tasks.names import INCIDENT_CLOCK_DEPLOYMENT

    found = {s.name: s for s in specs(CATALOG)}
    assert set(found) == {"事故报告时限", "事故报告巡检", "节假日值班与零报告"}
    clock = found["事故报告时限"]
    assert f"{clock.flow_name}/{clock.name}" == INCIDENT_CLOCK_DEPLOYMENT and clock.schedules == ()
    assert [(s.cron, s.slug, s.timezone) for s in found["事故报告巡检"].schedules] == [("*/5 * * * *", "every-5-minutes", "Asia/Shanghai")]
    assert [s.cron for s in found["节假日值班与零报告"].schedules] == ["0 8-20 * * *"]
    for spec in found.values():
        assert "pingan" in spec.tags and "as_of" in inspect.signature(spec.load_flow().fn).parameters
    assert "七（十）" in clock.description


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_flows_run_under_prefect_and_publish_their_artifacts(prefect_harness, ids, sent, monkeypatch):
    from prefect.client.orchestration import get_client

    from flows.dispatch import outbox_dispatch
    from flows.holiday_watch import holiday_watch
    from flows.incident_clock import incident_clock, incident_sweep
    from pingan.duties.runtime import get_runtime

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reg = register(get_runtime()).registered
    # The clock queues its escalations released at once; the one dispatcher sends them (here the
    # flow is called directly: the harness has no dispatch deployment to start).
    done = incident_clock(incident_id=reg.id, as_of=at("2026-10-03", "10:30"))
    assert (done["escalated"], done["released"], done["phone"], done["written"], done["level"]) == (
        [reg.id], 2, "missing", "pending", 1)
    assert outbox_dispatch(as_of=at("2026-10-03", "10:30"))["sent"] == 2
    swept = incident_sweep(as_of=at("2026-10-03", "12:00"))
    assert (swept["escalated"], swept["open"], swept["released"]) == ([reg.id], [reg.id], 4)  # phone level 2, written level 1
    assert outbox_dispatch(as_of=at("2026-10-03", "12:00"))["sent"] == 4
    watched = holiday_watch(as_of=at("2026-10-03", "17:00"))
    assert watched["reports"] == {"K1": "missing", "S1": "incident", "S2": "missing"}  # S1's incident is its report
    with pytest.raises(ValueError, match="no incident #99"):
        incident_clock(incident_id=99)
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in sorted(client.read_artifacts(), key=lambda a: a.created) if a.key}  # latest wins
    assert {"incident-1-timeline", "incident-1-events", "incidents-open", "holiday-watch-2026-10-03",
            "holiday-watch-2026-10-03-summary"} <= set(artifacts)
    assert "电话报告未报 · 第 2 级" in artifacts["incident-1-timeline"].data
