"""The principal's phone: the person's own page, zero reports in one tap, hazards by link, the
calendar feed and the leader's page, through FastAPI's TestClient on the shipped catalog.

The world: the small organisation of tests/factories.py during National Day 2026 (1–7 Oct, a
public holiday of the calendar). The holiday flow first runs at 09:00 on Sat 3 Oct, so the
period is created then, after its roster deadline: the roster is due at 16:00 that day
(catalog/flows/holiday.yaml: "a period added later is due at due_time on the day it was
added"), and so is the day's zero report (due_time 16:00). Each school's principal and safety
officer carry both (the kindergarten: its principal). SQLite, and PostgreSQL when the suite has one.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from types import SimpleNamespace

import icalendar
import pytest
import sqlalchemy as sa
from factories import at, make_org, rows
from fastapi.testclient import TestClient
from test_evidence import JPEG
from typer.testing import CliRunner

from models import Incident, WatchReport, WatchRoster
from pingan.cli import app as cli_app
from pingan.core.clock import TZ
from pingan.core.db import session_scope
from pingan.core.settings import REPO_ROOT, Settings, reset_settings
from pingan.delivery import transports
from pingan.delivery.transports import Outcome
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import load_catalog
from pingan.duties.runtime import build_runtime, reset_runtime
from pingan.hazards import service as hazards
from pingan.reports.pages import bucket
from pingan.watch.workflow import WATCH
from pingan.web import create_app

CATALOG = REPO_ROOT / "catalog"
SECRET = "4b7e1d9a2c6f0e3b8a5d7c1f9e2b4a6d0c8e3f5a7b9d1c2e4f6a8b0d3e5f7a9c"
BASE = "https://pingan.example.edu.cn"


class Clock:
    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


def path_of(url: str) -> str:
    return url.split(BASE, 1)[1]


@pytest.fixture
def world(migrated_db, monkeypatch):
    monkeypatch.setenv("PINGAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("PINGAN_BASE_URL", BASE)
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(CATALOG))
    monkeypatch.delenv("PINGAN_DEMO")
    reset_settings()
    reset_runtime()
    sent: list = []
    monkeypatch.setattr(transports, "deliver",
                        lambda url, title, body, *, timeout: sent.append((url.rsplit("/", 1)[1], body)) or Outcome(ok=True))
    rt = build_runtime(Settings(send_backoff=0), load_catalog(CATALOG))
    with session_scope() as session:
        ids = make_org(session)
    WATCH.run(rt, as_of=at("2026-10-03", "09:00"))
    dispatch(rt, at("2026-10-03", "09:00"))
    clock = Clock(at("2026-10-03", "10:00"))
    client = TestClient(create_app(runtime=rt, clock=clock), follow_redirects=False)
    return SimpleNamespace(rt=rt, ids=ids, sent=sent, clock=clock, client=client)


def page_link(world, code: str) -> str:
    body = [b for who, b in world.sent if who == code][-1]
    return path_of(re.search(rf"{re.escape(BASE)}/m/\S+", body)[0])


def shown_link(code: str) -> str:
    """The person's page link as ``pingan person link show`` prints it."""
    result = CliRunner().invoke(cli_app, ["person", "link", "show", code])
    assert result.exit_code == 0, result.output
    return path_of(re.search(rf"{re.escape(BASE)}/m/\S+", result.output)[0])


def tasks_on(html: str, bucket_name: str) -> list[int]:
    section = html.split(f'id="bucket-{bucket_name}"', 1)[1].split("</ul>", 1)[0]
    return [int(x) for x in re.findall(r'data-task="(\d+)"', section)]


def task_id(duty: str, unit: str, period: str) -> int:
    with session_scope() as session:
        return session.execute(sa.text(
            "select o.id from occurrence o join unit u on u.id = o.unit_id "
            "where o.duty_key = :d and u.code = :u and o.period_key = :p"), {"d": duty, "u": unit, "p": period}).scalar_one()


ROSTER, REPORT = "erdao-holiday-duty-roster", "erdao-holiday-zero-report"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def task_link(world, html: str, task: int) -> str:
    """The hand-in link the person's page gives for ``task``."""
    return re.search(rf'data-task="{task}" href="(/e/[^"]+)"', html)[1]


# --------------------------------------------------------------------------- pure

def test_tasks_are_bucketed_by_their_deadline_in_shanghai():
    thursday = at("2026-10-01", "10:00")  # 1 Oct 2026 is a Thursday; that week ends on Sunday 4 Oct
    assert bucket(at("2026-10-01", "09:00"), thursday) == "overdue"
    assert bucket(at("2026-10-01", "23:59"), thursday) == "today"
    assert bucket(at("2026-10-04", "16:00"), thursday) == "week"
    assert bucket(at("2026-10-05", "00:00"), thursday) == "later"
    # 1 Oct 17:00 UTC is 2 Oct 01:00 in Shanghai: tomorrow, not today
    assert bucket(dt.datetime(2026, 10, 1, 17, 0, tzinfo=dt.UTC), thursday) == "week"


# --------------------------------------------------------------------------- the person's page

def test_every_message_ends_with_the_persons_page_listing_their_open_tasks(world):
    body = next(b for who, b in world.sent if who == "s1-head")
    assert body.rstrip().endswith(f"我的待办（全部未完成事项）：{BASE}{page_link(world, 's1-head')}")
    page = world.client.get(page_link(world, "s1-head"))
    assert page.status_code == 200 and page.headers["content-security-policy"].startswith("default-src 'none'")
    # both of 一小's watch tasks are due at 16:00 today, the roster first (planned first)
    assert tasks_on(page.text, "today") == [task_id(ROSTER, "S1", "2026-10-01-国庆节"), task_id(REPORT, "S1", "2026-10-03")]
    assert 'id="bucket-overdue"' not in page.text and "二中" not in page.text
    assert "今日（2026-10-03）零报告：尚未报告" in page.text and "值班表：尚未报送" in page.text
    # the leader has no task of their own but the units they answer for
    leader = world.client.get(shown_link("dep-b"))
    assert leader.status_code == 200 and 'id="lead"' in leader.text and "目前没有待办事项" in leader.text


def test_a_long_message_ends_with_the_page_instead_of_the_prefect_ui():
    from pingan.delivery.messages import render_message

    items = [("escalation", f"【督办】第 {i} 所学校") for i in range(1, 149)]
    _, body = render_message("局长", items, max_items=12, page=f"{BASE}/m/7.0.x", lead=f"{BASE}/m/7.0.x/lead")
    assert body.endswith(f"【督办】第 12 所学校\n\n……另有 136 项未在此列出，全部事项请打开：{BASE}/m/7.0.x/lead\n\n"
                         f"我的待办（全部未完成事项）：{BASE}/m/7.0.x")
    assert "Prefect" not in body and "pingan status" not in body
    _, short = render_message("局长", items[:3], max_items=12, page=f"{BASE}/m/7.0.x", lead=f"{BASE}/m/7.0.x/lead")
    assert short.endswith(f"【督办】第 3 所学校\n\n负责单位逾期情况：{BASE}/m/7.0.x/lead\n\n我的待办（全部未完成事项）：{BASE}/m/7.0.x")


def test_a_revoked_link_is_refused_and_the_next_message_carries_the_new_one(world):
    old = page_link(world, "s1-head")
    old_feed = re.search(r'id="feed" href="([^"]+)"', world.client.get(old).text)[1]
    result = CliRunner().invoke(cli_app, ["person", "link", "revoke", "s1-head", "--by", "安全科", "--as-of", "2026-10-03T10:00"])
    assert result.exit_code == 0, result.output
    new = path_of(re.search(rf"{re.escape(BASE)}/m/\S+", result.output)[0])
    assert new != old
    assert world.client.get(old).status_code == 403
    assert world.client.get(path_of(old_feed)).status_code == 403
    assert world.client.get(new).status_code == 200
    with session_scope() as session:
        assert rows(session, "select actor, action, object_id from audit where action = 'person.links_revoked'") == [
            ("operator:安全科", "person.links_revoked", str(world.ids["s1-head"]))]
    # the day's report reminder (3 hours before 16:00) carries the new link
    world.sent.clear()
    WATCH.run(world.rt, as_of=at("2026-10-03", "13:00"))
    dispatch(world.rt, at("2026-10-03", "13:00"))
    assert page_link(world, "s1-head") == new
    # an unknown person is one line and exit code 2
    bad = CliRunner().invoke(cli_app, ["person", "link", "revoke", "nobody"])
    assert bad.exit_code == 2 and "没有人员 nobody" in bad.output


def test_a_forged_page_link_is_refused(world):
    good = page_link(world, "s1-head")
    person, version, mac = good.rsplit("/", 1)[1].split(".")
    assert world.client.get(f"/m/{world.ids['s2-head']}.{version}.{mac}").status_code == 403
    assert world.client.get(f"/m/{person}.{int(version) + 1}.{mac}").status_code == 403
    # a page link does not open the feed
    assert world.client.get(f"/c/{person}.{version}.{mac}.ics").status_code == 403


# --------------------------------------------------------------------------- the holiday watch

def test_a_zero_report_in_one_tap_with_a_confirmation(world):
    page = world.client.get(page_link(world, "s1-head")).text
    link = task_link(world, page, task_id(REPORT, "S1", "2026-10-03"))
    form = world.client.get(link)
    assert form.status_code == 200 and 'id="ok"' in form.text and "报告事故" in form.text
    assert f'id="home" href="{page_link(world, "s1-head")}"' in form.text  # back to the person's page
    csrf = csrf_of(form.text)
    asked = world.client.post(f"{link}/zero", data={"csrf": csrf})
    assert asked.status_code == 200 and "确认报告 一小 2026-10-03 平安无事？" in asked.text
    with session_scope() as session:
        assert rows(session, "select count(*) from watch_report") == [(0,)]
    assert world.client.post(f"{link}/zero", data={"csrf": "0.bad", "confirm": "yes"}).status_code == 403
    done = world.client.post(f"{link}/zero", data={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 303
    shown = world.client.get(done.headers["location"]).text
    assert "已报告：一小 2026-10-03 平安无事。" in shown
    again = world.client.post(f"{link}/zero", data={"csrf": csrf, "confirm": "yes"})
    assert again.headers["location"].endswith("filed=again")
    with session_scope() as session:
        assert [(r.unit_id, r.day, r.status, r.incident_id, r.filed_by) for r in session.scalars(sa.select(WatchReport))] == [
            (world.ids["S1"], dt.date(2026, 10, 3), "ok", None, "person:s1-head")]
        assert rows(session, "select review from occurrence where id = :t", t=task_id(REPORT, "S1", "2026-10-03")) == [("accepted",)]
        assert rows(session, "select actor from audit where action = 'watch.report_filed'") == [("person:s1-head",)]
    assert "今日（2026-10-03）零报告：已报告平安无事" in world.client.get(page_link(world, "s1-head")).text


def test_an_incident_reported_from_the_link_starts_its_clock(world):
    page = world.client.get(page_link(world, "k1-head")).text
    link = task_link(world, page, task_id(REPORT, "K1", "2026-10-03"))
    form = world.client.get(f"{link}/incident")
    assert form.status_code == 200 and 'value="2026-10-03T10:00"' in form.text  # the time filled in: now
    sent = world.client.post(f"{link}/incident", data={"csrf": csrf_of(form.text), "at": "2026-10-03T09:40",
                                                       "category": "injury", "severity": "general", "summary": "幼儿摔伤"})
    assert sent.status_code == 303
    with session_scope() as session:
        (incident,) = rows(session, "select i.id, u.code, i.occurred_at, i.phone_due_at, i.written_due_at, i.registered_by "
                                    "from incident i join unit u on u.id = i.unit_id")
        report = rows(session, "select status, incident_id from watch_report")
    assert incident[1] == "K1" and incident[5] == "person:k1-head"
    with session_scope() as session:
        row = session.get(Incident, incident[0])
        # catalog/flows/incident.yaml: phone report within 30 minutes, written within 2 hours
        assert (row.occurred_at, row.phone_due_at, row.written_due_at) == (
            at("2026-10-03", "09:40"), at("2026-10-03", "10:10"), at("2026-10-03", "11:40"))
    assert report == [("incident", incident[0])]
    with session_scope() as session:  # reported at 10:00, 20 minutes after: nothing is late yet
        assert rows(session, "select count(*) from escalation") == [(0,)]
    mine = world.client.get(page_link(world, "k1-head")).text
    assert f"#{incident[0]} 幼儿园 意外伤害" in mine and "须于 2026-10-03 10:10 前报告" in mine
    # a time in the future is one line, nothing registered
    late = world.client.post(f"{link}/incident", data={"csrf": csrf_of(form.text), "at": "2026-10-03T11:00",
                                                       "category": "injury", "severity": "general"})
    assert late.status_code == 400
    with session_scope() as session:
        assert rows(session, "select count(*) from incident") == [(1,)]


def test_the_roster_is_filed_on_a_form(world):
    page = world.client.get(page_link(world, "s2-safe")).text
    link = task_link(world, page, task_id(ROSTER, "S2", "2026-10-01-国庆节"))
    form = world.client.get(link)
    assert form.status_code == 200 and "带班领导" in form.text and "值班值宿人员" in form.text
    csrf = csrf_of(form.text)
    bad = world.client.post(f"{link}/roster", data={"csrf": csrf, "leader_name": "王校长", "leader_phone": "12",
                                                    "staff_name": "李老师", "staff_phone": "13900000002"})
    assert bad.status_code == 400 and 'value="王校长"' in bad.text
    with session_scope() as session:
        assert rows(session, "select count(*) from watch_roster") == [(0,)]
    ok = world.client.post(f"{link}/roster", data={"csrf": csrf, "leader_name": "王校长", "leader_phone": "13800000001",
                                                   "staff_name": "李老师", "staff_phone": "13900000002"})
    assert ok.status_code == 303
    with session_scope() as session:
        (roster,) = session.scalars(sa.select(WatchRoster)).all()
    assert (roster.unit_id, roster.filed_by) == (world.ids["S2"], "person:s2-safe")
    assert roster.entries == [{"day": None, "role": "leader", "name": "王校长", "phone": "13800000001"},
                                     {"day": None, "role": "staff", "name": "李老师", "phone": "13900000002"}]


# --------------------------------------------------------------------------- hazards by link

def test_a_hazard_is_rectified_and_verified_by_link(world):
    rt, ids = world.rt, world.ids
    found = hazards.act(rt, lambda s, org: hazards.report(
        s, rt, org, unit_id=ids["S1"], place="教学楼二楼", description="消防栓箱门损坏", level="general",
        rectifier_id=ids["s1-safe"], actor="person:s1-head", as_of=at("2026-10-03", "09:30")))
    hid = found.hazard_id
    rectifier = page_link(world, "s1-safe")
    assert f'data-hazard="{hid}"' in world.client.get(rectifier).text
    form = world.client.get(f"{rectifier}/hazard/{hid}")
    assert form.status_code == 200 and 'id="rectify"' in form.text
    csrf = csrf_of(form.text)
    fake = world.client.post(f"{rectifier}/hazard/{hid}", data={"csrf": csrf, "note": "已更换箱门"},
                             files=[("files", ("整改后.jpg", b"not a jpeg", "image/jpeg"))])
    assert fake.status_code == 400 and "整改后.jpg" in fake.text
    done = world.client.post(f"{rectifier}/hazard/{hid}", data={"csrf": csrf, "note": "已更换箱门"},
                             files=[("files", ("整改后.jpg", JPEG, "image/jpeg"))])
    assert done.status_code == 303
    with session_scope() as session:
        assert rows(session, "select state, rectified_by_id from hazard") == [("rectified", ids["s1-safe"])]
        assert rows(session, "select role, filename from hazard_file") == [("rectification", "整改后.jpg")]
        assert rows(session, "select actor from audit where action = 'hazard.rectified'") == [("person:s1-safe",)]
    # the rectifier may not verify; a general hazard is verified by the unit's principal (hazards.yaml)
    assert world.client.get(f"{rectifier}/hazard/{hid}").status_code == 403
    verifier = page_link(world, "s1-head")
    form = world.client.get(f"{verifier}/hazard/{hid}")
    assert 'id="verify"' in form.text
    no_reason = world.client.post(f"{verifier}/hazard/{hid}", data={"csrf": csrf_of(form.text), "decision": "fail"})
    assert no_reason.status_code == 400 and "核验未通过须填写说明" in no_reason.text
    failed = world.client.post(f"{verifier}/hazard/{hid}", data={"csrf": csrf_of(form.text), "decision": "fail",
                                                                 "note": "箱门仍无法关闭"})
    assert failed.status_code == 303
    with session_scope() as session:
        assert rows(session, "select state, round from hazard") == [("rectifying", 2)]
        assert rows(session, "select action, actor from hazard_event where action = 'verification_failed'") == [
            ("verification_failed", "person:s1-head")]
    # rectified again, then verified
    form = world.client.get(f"{rectifier}/hazard/{hid}")
    assert world.client.post(f"{rectifier}/hazard/{hid}", data={"csrf": csrf_of(form.text), "note": "更换门锁"},
                             files=[("files", ("门锁.jpg", JPEG, "image/jpeg"))]).status_code == 303
    form = world.client.get(f"{verifier}/hazard/{hid}")
    passed = world.client.post(f"{verifier}/hazard/{hid}", data={"csrf": csrf_of(form.text), "decision": "pass"})
    assert passed.status_code == 303
    assert f"隐患 #{hid} 已核验通过。" in world.client.get(passed.headers["location"]).text
    with session_scope() as session:
        assert rows(session, "select state, round, verified_by_id from hazard") == [("verified", 2, ids["s1-head"])]
        assert rows(session, "select action, actor from audit where action like 'hazard.%' and action != 'hazard.reported' "
                             "order by id") == [
            ("hazard.rectified", "person:s1-safe"), ("hazard.verification_failed", "person:s1-head"),
            ("hazard.rectified", "person:s1-safe"), ("hazard.verified", "person:s1-head")]
    assert f'data-hazard="{hid}"' not in world.client.get(verifier).text


# --------------------------------------------------------------------------- the calendar feed

def test_the_calendar_feed_lists_every_open_task(world):
    page = world.client.get(page_link(world, "s1-head")).text
    feed = re.search(r'id="feed" href="([^"]+)"', page)[1]
    webcal = re.search(r'id="webcal" href="([^"]+)"', page)[1]
    assert webcal == "webcal://" + feed.split("://", 1)[1] and feed.startswith(f"{BASE}/c/")
    answer = world.client.get(path_of(feed))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(answer.content)
    events = sorted(cal.walk("VEVENT"), key=lambda e: str(e["uid"]))
    roster, report = task_id(ROSTER, "S1", "2026-10-01-国庆节"), task_id(REPORT, "S1", "2026-10-03")
    assert [str(e["uid"]) for e in events] == [f"task-{roster}@pingan", f"task-{report}@pingan"]
    due = dt.datetime(2026, 10, 3, 16, 0, tzinfo=TZ)
    assert all(e.decoded("dtend") == due for e in events)
    assert str(events[1]["summary"]) == "截止：重大事件零报告（一小）"
    assert "依据：7" in str(events[1]["description"]) and str(events[1]["url"]).startswith(f"{BASE}/e/")
    # once the report is filed, the feed drops it
    link = task_link(world, page, report)
    world.client.post(f"{link}/zero", data={"csrf": csrf_of(world.client.get(link).text), "confirm": "yes"})
    again = icalendar.Calendar.from_ical(world.client.get(path_of(feed)).content)
    assert [str(e["uid"]) for e in again.walk("VEVENT")] == [f"task-{roster}@pingan"]


# --------------------------------------------------------------------------- the leader's page

def test_the_leader_sees_what_is_overdue_and_reminds_a_unit_again(world):
    world.clock.moment = at("2026-10-03", "17:00")  # past 16:00: nothing was filed
    lead = shown_link("dep-b") + "/lead"
    page = world.client.get(lead)
    assert page.status_code == 200
    # 副局长乙 answers for 一小 and 二中 (包保), and 办公室 (分管), which carries no watch duty
    assert page.text.count('data-unit="') == 4  # two duties × two schools
    assert "2 个单位共 2 项逾期（条款 7）" in page.text and "幼儿园" not in page.text
    # each task opens read-only for the leader; its carriers go on to the hand-in page
    report = task_id(REPORT, "S1", "2026-10-03")
    view = world.client.get(f"{lead.rsplit('/', 1)[0]}/task/{report}")
    assert f'href="{lead.rsplit("/", 1)[0]}/task/{report}"' in page.text
    assert view.status_code == 200 and "一小校长、一小安全主任" in view.text and 'data-state="overdue"' in view.text
    assert world.client.get(f"{lead.rsplit('/', 1)[0]}/task/{task_id(REPORT, 'K1', '2026-10-03')}").status_code == 403
    own = world.client.get(f"{shown_link('s1-head')}/task/{report}")
    assert own.status_code == 303 and own.headers["location"].startswith("/e/")
    csrf = csrf_of(page.text)
    done = world.client.post(f"{lead}/remind", data={"csrf": csrf, "unit": str(world.ids["S1"])})
    assert done.status_code == 200 and "已再次提醒 一小：4 条提醒将发出。" in done.text  # 2 tasks × (principal, safety officer)
    with session_scope() as session:
        people = rows(session, "select p.code, n.step from notice n join person p on p.id = n.person_id "
                               "where n.dedupe_key like 'again:%' order by p.code")
        assert people == [("s1-head", "again"), ("s1-head", "again"), ("s1-safe", "again"), ("s1-safe", "again")]
        assert rows(session, "select actor, object_id from audit where action = 'unit.reminded_again'") == [
            ("person:dep-b", str(world.ids["S1"]))]
    soon = world.client.post(f"{lead}/remind", data={"csrf": csrf, "unit": str(world.ids["S1"])})
    assert soon.status_code == 429 and "4 小时内不能重复提醒" in soon.text
    assert world.client.post(f"{lead}/remind", data={"csrf": csrf, "unit": str(world.ids["K1"])}).status_code == 403
    with session_scope() as session:
        assert rows(session, "select count(*) from notice where dedupe_key like 'again:%'") == [(4,)]
    # the bureau head answers for every unit of the bureau: the kindergarten too
    # the bureau head, its leader in charge of safety and the head of its safety section answer for
    # every unit of the bureau: the kindergarten too
    for code in ("chief", "dep-a", "safe-head"):
        page = world.client.get(shown_link(code) + "/lead")
        assert page.text.count('data-unit="') == 6 and "3 个单位共 3 项逾期（条款 7）" in page.text, code
    # the escalation at 17:00 (due 16:00 + 1 hour's grace, policy "watch" level 1) reaches the 包保 leader
    world.sent.clear()
    WATCH.run(world.rt, as_of=at("2026-10-03", "17:00"))
    dispatch(world.rt, at("2026-10-03", "17:00"))
    (escalated,) = [b for who, b in world.sent if who == "dep-b"]
    assert escalated.endswith(f"负责单位逾期情况：{BASE}{shown_link('dep-b')}/lead\n\n"
                              f"我的待办（全部未完成事项）：{BASE}{shown_link('dep-b')}")
    # the leader sees where the school's report stands from its link, but does not vouch for it
    link = path_of(re.search(rf"{re.escape(BASE)}/e/\S+", escalated.split("一小「重大事件零报告」", 1)[1])[0])
    seen = world.client.get(link)
    assert seen.status_code == 200 and 'data-status="none"' in seen.text and 'id="ok"' not in seen.text
    csrf = world.client.app.state.web.signer.hand_in_csrf(link.rsplit("/", 1)[1])  # a valid form, all the same
    assert world.client.post(f"{link}/zero", data={"csrf": csrf, "confirm": "yes"}).status_code == 403
    # the carriers' reminder says who asked
    reminded = [b for who, b in world.sent if who == "s1-safe"]
    assert any("副局长乙要求再次提醒，请尽快办理" in b for b in reminded)
    # a principal answers for their own school
    own = world.client.get(shown_link("s1-head") + "/lead").text
    assert own.count('data-unit="') == 2 and "1 个单位共 1 项逾期（条款 7）" in own and "二中" not in own


def test_the_pages_read_in_english_too(world, monkeypatch):
    monkeypatch.setenv("PINGAN_LOCALE", "en")
    reset_settings()
    page = html.unescape(world.client.get(page_link(world, "s1-head")).text)
    assert "<h1>My tasks</h1>" in page and "Due today (2)" in page and "Today's report (2026-10-03): not yet reported" in page
    report = task_link(world, page, task_id(REPORT, "S1", "2026-10-03"))
    assert "Nothing happened (平安无事)" in world.client.get(report).text
    assert "Overdue in the units I answer for" in world.client.get(shown_link("dep-b") + "/lead").text


def test_a_unit_calendar_lists_every_open_task_of_the_unit_with_who_carries_it(world):
    page = world.client.get(shown_link("dep-b")).text
    feeds = dict(re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', page.split('id="unit-feeds"', 1)[1]))
    # 副局长乙: the bureau (their own unit), 办公室 (分管), 一小 and 二中 (包保)
    assert sorted(feeds.values()) == sorted(["局", "办公室", "一小", "二中"])
    s1 = next(url for url, name in feeds.items() if name == "一小")
    cal = icalendar.Calendar.from_ical(world.client.get(path_of(s1)).content)
    events = sorted(cal.walk("VEVENT"), key=lambda e: str(e["uid"]))
    assert [str(e["uid"]) for e in events] == [f"task-{task_id(ROSTER, 'S1', '2026-10-01-国庆节')}@pingan",
                                              f"task-{task_id(REPORT, 'S1', '2026-10-03')}@pingan"]
    assert all("责任人：一小校长、一小安全主任" in str(e["description"]) and "url" not in e for e in events)
    # a unit the person neither belongs to nor answers for is refused
    k1 = s1.rsplit("/", 1)[0] + f"/{world.ids['K1']}.ics"
    assert world.client.get(path_of(k1)).status_code == 403
    # the principal's own feed of 一小 links each task to its hand-in page
    mine = world.client.get(shown_link("s1-head")).text
    own = re.search(r'<li><a href="([^"]+)">一小</a></li>', mine)[1]
    events = icalendar.Calendar.from_ical(world.client.get(path_of(own)).content).walk("VEVENT")
    assert len(events) == 2 and all(str(e["url"]).startswith(f"{BASE}/e/") for e in events)


def test_an_incident_reported_late_from_the_link_is_escalated_at_once(world):
    """Reported at 10:00 for 09:20: the phone report was due at 09:50 (30 minutes), so the clock,
    run at once as after ``pingan watch report``, escalates it (policy ``immediate``: no grace)."""
    page = world.client.get(page_link(world, "s1-head")).text
    link = task_link(world, page, task_id(REPORT, "S1", "2026-10-03"))
    form = world.client.get(f"{link}/incident")
    assert world.client.post(f"{link}/incident", data={"csrf": csrf_of(form.text), "at": "2026-10-03T09:20",
                                                       "category": "drowning", "severity": "larger"}).status_code == 303
    with session_scope() as session:
        fired = rows(session, "select o.period_key, e.level from escalation e join occurrence o on o.id = e.occurrence_id")
        (incident,) = rows(session, "select id from incident")
    assert fired == [(f"事故#{incident[0]}·电话报告", 1)]  # the written report is not due before 11:20
