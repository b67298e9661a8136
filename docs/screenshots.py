"""Screenshots of the operator's view for the README, taken from a real main job.

    .venv/bin/python docs/screenshots.py [--out docs/img]

Starts ``pingan up --demo`` in a throw-away home on free loopback ports, runs one duty for a
fixed instant, opens the Prefect UI in headless Chromium (Debian's ``chromium`` package, driven
by Playwright with its executable path) and saves the deployments list, a run's artifacts and,
when the evidence page is up, the hand-in page of one task. Stops everything at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from pingan.cli.supervisor import free_port, poll

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DUTY = "school-monthly-safety-meeting"
AS_OF = "2026-11-23T10:00:00+08:00"






def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="pingan-shots-"))
    port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update(PINGAN_HOME=str(home), NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
    log = home / "up.out"
    job = subprocess.Popen([sys.executable, "-m", "pingan", "up", "--demo", "--port", str(port),
                            "--web-port", str(web_port)], env=env, cwd=ROOT, stdout=log.open("wb"),
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready():
            if job.poll() is not None:
                raise SystemExit(f"pingan up exited:\n{log.read_text(errors='replace')}")
            return "pingan 已启动" in log.read_text(errors="replace")
        poll(ready, 300, "pingan up")
        ui = f"http://127.0.0.1:{port}"

        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from deployments.build import all_specs
        from pingan.duties.catalog import load_catalog

        spec = next(s for s in all_specs(load_catalog()) if s.parameters.get("duty") == DUTY)
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        with temporary_settings(updates={PREFECT_API_URL: f"{ui}/api"}):
            run = run_deployment(f"duty-cycle/{spec.name}", parameters={"as_of": AS_OF}, timeout=300)
            with get_client(sync_client=True) as client:
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        table = next(a for a in artifacts if a.type == "table")
        print(f"ran {run.name}: {run.state.type.value}")

        hand_in = None
        outbox = home / "outbox.jsonl"
        if outbox.exists():
            for line in outbox.read_text(encoding="utf-8").splitlines():
                found = re.search(r"https?://[^\s]+/e/[^\s]+", json.loads(line).get("body", ""))
                if found:
                    hand_in = found.group(0)
                    break

        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page.goto(f"{ui}/deployments", wait_until="networkidle")
            page.get_by_text("duty-cycle").first.wait_for(timeout=60_000)
            page.screenshot(path=args.out / "deployments.png")
            page.goto(f"{ui}/runs/flow-run/{run.id}", wait_until="networkidle")
            page.get_by_text("publish").first.wait_for(timeout=30_000)
            page.screenshot(path=args.out / "run.png")
            page.goto(f"{ui}/artifacts/artifact/{table.id}", wait_until="networkidle")
            page.get_by_text("open", exact=False).first.wait_for(timeout=30_000)
            page.screenshot(path=args.out / "run-artifacts.png", full_page=True)
            saved = ["deployments.png", "run.png", "run-artifacts.png"]
            if hand_in:
                phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="zh-CN")
                phone.goto(hand_in, wait_until="networkidle")
                phone.screenshot(path=args.out / "hand-in-phone.png", full_page=True)
                saved.append("hand-in-phone.png")
            browser.close()
        print("saved", ", ".join(str(args.out / name) for name in saved))
    finally:
        if job.poll() is None:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(120)
            except subprocess.TimeoutExpired:
                job.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
