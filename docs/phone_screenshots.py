"""Screenshots of the person's page, the one-tap zero report and the leader's page, on a phone.

    .venv/bin/python docs/phone_screenshots.py [--out docs/img]

In-process, without Prefect: a throw-away home with the demo organisation (SQLite), the holiday
flow run at 13:00 on Sat 3 Oct 2026 (National Day), its reminders composed into messages, and
the web app served on a loopback port with its clock at 13:05 (17:00 for the leader's page, past
the day's deadline). Headless Chromium (Debian's ``chromium``; ``fonts-noto-cjk`` for Chinese)
at 390×844, driven by Playwright.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TZ = dt.timezone(dt.timedelta(hours=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="pingan-phone-"))
    for name in [n for n in os.environ if n.startswith("PINGAN_")]:
        del os.environ[name]
    from pingan.cli.supervisor import free_port

    port = free_port()
    os.environ.update(PINGAN_HOME=str(home), PINGAN_DEMO="1", PINGAN_DIGEST_MORNING="",
                      PINGAN_DATABASE_URL=f"sqlite:///{home / 'pingan.db'}", PINGAN_BASE_URL=f"http://127.0.0.1:{port}")
    try:
        shoot(args.out, home, port)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def shoot(out: Path, home: Path, port: int) -> None:
    import sqlalchemy as sa
    import uvicorn
    from playwright.sync_api import sync_playwright

    from models import Person, Role, Unit
    from pingan.core.db import session_scope
    from pingan.core.migrate import upgrade
    from pingan.delivery.workflow import dispatch
    from pingan.duties.runtime import get_runtime
    from pingan.duties.service import ensure_catalog
    from pingan.org.demo import demo_organisation
    from pingan.org.service import store_org
    from pingan.watch.workflow import WATCH
    from pingan.web import create_app

    upgrade("head")
    rt = get_runtime()
    ensure_catalog(rt)
    with session_scope() as session:
        store_org(session, demo_organisation(), actor="docs")
    for hour in (9, 13):
        moment = dt.datetime(2026, 10, 3, hour, tzinfo=TZ)
        WATCH.run(rt, as_of=moment)
        dispatch(rt, moment)
    with session_scope() as session:
        principal, leader = session.execute(sa.select(Person.code).join(Role, Role.person_id == Person.id)
                                            .join(Unit, Unit.id == Role.unit_id)
                                            .where(Role.role == "principal", Unit.kind == "primary")
                                            .order_by(Unit.code).limit(1)).scalar_one(), \
            session.execute(sa.select(Person.code).join(Role, Role.person_id == Person.id)
                            .where(Role.role == "patron").order_by(Person.code).limit(1)).scalar_one()
    bodies = [json.loads(line) for line in (home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]

    def links_of(code: str) -> tuple[str, str]:
        body = [b["body"] for b in bodies if b.get("url", "").endswith(code) or code in json.dumps(b)][-1]
        return re.findall(r"https?://\S+/e/\S+", body)[-1], re.search(r"https?://\S+/m/\S+", body)[0]

    from typer.testing import CliRunner

    from pingan.cli import app as cli

    hand_in, page = links_of(principal)
    shown = CliRunner().invoke(cli, ["person", "link", "show", leader]).output
    lead = re.search(r"http\S+/m/\S+", shown)[0] + "/lead"
    clock = [dt.datetime(2026, 10, 3, 13, 5, tzinfo=TZ)]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=rt, clock=lambda: clock[0]), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         args=CHROMIUM_ARGS)
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="zh-CN")
            phone.goto(page, wait_until="networkidle")
            phone.screenshot(path=out / "my-page-phone.png", full_page=True)
            phone.goto(hand_in, wait_until="networkidle")
            if phone.locator("#ok").count():
                phone.locator("#ok").click()
                phone.screenshot(path=out / "zero-report-confirm-phone.png", full_page=True)
            clock[0] = dt.datetime(2026, 10, 3, 17, 0, tzinfo=TZ)
            phone.goto(lead, wait_until="networkidle")
            phone.screenshot(path=out / "leader-page-phone.png")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    print("saved", ", ".join(str(out / n) for n in ("my-page-phone.png", "zero-report-confirm-phone.png",
                                                    "leader-page-phone.png")))


if __name__ == "__main__":
    sys.exit(main())
