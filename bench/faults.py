"""Kill the dispatcher with ``kill -9`` at a random point and count what was lost and repeated.

    python -m bench.faults                      # 5 trials, 1,000 messages, sink answering in 20 ms
    python -m bench.faults --trials 3 --messages 500 --delay-ms 50 --seed 7

Each trial: a fresh SQLite database with one person per message (a path of the loopback sink
each), one announcement each, composed into 1,000 messages; ``pingan dispatch`` in a process of
its own, killed with SIGKILL at a random moment while it sends; then ``pingan dispatch`` again
and again, as the sweep would, with no setting changed — the dead claims are taken back once
nobody has renewed them for the lease (60 s) — until every message is sent. The sink counts
the requests of every path: a person with none was lost, a person with two got a repeat.

The guarantee measured: 0 lost, and repeats no more than the send concurrency (the calls in
flight at the kill). Results go to the console and ``bench/out/faults-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.sink import Sink

ROOT = Path(__file__).resolve().parent.parent


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PREFECT_"))}
    env.update({"PINGAN_HOME": str(home), "PINGAN_DEMO": "1", "PINGAN_DIGEST_MORNING": "",
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    return env


def _prepare(home: Path, sink: Sink, messages: int) -> None:
    """A database with ``messages`` persons (one channel each) and one composed message each."""
    script = f"""
import sqlalchemy as sa
from models import Channel, NoticeKind, Person, Unit
from pingan.core.clock import now
from pingan.core.db import session_scope
from pingan.core.migrate import upgrade
from pingan.delivery import notices
from pingan.delivery.outbox import compose
from pingan.duties.runtime import get_runtime

upgrade()
rt = get_runtime()
stamp = now()
with session_scope() as session:
    unit = Unit(code="U", name="单位", kind="primary")
    session.add(unit)
    session.flush()
    people = [Person(code=f"p{{n:05d}}", name=f"人员{{n}}", unit_id=unit.id) for n in range({messages})]
    session.add_all(people)
    session.flush()
    session.add_all([Channel(person_id=p.id, url=f"json://127.0.0.1:{sink.port}/sink/{{p.code}}") for p in people])
    notices.queue(session, [notices.notice(p.id, "fault", NoticeKind.announcement, "t", {{"text": "演练消息"}}, stamp)
                            for p in people])
with session_scope() as session:
    compose(session, rt.settings, stamp, describe=rt.describe)
"""
    subprocess.run([sys.executable, "-c", script], env=_env(home), cwd=ROOT, check=True)


def _dispatch(home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pingan", "dispatch"], env=_env(home), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _unsent(home: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{home / 'pingan.db'}")
    with engine.connect() as conn:
        left = conn.execute(sa.text("select count(*) from message where status != 'sent'")).scalar()
    engine.dispose()
    return left


def trial(n: int, messages: int, delay_ms: float, rng: random.Random) -> dict:
    with tempfile.TemporaryDirectory(prefix="pingan-fault-") as tmp, Sink(delay_ms=delay_ms) as sink:
        home = Path(tmp)
        _prepare(home, sink, messages)
        proc = _dispatch(home)
        # kill while it sends: after a random share of the first run's messages reached the sink
        target = int(messages * rng.uniform(0.1, 0.9))
        while sink.stats()["requests"] < target and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = sink.stats()["requests"]
        t0, runs = time.monotonic(), 0
        while _unsent(home):  # the sweep, every few seconds, settings untouched
            runs += 1
            subprocess.run([sys.executable, "-m", "pingan", "dispatch"], env=_env(home), cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if _unsent(home):
                time.sleep(5)
            if time.monotonic() - t0 > 600:
                break
        paths = sink.stats(paths=True)["paths"]
        per_person = [paths.get(f"/sink/p{k:05d}", 0) for k in range(messages)]
        return {
            "trial": n, "messages": messages, "killed_after": at_kill, "recovered_in_s": round(time.monotonic() - t0, 1),
            "sweep_runs": runs, "lost": sum(1 for c in per_person if c == 0),
            "repeats": sum(c - 1 for c in per_person if c > 1), "unsent_left": _unsent(home),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="how slowly the sink answers")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    from pingan.core.settings import get_settings

    concurrency = get_settings().send_concurrency
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    results = [trial(n + 1, args.messages, args.delay_ms, rng) for n in range(args.trials)]
    for r in results:
        print(f"trial {r['trial']}: killed after {r['killed_after']} of {r['messages']} sends; recovered in "
              f"{r['recovered_in_s']} s ({r['sweep_runs']} sweep run(s)); lost {r['lost']}, repeats {r['repeats']} "
              f"(send concurrency {concurrency})")
    ok = all(r["lost"] == 0 and r["unsent_left"] == 0 and r["repeats"] <= concurrency for r in results)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"seed": seed, "delay_ms": args.delay_ms, "send_concurrency": concurrency,
                                "load_average": os.getloadavg(), "trials": results}, indent=2))
    print(f"{'held' if ok else 'FAILED'}: 0 lost and repeats ≤ {concurrency} in every trial? {ok}; seed {seed}; {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
