"""CSRF tokens of the evidence page — stateless HMACs under keys derived from the signing key.

Each value is an HMAC under a key derived from the first of ``PINGAN_SECRET_KEY``'s keys for
one purpose, so a token of one kind never passes for another:

- hand-in forms carry ``<time>.<HMAC(link token, time)>``: tied to the link, valid a day;
- the sign-in form carries an HMAC of a random nonce that is also set as a cookie;
- a reviewer's forms carry an HMAC of their session cookie (double submit: a cross-site form
  can neither read nor forge it).

Who is signed in is not here: sessions are rows (``pingan.accounts.service``), read by
``pingan.web.sessions``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HAND_IN_CSRF_TTL = 24 * 3600


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()[:40]


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison that also takes what a client sent in any script (as bytes:
    ``hmac.compare_digest`` refuses non-ASCII text with a TypeError)."""
    return hmac.compare_digest(expected.encode(), (given or "").encode())


class Signer:
    def __init__(self, signing_key: bytes):
        self._hand_in = hmac.new(signing_key, b"pingan.web.hand-in-csrf", hashlib.sha256).digest()
        self._login = hmac.new(signing_key, b"pingan.web.login-csrf", hashlib.sha256).digest()
        self._session = hmac.new(signing_key, b"pingan.web.session-csrf", hashlib.sha256).digest()

    # -- hand-in forms
    def hand_in_csrf(self, link_token: str, now: float | None = None) -> str:
        stamp = str(int(now if now is not None else time.time()))
        return f"{stamp}.{_mac(self._hand_in, link_token, stamp)}"

    def check_hand_in_csrf(self, link_token: str, value: str, now: float | None = None) -> bool:
        now = now if now is not None else time.time()
        stamp, _, mac = (value or "").partition(".")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return False
        if not same(_mac(self._hand_in, link_token, stamp), mac):
            return False
        return -300 <= now - int(stamp) <= HAND_IN_CSRF_TTL

    # -- the sign-in form (double submit with a nonce cookie)
    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(18)

    def login_csrf(self, nonce: str) -> str:
        return _mac(self._login, nonce)

    def check_login_csrf(self, nonce: str | None, value: str | None) -> bool:
        return bool(nonce and value) and same(self.login_csrf(nonce), value)

    # -- a reviewer's forms
    def review_csrf(self, cookie: str) -> str:
        return _mac(self._session, "csrf", cookie)

    def check_review_csrf(self, cookie: str | None, value: str | None) -> bool:
        return bool(cookie and value) and same(self.review_csrf(cookie), value)
