"""The main job: pingan's database, a local Prefect server and UI, the served deployments, the evidence page.

``pingan up`` calls ``MainJob(...).run()``. Each part is a child process in its own process
group with its log in ``<home>/logs``; Prefect keeps its own SQLite file in ``<home>/prefect``
(pingan's tables never go there). Ctrl-C or SIGTERM stops the children in reverse order;
a child that dies on its own stops the rest and the job exits non-zero with its log's tail.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pingan.core.i18n import register, t
from pingan.core.settings import REPO_ROOT, Settings, record_in_home

register({
    "up.say.upgrade": {"zh-CN": "Prefect：升级数据库 …", "en": "Prefect: database upgrade …"},
    "up.say.server": {"zh-CN": "Prefect 服务器启动中：{url} …", "en": "Prefect server starting on {url} …"},
    "up.say.registering": {"zh-CN": "注册 {n} 个部署，等待 API 显示全部就绪（READY）…",
                           "en": "registering {n} deployments, waiting until the API shows them READY …"},
    "up.what.prefect": {"zh-CN": "Prefect", "en": "Prefect"},
    "up.what.web": {"zh-CN": "证据页面", "en": "evidence page"},
    "up.port_in_use": {"zh-CN": "{at}（{what}）已被占用：请停止占用它的程序，或换一个端口（--port / --web-port）",
                       "en": "{at} ({what}) is already in use: stop what runs there or choose another port (--port / --web-port)"},
    "up.child_died": {"zh-CN": "{name} 已退出（代码 {code}）；{log} 的最后几行：", "en": "{name} exited with code {code}; last lines of {log}:"},
    "up.upgrade_failed": {"zh-CN": "Prefect 数据库升级失败：", "en": "prefect server database upgrade failed:"},
    "up.locked": {"zh-CN": "此数据目录 {home} 已有主程序在运行（进程 {pid}，Prefect 端口 {port}，证据页面端口 {web_port}）：先停止它，或换一个 PINGAN_HOME",
                  "en": "a main job already runs on {home} (pid {pid}, Prefect port {port}, evidence page port {web_port}): stop it first, or use another PINGAN_HOME"},
})
LOCK_FILE = "mainjob.lock"


class MainJobError(RuntimeError):
    """Something the operator can fix (a port in use, a child that would not start)."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def prefect_env(settings: Settings, host: str, port: int) -> dict[str, str]:
    """The environment of every Prefect process of the main job (server, runner, CLI calls)."""
    home = settings.home.resolve()
    api = f"http://{host}:{port}/api"
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect' / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Concurrency slots (the dispatcher's limit of 1) survive a server restart: the default
        # in-memory leases would leak a slot whose holder died while the server was down.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "PINGAN_HOME": str(home),
        "PINGAN_CODE_DIR": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    })
    if settings.database_url:
        env["PINGAN_DATABASE_URL"] = settings.database_url
    if settings.demo:
        env["PINGAN_DEMO"] = "1"
    env.pop("PREFECT_PROFILE", None)
    env.pop("PREFECT_API_KEY", None)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and a second main job on one machine)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``) and its children: SIGTERM to its
    process group, SIGKILL if it is still there after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def poll(check: Callable[[], object], timeout: float, what: str, error: type[Exception] = AssertionError):
    """Call ``check`` twice a second until it returns something truthy, and return that.

    For waiting on a condition another process reaches by itself (a server answering, a run
    finishing); raises ``error`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.5)


def wait_until(check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], None]) -> None:
    """Poll ``check`` until it holds; ``alive`` raises if a child died meanwhile."""
    poll(lambda: (alive(), check())[1], timeout, what, MainJobError)


def http_ok(url: str) -> bool:
    return health(url) is None


def health(url: str) -> str | None:
    """None when ``url`` answers 200; else what it answered (a health check names what is down)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.read(300).decode(errors='replace').strip()}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


class HomeLock:
    """One main job per home: ``<home>/mainjob.lock`` holds the holder's pid and ports.

    The file is locked with ``flock`` for as long as the holder lives: the kernel releases it
    when the process dies however it dies, so a lock left by a dead pid is simply taken over,
    and two jobs starting at once cannot both get it.
    """

    def __init__(self, home: Path):
        self.path = Path(home) / LOCK_FILE
        self.fd: int | None = None

    def holder(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self, *, port: int, web_port: int | None) -> None:
        """Take the lock, or raise MainJobError naming the holder (its pid and ports)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held = self.holder()
            raise MainJobError(t("up.locked", home=self.path.parent.resolve(), pid=held.get("pid", "?"),
                                 port=held.get("port", "?"), web_port=held.get("web_port") or "—")) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "port": port, "web_port": web_port,
                                 "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.name} starting\n".encode())
        out.flush()
        self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True)
        out.close()

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace)


@dataclass
class MainJob:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = 4200
    web_port: int = 8400
    limit: int = 4
    web: bool = True
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    @property
    def public_url(self) -> str:
        """Where links in messages point: the operator's PINGAN_BASE_URL, else this job's evidence page."""
        if "base_url" in self.settings.model_fields_set:  # set by a variable or .env, not recorded by a job
            return self.settings.base_url
        return self.web_url

    def _child(self, name: str, *argv: str) -> Child:
        return Child(name, list(argv), self.settings.home.resolve() / "logs" / f"{name}.log")

    def _check_children(self) -> None:
        for child in self.children:
            code = child.exited()
            if code is not None:
                raise MainJobError(t("up.child_died", name=child.name, code=code, log=child.log) + f"\n{child.tail()}")

    def _deployments_ready(self, env: dict[str, str], expected: int, since: dt.datetime) -> Callable[[], bool]:
        """True once ``expected`` deployments are READY in the API, polled by this job's runner.

        READY is what the UI shows; a deployment is READY when a runner polled it lately, so a
        deployment an earlier job left READY counts only once polled after ``since``.
        """

        def post(path: str, body: dict):
            request = urllib.request.Request(f"{env['PREFECT_API_URL']}{path}", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        def ready_count() -> int:
            if post("/deployments/count", {}) < expected:  # cheap, while the runner still registers them
                return 0
            count, offset, page = 0, 0, 200
            while True:
                rows = post("/deployments/filter", {"limit": page, "offset": offset})
                count += sum(1 for d in rows if d.get("status") == "READY" and d.get("last_polled")
                             and dt.datetime.fromisoformat(d["last_polled"]) >= since)
                if len(rows) < page:
                    return count
                offset += page

        def check() -> bool:
            try:
                return ready_count() >= expected
            except (urllib.error.URLError, OSError, ValueError):
                return False

        return check

    def start(self, expected_deployments: int) -> dict[str, str]:
        """Start every part and return when the deployments are registered and served."""
        for port, what in ((self.port, "up.what.prefect"), (self.web_port, "up.what.web")):
            if self.web or what == "up.what.prefect":
                if port_in_use(self.host, port):
                    raise MainJobError(t("up.port_in_use", at=f"{self.host}:{port}", what=t(what)))
        env = prefect_env(self.settings, self.host, self.port)
        if self.web:
            # Links in messages point at the page this job serves, whichever process composes
            # them (a served flow, the CLI, a replay): the home records the address for all.
            record_in_home(self.settings.home, base_url=self.public_url)
            env["PINGAN_BASE_URL"] = self.public_url
        Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
        prefect = [sys.executable, "-m", "prefect"]

        self.say(t("up.say.upgrade"))
        upgrade = subprocess.run([*prefect, "server", "database", "upgrade", "-y"], env=env, cwd=REPO_ROOT,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if upgrade.returncode != 0:
            raise MainJobError(t("up.upgrade_failed") + f"\n{upgrade.stderr[-2000:]}")

        server = self._child("prefect-server", *prefect, "server", "start", "--host", self.host,
                             "--port", str(self.port))
        self.children.append(server)
        server.start(env)
        self.say(t("up.say.server", url=self.ui_url))
        wait_until(lambda: http_ok(f"{env['PREFECT_API_URL']}/health"), 180, "Prefect server", self._check_children)

        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        runner = self._child("serve", sys.executable, "-m", "deployments.serve", "--limit", str(self.limit))
        self.children.append(runner)
        runner.start(env)
        if self.web:
            web = self._child("web", sys.executable, "-m", "pingan.web", "--host", self.host,
                              "--port", str(self.web_port))
            self.children.append(web)
            web.start(env)
        self.say(t("up.say.registering", n=expected_deployments))
        wait_until(self._deployments_ready(env, expected_deployments, since), 600, "deployments", self._check_children)
        if self.web:  # /healthz answers 200 only when the page reaches the database and can store files
            last: list[str | None] = [None]

            def healthy() -> bool:
                last[0] = health(f"{self.web_url}/healthz")
                return last[0] is None

            try:
                wait_until(healthy, 60, "evidence page", self._check_children)
            except MainJobError as exc:
                raise MainJobError(f"{exc} (/healthz: {last[0]})") from None
        return env

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def watch(self) -> None:
        """Block until a signal arrives or a child dies (then raise)."""
        while True:
            self._check_children()
            time.sleep(1)
