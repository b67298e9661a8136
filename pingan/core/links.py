"""Hand-in links: signed for one task and one person, with an expiry (HMAC-SHA256).

A token is ``<occurrence>.<person>.<expiry epoch>.<signature>``; the signature covers the
first three parts, so a forged, altered or expired link is refused without a database lookup.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass


class LinkError(ValueError):
    """A forged, malformed or expired link. Its message is safe to log, never to show."""


@dataclass(frozen=True)
class LinkGrant:
    occurrence_id: int
    person_id: int
    expires: dt.datetime


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")


def sign(occurrence_id: int, person_id: int, expires: dt.datetime, key: bytes) -> str:
    payload = f"{occurrence_id}.{person_id}.{int(expires.timestamp())}"
    return f"{payload}.{_mac(key, payload)}"


def verify(token: str, key: bytes, now: dt.datetime) -> LinkGrant:
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        raise LinkError("malformed link")
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(key, payload), parts[3]):
        raise LinkError("bad signature")
    expires = dt.datetime.fromtimestamp(int(parts[2]), tz=dt.timezone.utc)
    if now >= expires:
        raise LinkError("expired")
    return LinkGrant(int(parts[0]), int(parts[1]), expires)


def hand_in_url(base_url: str, occurrence_id: int, person_id: int, expires: dt.datetime, key: bytes) -> str:
    return f"{base_url.rstrip('/')}/e/{sign(occurrence_id, person_id, expires, key)}"
