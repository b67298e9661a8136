"""A principal's phone: from the daily-report reminder to the zero report; a hazard closed by link.

Headless Chromium (Debian's package) at phone size, driven by Playwright, against the app served
by uvicorn. The holiday flow runs at 13:00 on Sat 3 Oct, three hours before the day's report is
due (16:00; the duty's ``daily`` reminder set: 3 hours before): the principal of 一小 gets the
reminder, opens its link, taps 平安无事, confirms, and the report is filed as ``pingan watch
report`` files it; their own page (the link every message ends with) then shows it. Then a
hazard: rectified by the safety officer from their page, verified by the principal from theirs,
and the principal's calendar feed fetched and parsed.

Skipped, with the reason shown, where Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from factories import at, make_org, rows
from test_browser import CHROMIUM, CHROMIUM_ARGS, Clock, Served, sync_playwright
from test_evidence import JPEG

from models import WatchReport
from pingan.cli.supervisor import free_port
from pingan.core.db import session_scope
from pingan.core.settings import REPO_ROOT, Settings, reset_settings
from pingan.delivery import transports
from pingan.delivery.transports import Outcome
from pingan.delivery.workflow import dispatch
from pingan.duties.catalog import load_catalog
from pingan.duties.runtime import build_runtime, reset_runtime
from pingan.watch.workflow import WATCH
from pingan.web import create_app

CATALOG = REPO_ROOT / "catalog"
pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright is not installed: pip install -e '.[test]'"),
    pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture
def db_url(sqlite_url) -> str:
    return sqlite_url


def _world(monkeypatch) -> tuple[list, int, object, dict[str, int]]:
    """Sends recorded, links to a free port where the page will be served, the runtime, the organisation."""
    sent: list = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    port = free_port()
    monkeypatch.setenv("PINGAN_BASE_URL", f"http://127.0.0.1:{port}")
    reset_settings()
    reset_runtime()
    rt = build_runtime(Settings(catalog_dir=CATALOG, send_backoff=0), load_catalog(CATALOG))
    with session_scope() as session:
        ids = make_org(session)
    return sent, port, rt, ids


def test_a_principal_files_the_zero_report_from_the_reminder_on_a_phone(migrated_db, monkeypatch):
    sent, port, rt, ids = _world(monkeypatch)
    for moment in (at("2026-10-03", "09:00"), at("2026-10-03", "13:00")):
        WATCH.run(rt, as_of=moment)
        dispatch(rt, moment)
    reminder = [body for url, body in sent if url.endswith("/s1-head")][-1]
    assert "【重大事件零报告】一小 · 2026-10-03\n截止时间：2026-10-03 16:00（今日截止）" in reminder
    link = re.search(r"办理链接：(\S+/e/\S+)", reminder)[1]
    page = re.search(r"我的待办（全部未完成事项）：(\S+/m/\S+)", reminder)[1]

    with Served(create_app(runtime=rt, clock=Clock(at("2026-10-03", "13:05"))), port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                          locale="zh-CN")
            tab = context.new_page()
            tab.set_default_timeout(10_000)
            tab.goto(link)
            assert tab.locator("h1").inner_text() == "重大事件零报告"
            assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            ok = tab.locator("#ok")
            assert ok.inner_text() == "平安无事" and ok.bounding_box()["height"] >= 44
            ok.tap()
            assert tab.locator("#confirm p.lead").inner_text() == "确认报告 一小 2026-10-03 平安无事？"
            with session_scope() as session:  # one tap asks; nothing is filed yet
                assert rows(session, "select count(*) from watch_report") == [(0,)]
            tab.locator("#yes").tap()
            assert tab.locator("#confirmation").inner_text() == "已报告：一小 2026-10-03 平安无事。"
            assert tab.locator("#reported").get_attribute("data-status") == "ok"
            tab.goto(page)
            assert tab.locator("#watch [data-report]").inner_text() == "今日（2026-10-03）零报告：已报告平安无事"
            assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            context.close()
        finally:
            browser.close()
    with session_scope() as session:
        (report,) = session.scalars(sa.select(WatchReport)).all()
        assert (report.unit_id, report.day, report.status, report.filed_by, report.filed_at) == (
            ids["S1"], dt.date(2026, 10, 3), "ok", "person:s1-head", at("2026-10-03", "13:05"))


def test_a_hazard_is_rectified_and_verified_from_the_persons_page_and_the_feed_parses(migrated_db, monkeypatch):
    """The safety officer of 一小 rectifies a general hazard from their page (a photo and a note);
    the principal — the unit's principal verifies a general hazard (catalog/hazards.yaml) — verifies
    it from theirs; the principal's calendar feed, fetched by the same browser, parses."""
    import icalendar

    from pingan.hazards import service as hazards

    sent, port, rt, ids = _world(monkeypatch)
    found = hazards.act(rt, lambda s, org: hazards.report(
        s, rt, org, unit_id=ids["S1"], place="操场东侧", description="围栏松动", level="general",
        rectifier_id=ids["s1-safe"], actor="person:s1-head", as_of=at("2026-11-02", "09:00")))
    dispatch(rt, at("2026-11-02", "09:00"))
    officer = re.search(r"我的待办（全部未完成事项）：(\S+)", [b for u, b in sent if u.endswith("/s1-safe")][-1])[1]
    clock = Clock(at("2026-11-02", "15:00"))

    with Served(create_app(runtime=rt, clock=clock), port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                          locale="zh-CN")
            tab = context.new_page()
            tab.set_default_timeout(10_000)
            tab.goto(officer)
            tab.locator(f'[data-hazard="{found.hazard_id}"]').tap()
            tab.fill("textarea[name=note]", "已加固围栏立柱")
            tab.set_input_files("input[name=files]", files=[{"name": "加固后.jpg", "mimeType": "image/jpeg", "buffer": JPEG}])
            tab.locator("#rectify button[type=submit]").tap()
            assert tab.locator("#confirmation").inner_text() == "整改材料已提交，已通知核验人。"
            dispatch(rt, at("2026-11-02", "15:00"))  # the verifiers are told, with their page link
            principal = re.search(r"我的待办（全部未完成事项）：(\S+)", [b for u, b in sent if u.endswith("/s1-head")][-1])[1]
            tab.goto(principal)
            tab.locator(f'[data-hazard="{found.hazard_id}"]').tap()
            tab.locator("#pass").tap()
            assert tab.locator("#confirmation").inner_text() == f"隐患 #{found.hazard_id} 已核验通过。"
            tab.goto(principal)
            feed = tab.locator("#feed").get_attribute("href")
            answer = tab.request.get(feed)
            assert answer.ok and answer.headers["content-type"].startswith("text/calendar")
            calendar = icalendar.Calendar.from_ical(answer.body())
            assert str(calendar["x-wr-calname"]) == "平安校园 · 一小校长的待办"
            context.close()
        finally:
            browser.close()
    with session_scope() as session:
        assert rows(session, "select state, rectified_by_id, verified_by_id from hazard") == [
            ("verified", ids["s1-safe"], ids["s1-head"])]
        assert rows(session, "select role, filename from hazard_file") == [("rectification", "加固后.jpg")]
