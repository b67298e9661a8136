"""A loopback HTTP sink: answers every request ``200`` (at once, or after ``delay_ms``) and counts it,
in all and per path.

It runs in a process of its own (so its memory and CPU are not the benchmark's), binds
127.0.0.1 only, and stops by itself: after ``max_seconds``, after ``idle_seconds`` without a
request, or when the process that started it is gone. ``GET /_stats`` answers the counters
as JSON (and is not counted); ``POST /_stop`` stops it.

    python -m bench.sink --port 8765      # stand-alone, for poking at it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # loopback only, never anything else
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
_OK_BODY = b'{"ok":true}'


@dataclass
class _Stats:
    requests: int = 0
    bytes: int = 0
    connections: int = 0
    started: float = 0.0
    last: float = 0.0
    paths: dict = None  # path → requests


async def _serve(port: int, ready, max_seconds: float, idle_seconds: float, parent: int, delay_ms: float = 0) -> None:
    stats = _Stats(started=time.monotonic(), last=time.monotonic(), paths={})
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                close = headers.get("connection", "").lower() == "close"
                if path.startswith("/_stats"):
                    out = {"requests": stats.requests, "bytes": stats.bytes, "connections": stats.connections}
                    if "paths=1" in path:
                        out["paths"] = stats.paths
                    body = json.dumps(out).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
                elif path == "/_stop":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    stop.set()
                    return
                else:
                    if delay_ms:
                        await asyncio.sleep(delay_ms / 1000)
                    stats.requests += 1
                    stats.bytes += length
                    stats.paths[path] = stats.paths.get(path, 0) + 1
                    stats.last = time.monotonic()
                    writer.write(_OK + (b"Connection: close\r\n\r\n" if close else b"\r\n") + _OK_BODY)
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError,
                asyncio.CancelledError):  # a client gone, or the sink stopping with keep-alive connections open
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, port, backlog=1024, reuse_address=True)
    ready.send(server.sockets[0].getsockname()[1])
    ready.close()

    async def watchdog() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            t = time.monotonic()
            if t - stats.started > max_seconds or t - stats.last > idle_seconds or os.getppid() != parent:
                stop.set()

    dog = asyncio.create_task(watchdog())
    async with server:
        await stop.wait()
    dog.cancel()


def _main(port: int, max_seconds: float, idle_seconds: float, parent: int, delay_ms: float = 0) -> None:
    class _Ready:
        def send(self, bound: int) -> None:
            print(f"PORT {bound}", flush=True)

        def close(self) -> None:
            pass

    asyncio.run(_serve(port, _Ready(), max_seconds, idle_seconds, parent, delay_ms))


class Sink:
    """The sink in a child process; ``with Sink() as sink: sink.url, sink.stats()``."""

    def __init__(self, *, max_seconds: float = 3600, idle_seconds: float = 900, delay_ms: float = 0):
        self.max_seconds, self.idle_seconds, self.delay_ms = max_seconds, idle_seconds, delay_ms
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> Sink:
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--port", "0", "--max-seconds", str(self.max_seconds),
             "--idle-seconds", str(self.idle_seconds), "--parent", str(os.getpid()), "--delay-ms", str(self.delay_ms)],
            stdout=subprocess.PIPE, text=True, cwd=root, env=env,
        )
        line = self.process.stdout.readline()  # the child prints its port once it listens
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the loopback sink did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def channel_url(self, code: str) -> str:
        """A person's channel: Apprise's JSON plugin posting to the sink, a path per person (as
        real webhooks differ per person)."""
        return f"json://{HOST}:{self.port}/sink/{code}"

    def stats(self, *, paths: bool = False) -> dict:
        with urllib.request.urlopen(f"{self.base}/_stats{'?paths=1' if paths else ''}", timeout=10) as reply:
            return json.loads(reply.read())

    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.port is not None and self.process.poll() is None:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{self.base}/_stop", method="POST"), timeout=5).read()
            except OSError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--parent", type=int, default=None, help="stop when this process is gone (default: our parent)")
    parser.add_argument("--delay-ms", type=float, default=0, help="answer each request this late (a slow service)")
    args = parser.parse_args()
    _main(args.port, args.max_seconds, args.idle_seconds, args.parent or os.getppid(), args.delay_ms)
