"""A small named organisation and a test catalog, shared by the database-level tests.

The bureau 局 (principal 局长, safety deputy 副局长甲, leader 副局长乙); the safety section
安全科 (head 安全科长); the office 办公室 (head 办公室主任, 分管 by 副局长乙); two schools
一小 and 二中 (principal + safety officer each, both 包保 by 副局长乙) and a kindergarten
幼儿园 (principal only, 包保 by 副局长甲).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import shutil
import time
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from models import Channel, Person, Role, Unit
from pingan.duties.catalog import load_catalog
from pingan.duties.runtime import Runtime, build_runtime
from pingan.core.settings import REPO_ROOT, Settings
from pingan.delivery.transports import Outcome

UNITS = [
    ("B", "局", "bureau", None, None, False),
    ("SAFE", "安全科", "department", "B", "safety", False),
    ("OFF", "办公室", "department", "B", "office", False),
    ("S1", "一小", "primary", "B", None, True),
    ("S2", "二中", "junior", "B", None, False),
    ("K1", "幼儿园", "kindergarten", "B", None, False),
]
PERSONS = [  # code, name, unit, roles [(role, unit)]
    ("chief", "局长", "B", [("principal", "B")]),
    ("dep-a", "副局长甲", "B", [("safety_lead", "B"), ("leader", "B"), ("patron", "K1")]),
    ("dep-b", "副局长乙", "B", [("leader", "B"), ("in_charge", "OFF"), ("patron", "S1"), ("patron", "S2")]),
    ("safe-head", "安全科长", "SAFE", [("principal", "SAFE")]),
    ("off-head", "办公室主任", "OFF", [("principal", "OFF")]),
    ("s1-head", "一小校长", "S1", [("principal", "S1")]),
    ("s1-safe", "一小安全主任", "S1", [("safety_officer", "S1")]),
    ("s2-head", "二中校长", "S2", [("principal", "S2")]),
    ("s2-safe", "二中安全主任", "S2", [("safety_officer", "S2")]),
    ("k1-head", "园长", "K1", [("principal", "K1")]),
]


def make_org(session: Session, *, channel=lambda code: f"pingan://local/{code}") -> dict[str, int]:
    """Insert the organisation; return person and unit ids by code."""
    ids: dict[str, int] = {}
    for code, name, kind, parent, function, bus in UNITS:
        unit = Unit(code=code, name=name, kind=kind, parent_id=ids.get(parent), function=function, has_school_bus=bus)
        session.add(unit)
        session.flush()
        ids[code] = unit.id
    for code, name, unit, roles in PERSONS:
        person = Person(code=code, name=name, unit_id=ids[unit])
        session.add(person)
        session.flush()
        ids[code] = person.id
        session.add(Channel(person_id=person.id, priority=1, url=channel(code)))
        for role, where in roles:
            session.add(Role(person_id=person.id, unit_id=ids[where], role=role))
    session.flush()
    return ids


DUTIES = """
document: test.txt
title: 测试清单
duties:
  - key: school-meeting
    name: 学校安全形势分析会
    name_en: School monthly safety meeting
    source: {document: test.txt, clause: 七（四）}
    text: 每月至少召开 1 次安全稳定工作形势分析会议
    carrier: {unit_kinds: [primary, junior], roles: [principal, safety_officer]}
    cadence: {every: monthly}
    evidence: [meeting_minutes]
    reminders: periodic
    escalation: standard
  - key: kindergarten-drill
    name: 幼儿园季度演练
    name_en: Kindergarten quarterly drill
    source: {document: test.txt, clause: 七（七）}
    text: 幼儿园每季度开展一次不同主题的安全演练
    carrier: {unit_kinds: [kindergarten], roles: [principal]}
    cadence: {every: quarterly}
    evidence: [drill_record]
    reminders: periodic
    escalation: standard
  - key: office-report
    name: 科室安全工作汇报
    name_en: Department safety report
    source: {document: test.txt, clause: 六（一）}
    text: 科室每月汇报安全工作
    carrier: {unit_kinds: [department], unit_functions: [office], roles: [principal]}
    cadence: {every: monthly}
    evidence: [meeting_minutes]
    reminders: periodic
    escalation: standard
  - key: leader-inspection
    name: 班子成员季度检查
    name_en: Leader quarterly inspection
    source: {document: test.txt, clause: 一（五）}
    text: 局领导班子其他成员每季度至少组织 1 次检查
    carrier: {scope: person, unit_kinds: [bureau], roles: [leader]}
    cadence: {every: quarterly}
    evidence: [inspection_record]
    reminders: periodic
    escalation: leadership
    sensitive: {every: weekly}
"""


def make_catalog_dir(tmp_path: Path, duties: str = DUTIES) -> Path:
    """A catalog directory with the shipped evidence kinds and policies and the test duties."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    for name in ("evidence.yaml", "policies.yaml"):
        shutil.copy(REPO_ROOT / "catalog" / name, directory / name)
    (directory / "test.yaml").write_text(textwrap.dedent(duties), encoding="utf-8")
    return directory


def make_runtime(tmp_path: Path, **settings) -> Runtime:
    catalog_dir = make_catalog_dir(tmp_path)
    s = Settings(catalog_dir=catalog_dir, **settings)
    return build_runtime(s, load_catalog(catalog_dir))


def at(day: str, hm: str = "10:00") -> dt.datetime:
    from pingan.core.clock import TZ

    return dt.datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=TZ)


def image(fmt: str, *, seed: str = "", **options) -> bytes:
    """A real picture in ``fmt`` (the evidence checks open every picture), 48×32 pixels of one
    colour; a different seed gives a different colour, so different bytes. ``options`` go to
    Pillow's ``save`` (quality, progressive, exif …)."""
    import hashlib
    import io

    from PIL import Image

    red, green, blue = hashlib.sha256(seed.encode()).digest()[:3]
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (red, green, blue)).save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(seed: str = "") -> bytes:
    """A phone's JPEG photo (see ``image``)."""
    return image("JPEG", seed=seed, quality=85)


def rows(session: Session, sql: str, **params) -> list:
    return session.execute(sa.text(sql), params).all()


class Recorder:
    """The one test double of ``pingan.delivery.transports.deliver``: records every call as
    ``(url, title, body)`` and answers from ``script`` — per URL, a list of outcomes used one
    per call (then success), or one function ``(url, title, body) -> Outcome`` — success by
    default. Thread-safe, like the real ``deliver``. The ``sent`` fixture installs one."""

    def __init__(self, script: Mapping[str, Sequence[Outcome]] | Callable[[str, str, str], Outcome] | None = None):
        self.answer = script if callable(script) else None
        self.script = {} if callable(script) else {url: list(outs) for url, outs in (script or {}).items()}
        self.calls: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, title: str, body: str, *, timeout: float) -> Outcome:
        with self.lock:
            self.calls.append((url, title, body))
            queue = self.script.get(url)
            scripted = queue.pop(0) if queue else None
        if self.answer is not None:
            return self.answer(url, title, body)
        return scripted or Outcome(ok=True)

    def to(self) -> Counter:
        """Calls per recipient (the person code that ends each test channel URL)."""
        with self.lock:
            return Counter(url.rsplit("/", 1)[-1] for url, _, _ in self.calls)

    def sent_to(self, url: str) -> list[tuple[str, str, str]]:
        with self.lock:
            return [c for c in self.calls if c[0] == url]


# --------------------------------------------------------------------------- a loopback HTTP sink

class Sink(http.server.ThreadingHTTPServer):
    """A loopback HTTP server for channels (``json://127.0.0.1:<port>/<path>``).

    POST ``/<status>/…`` answers that status, ``/slow/…`` after ``slow`` seconds, ``/hang/…``
    never (until the sink stops); ``script`` maps a path to the statuses of its successive
    requests (then 200). Every request is kept in ``received`` as {"path", "headers", "json"};
    ``connections`` counts the TCP connections opened (keep-alive shows as few).
    """

    daemon_threads = True
    request_queue_size = 128
    slow = 1.0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: list[dict] = []
        self.script: dict[str, list[int]] = {}
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def paths(self) -> Counter:
        with self.lock:
            return Counter(r["path"] for r in self.received)

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    server: Sink
    protocol_version = "HTTP/1.1"  # keep-alive, as real webhooks answer

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.server.lock:
            self.server.received.append({"path": self.path, "headers": dict(self.headers), "json": body})
            script = self.server.script.get(self.path.split("?")[0])
            scripted = script.pop(0) if script else None
        first = self.path.strip("/").split("/")[0].split("?")[0]
        if first == "slow":
            time.sleep(self.server.slow)
        if first == "hang":
            self.server.stopping.wait()
            self.close_connection = True  # no answer, and the connection closes: the client sees it at once
            return
        status = scripted or (int(first) if first.isdigit() else 200)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:
            pass  # the client gave up (a timeout)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def running_sink() -> Iterator[Sink]:
    server = Sink()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
