"""``python -m bench.coldstart``: how long ``pingan up`` takes until the operator can work.

    python -m bench.coldstart                 # a fresh home, then the same home started again
    python -m bench.coldstart --restarts 2

Each start runs ``python -m pingan up --demo`` on free loopback ports and watches it from
Prefect's API only (never from the job's log), every second:

- **server**: ``/api/health`` answers;
- **first deployment**: the API counts one of pingan's deployments;
- **registered**: it counts every deployment of the catalog;
- **all READY**: every deployment of the catalog (``deployments.build.all_specs``) is listed
  with status READY — what the UI shows the operator;
- **says ready**: the job prints that it has started (its own claim, checked against the API's).

Floor, same run: ``prefect server start`` alone on another port until ``/api/health`` answers —
the part of a cold start pingan cannot make shorter. The job is stopped with SIGTERM after each
start. Results go to the console and ``bench/out/coldstart-<time>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.report import machine, write_json
from pingan.cli.supervisor import free_port, http_ok, stop_group
from pingan.core.settings import REPO_ROOT

OUT = Path(__file__).resolve().parent / "out"
READY_LINE = ("pingan 已启动", "pingan is up")


def _get(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return json.loads(reply.read() or b"null")
    except (OSError, ValueError):
        return None


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    api = f"http://127.0.0.1:{port}/api"
    env.update(PINGAN_HOME=str(home), PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_API_URL=api)
    return env


def start_once(home: Path, expected: int, timeout: float) -> dict:
    port, web_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    out = home.parent / f"up-{port}.out"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pingan", "up", "--demo", "--port", str(port), "--web-port", str(web_port)],
                            env=_env(home, port), cwd=REPO_ROOT, stdout=out.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    marks: dict[str, float] = {}
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"bench.coldstart: pingan up exited {proc.returncode}:\n{out.read_text(errors='replace')[-2000:]}")
            now = time.perf_counter() - t0
            if "server" not in marks and http_ok(f"{api}/health"):
                marks["server"] = now
            if "server" in marks:
                # the count first (cheap); the whole list, with each deployment's parameter schema,
                # only once all are registered: the observer must not load the server it watches
                count = _get(f"{api}/deployments/count", {}) or 0
                if count and "first_deployment" not in marks:
                    marks["first_deployment"] = now
                if count >= expected:
                    rows = _get(f"{api}/deployments/filter", {"limit": 200}) or []
                    marks["registered"] = marks.get("registered", now)
                    ready = sum(1 for d in rows if d.get("status") == "READY")
                    marks["ready_count"] = ready
                    if ready >= expected and "all_ready" not in marks:
                        marks["all_ready"] = now
            if "says_ready" not in marks and any(line in out.read_text(errors="replace") for line in READY_LINE):
                marks["says_ready"] = now
            if "all_ready" in marks and "says_ready" in marks:
                break
            time.sleep(1.0)
    finally:
        stop_group(proc, 60)
    if "all_ready" not in marks:
        raise SystemExit(f"bench.coldstart: {marks.get('ready_count', 0)} of {expected} deployments READY after {timeout:.0f} s")
    return marks


def server_floor(tmp: Path) -> float:
    port = free_port()
    env = _env(tmp / "floor-home", port)
    env["PREFECT_HOME"] = str(tmp / "floor-prefect")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while not http_ok(f"http://127.0.0.1:{port}/api/health"):
            if proc.poll() is not None or time.perf_counter() - t0 > 300:
                raise SystemExit("bench.coldstart: the bare Prefect server did not start")
            time.sleep(1.0)
        return time.perf_counter() - t0
    finally:
        stop_group(proc, 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=1, help="starts of the same home after the first (default 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all READY (default 600)")
    args = parser.parse_args(argv)

    from deployments.build import all_specs
    from pingan.duties.catalog import load_catalog

    expected = len(all_specs(load_catalog()))
    facts, load_before = machine(), os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-coldstart-"))
    home = tmp / "home"
    result: dict = {"command": "python -m bench.coldstart " + " ".join(sys.argv[1:] if argv is None else argv),
                    "deployments": expected, "starts": []}
    print(f"bench.coldstart: {expected} deployments, {facts['nproc']} CPU(s); load average {load_before[0]:.1f}")
    floor = server_floor(tmp)
    result["floor_server_seconds"] = floor
    print(f"  floor: a bare Prefect server answers after {floor:.1f} s")
    for i in range(1 + args.restarts):
        label = "fresh home" if i == 0 else f"restart {i}"
        marks = start_once(home, expected, args.timeout)
        marks["label"] = label
        result["starts"].append(marks)
        print(f"  {label}: server {marks['server']:.1f} s, first deployment {marks['first_deployment']:.1f} s, "
              f"all registered {marks['registered']:.1f} s, all {expected} READY {marks['all_ready']:.1f} s ({marks['all_ready'] / floor:.1f}× the floor), "
              f"says ready {marks['says_ready']:.1f} s")
    facts["loadavg_before"], facts["loadavg_after"] = load_before, os.getloadavg()
    result["machine"] = facts
    path = OUT / f"coldstart-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    write_json(path, result)
    print(f"load average {load_before[0]:.1f} before, {facts['loadavg_after'][0]:.1f} after; results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
