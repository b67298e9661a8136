"""Pacing per destination: no more messages a minute (and a second) than the destination takes.

A destination is one endpoint — one group bot, one SMS number — whoever the message is for;
``destination(url)`` names it by a hash of its URL (the URL holds the token). The dispatcher
seeds the pacer with the calls of the last minute recorded in ``delivery``, so two dispatcher
runs one after the other do not add up to twice the rate; within a run every sending thread
asks the one pacer for a slot.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import threading
from collections.abc import Iterable

from pingan.delivery.limits import Limit

WINDOW = 60.0


def destination(url: str) -> str:
    """The endpoint ``url`` reaches, as an opaque key (no secret in it)."""
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:32]


class Pacer:
    """Sliding windows of send times per destination; ``reserve`` books the earliest slot."""

    def __init__(self) -> None:
        self._sent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def seed(self, key: str, times: Iterable[float]) -> None:
        """Sends already made to ``key`` (monotonic-clock seconds), e.g. by an earlier run."""
        with self._lock:
            self._sent[key].extend(sorted(times))

    def reserve(self, key: str, limit: Limit, now: float) -> float:
        """Book the next slot of ``key`` under ``limit``; return how long to wait for it (0: now)."""
        if limit.per_minute is None and limit.per_second is None:
            return 0.0
        with self._lock:
            sent = self._sent[key]
            while sent and sent[0] <= now - WINDOW:
                sent.popleft()
            at = now
            if limit.per_minute is not None and len(sent) >= limit.per_minute:
                at = max(at, sent[-limit.per_minute] + WINDOW)
            if limit.per_second is not None and len(sent) >= limit.per_second:
                at = max(at, sent[-limit.per_second] + 1.0)
            bisect.insort(sent, at)
            return at - now

    def release(self, key: str, at: float) -> None:
        """Give back a slot booked for ``at`` that was not used (the message was deferred)."""
        with self._lock:
            try:
                self._sent[key].remove(at)
            except ValueError:
                pass
