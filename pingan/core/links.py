"""Hand-in links: signed for one task and one person, with an expiry (HMAC-SHA256).

A token is ``<occurrence>.<person>.<expiry epoch>.<signature>``; the signature covers the
first three parts, so a forged, altered or expired link is refused without a database lookup.
Keys rotate: links are signed with the first of ``Settings.signing_keys`` and verified against
each of them (``verify`` takes the list), so links signed before a rotation keep working until
the old key is dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass


class LinkError(ValueError):
    """A forged, malformed or expired link. Its message is safe to log, never to show."""


@dataclass(frozen=True)
class LinkGrant:
    occurrence_id: int
    person_id: int
    expires: dt.datetime


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.digest(key, payload.encode(), "sha256")  # OpenSSL's one-shot HMAC
    return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")


def sign(occurrence_id: int, person_id: int, expires: dt.datetime, key: bytes) -> str:
    payload = f"{occurrence_id}.{person_id}.{int(expires.timestamp())}"
    return f"{payload}.{_mac(key, payload)}"


def verify(token: str, keys: bytes | Sequence[bytes], now: dt.datetime) -> LinkGrant:
    """The grant of a link signed by any of ``keys`` (one key, or the list from ``Settings.signing_keys``)."""
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts[:3]):
        raise LinkError("malformed link")
    payload = ".".join(parts[:3])
    keys = [keys] if isinstance(keys, bytes) else list(keys)
    # every key is tried (no early exit), so the time taken does not tell which one matched
    given = parts[3].encode()  # bytes: compare_digest refuses non-ASCII text
    matched = [hmac.compare_digest(_mac(key, payload).encode(), given) for key in keys]
    if not any(matched):
        raise LinkError("bad signature")
    expires = dt.datetime.fromtimestamp(int(parts[2]), tz=dt.timezone.utc)
    if now >= expires:
        raise LinkError("expired")
    return LinkGrant(int(parts[0]), int(parts[1]), expires)


def hand_in_url(base_url: str, occurrence_id: int, person_id: int, expires: dt.datetime, key: bytes) -> str:
    return f"{base_url.rstrip('/')}/e/{sign(occurrence_id, person_id, expires, key)}"


# --------------------------------------------------------------------------- a person's own links

# A person's page and calendar feed: ``<person>.<version>.<signature>``, the signature covering
# the purpose too, so a page link never opens the feed nor the other way round. They do not
# expire; revoking raises the person's link version (``person_link``), which the signature covers.
PURPOSES = ("page", "feed")


@dataclass(frozen=True)
class PersonGrant:
    person_id: int
    version: int


def sign_person(person_id: int, version: int, purpose: str, key: bytes) -> str:
    payload = f"{person_id}.{version}"
    return f"{payload}.{_mac(key, f'{purpose}:{payload}')}"


def verify_person(token: str, keys: bytes | Sequence[bytes], purpose: str) -> PersonGrant:
    """The grant of a person link signed by any of ``keys``; the version is checked by the caller."""
    parts = token.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts[:2]):
        raise LinkError("malformed link")
    payload = ".".join(parts[:2])
    keys = [keys] if isinstance(keys, bytes) else list(keys)
    given = parts[2].encode()
    matched = [hmac.compare_digest(_mac(key, f"{purpose}:{payload}").encode(), given) for key in keys]
    if not any(matched):
        raise LinkError("bad signature")
    return PersonGrant(int(parts[0]), int(parts[1]))


def page_url(base_url: str, person_id: int, version: int, key: bytes) -> str:
    """The person's own page: every open task of theirs, each opening its action."""
    return f"{base_url.rstrip('/')}/m/{sign_person(person_id, version, 'page', key)}"


def feed_url(base_url: str, person_id: int, version: int, key: bytes) -> str:
    """The person's calendar feed (iCalendar)."""
    return f"{base_url.rstrip('/')}/c/{sign_person(person_id, version, 'feed', key)}.ics"
