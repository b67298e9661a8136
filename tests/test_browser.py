"""A real browser on a phone-sized screen: headless Chromium (Debian's package) driven by Playwright.

Two schools get their monthly-meeting reminders from the real outbox; each principal opens the
link in the reminder, fills the form, uploads files and hands in. Then ``pingan evidence
accept`` (first school) and ``pingan evidence reject`` (second school) decide what the next duty
cycles do: nothing more for the accepted task; for the rejected one the people are told why,
reminders go on and escalation climbs with reason "rejected".

Skipped, with the reason shown, where Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import json
import os
import re
import threading
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import uvicorn
from factories import at, make_catalog_dir, make_org, rows
from test_evidence import JPEG, PDF
from typer.testing import CliRunner

from models import Occurrence
from pingan.delivery.workflow import dispatch
from pingan.duties.workflow import cycle
from pingan.delivery import transports
from pingan.duties.catalog import load_catalog
from pingan.cli import app as cli
from pingan.core.db import session_scope
from pingan.duties.runtime import build_runtime, reset_runtime
from pingan.core.settings import Settings, reset_settings
from pingan.delivery.transports import Outcome
from pingan.web import create_app
from pingan.cli.supervisor import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright is not installed: pip install -e '.[test]'"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]




class Served:
    """The app served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self, app, port: int):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        ready = threading.Event()
        while not self.server.started and self.thread.is_alive():
            ready.wait(0.02)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


class Clock:
    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


def link_for(sent: list, code: str) -> str:
    body = next(b for url, b in sent if url.endswith(f"/{code}"))
    return re.search(r"https?://\S+/e/\S+", body)[0]


def hand_in(browser, link: str, files: list[dict]) -> tuple[str, str]:
    """Open the link on a phone, fill the form, upload, send; (confirmation text, state shown)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(link)
    assert page.locator("h1").inner_text() == "学校安全形势分析会"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # one column, no sideways scrolling
    assert page.locator("button[type=submit]").bounding_box()["height"] >= 44  # a thumb can hit it
    page.fill("input[name=f_date]", "2026-11-11")
    page.fill("textarea[name=f_attendees]", "校长、安全主任、各年级组长")
    page.fill("textarea[name=f_topics]", "冬季防火与校车安全")
    page.fill("textarea[name=f_decisions]", "安全主任牵头，11月20日前完成消防设施检查")
    # first a file that only claims to be a PDF: the page says why and keeps what was typed
    page.set_input_files("input[name=files]", files=[{"name": "纪要.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf"}])
    page.click("button[type=submit]")
    assert "文件「纪要.pdf」的内容不是 PDF 文件" in page.locator("#errors").inner_text()
    assert page.input_value("textarea[name=f_topics]") == "冬季防火与校车安全"
    page.set_input_files("input[name=files]", files=files)
    page.fill("textarea[name=note]", "附签到表")
    page.click("button[type=submit]")
    confirmation = page.locator("#confirmation").inner_text()
    state = page.locator("#state").get_attribute("data-state")
    context.close()
    return confirmation, state


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL: test_web and test_evidence
def test_a_person_hands_in_from_a_phone_and_review_from_the_cli_drives_the_next_cycles(tmp_path, migrated_db, monkeypatch):
    sent: list = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    port = free_port()
    catalog_dir = make_catalog_dir(tmp_path)
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(catalog_dir))  # the CLI builds its runtime from these
    monkeypatch.setenv("PINGAN_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PINGAN_SEND_BACKOFF", "0")
    reset_settings()
    reset_runtime()
    rt = build_runtime(Settings(), load_catalog(catalog_dir))
    with session_scope() as session:
        ids = make_org(session)
    cycle(rt, "school-meeting", at("2026-11-10"))
    dispatch(rt, at("2026-11-10"))
    links = {code: link_for(sent, code) for code in ("s1-head", "s2-head")}
    assert all(urlsplit(link).netloc == f"127.0.0.1:{port}" for link in links.values())

    with Served(create_app(runtime=rt, clock=Clock(at("2026-11-12"))), port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for code in ("s1-head", "s2-head"):
                confirmation, state = hand_in(browser, links[code], [
                    {"name": "11月安全形势分析会纪要.pdf", "mimeType": "application/pdf", "buffer": PDF},
                    {"name": "签到表.jpg", "mimeType": "image/jpeg", "buffer": JPEG},
                ])
                assert confirmation == "提交成功：已收到第 1 版材料，等待审核。" and state == "submitted"
        finally:
            browser.close()

    with session_scope() as session:
        tasks = dict(session.execute(sa.select(Occurrence.unit_id, Occurrence.id)).all())
        assert rows(session, "select review from occurrence order by id") == [("submitted",), ("submitted",)]
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["evidence", "list", "--json"]).output)
    by_unit = {r["unit"]: r for r in listed}
    assert sorted(by_unit) == ["一小", "二中"] and {r["files"] for r in listed} == {2}
    result = runner.invoke(cli, ["evidence", "accept", str(by_unit["一小"]["id"]), "--as-of", "2026-11-13T10:00"])
    assert result.exit_code == 0, result.output
    sent.clear()
    result = runner.invoke(cli, ["evidence", "reject", str(by_unit["二中"]["id"]), "--reason", "签到表缺少校长签字",
                                 "--as-of", "2026-11-13T10:00"])
    assert result.exit_code == 0, result.output
    told = {url.rsplit("/", 1)[1]: body for url, body in sent}
    assert sorted(told) == ["s2-head", "s2-safe"]
    assert "签到表缺少校长签字" in told["s2-head"] and f"http://127.0.0.1:{port}/e/" in told["s2-head"]

    # the day before the deadline, then a week past it
    for day in ("2026-11-30", "2026-12-07"):
        cycle(rt, "school-meeting", at(day))
        dispatch(rt, at(day))
    with session_scope() as session:
        notices = rows(session, "select occurrence_id, kind, step from notice where kind in ('reminder', 'escalation') "
                                "and occurrence_id in (:a, :b) order by id", a=tasks[ids["S1"]], b=tasks[ids["S2"]])
        fired = rows(session, "select occurrence_id, level, reason from escalation order by occurrence_id, level")
    accepted = [n for n in notices if n.occurrence_id == tasks[ids["S1"]]]
    rejected = [n for n in notices if n.occurrence_id == tasks[ids["S2"]]]
    assert [n.step for n in accepted] == ["open", "open"]  # nothing after the acceptance
    assert ("reminder", "due-1d") in {(n.kind, n.step) for n in rejected} and ("escalation", "L2") in {(n.kind, n.step) for n in rejected}
    assert fired == [(tasks[ids["S2"]], 1, "rejected"), (tasks[ids["S2"]], 2, "rejected")]
    escalated = next(body for url, body in sent if url.endswith("/dep-b") and "督办" in body)
    assert "二中" in escalated and "材料被退回未重新提交" in escalated and "一小「" not in escalated
