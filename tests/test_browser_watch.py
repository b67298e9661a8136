"""A principal's phone during National Day 2026: from the daily-report reminder to the zero report.

Headless Chromium (Debian's package) at phone size, driven by Playwright, against the app served
by uvicorn. The holiday flow runs at 13:00 on Sat 3 Oct, three hours before the day's report is
due (16:00; the duty's ``daily`` reminder set: 3 hours before): the principal of 一小 gets the
reminder, opens its link, taps 平安无事, confirms, and the report is filed as ``pingan watch
report`` files it; their own page (the link every message ends with) then shows it.

Skipped, with the reason shown, where Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from factories import at, make_org, rows
from test_browser import CHROMIUM, CHROMIUM_ARGS, Clock, Served, sync_playwright

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


def test_a_principal_files_the_zero_report_from_the_reminder_on_a_phone(migrated_db, monkeypatch):
    sent: list = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    port = free_port()
    monkeypatch.setenv("PINGAN_BASE_URL", f"http://127.0.0.1:{port}")
    reset_settings()
    reset_runtime()
    rt = build_runtime(Settings(catalog_dir=CATALOG, send_backoff=0), load_catalog(CATALOG))
    with session_scope() as session:
        ids = make_org(session)
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
