"""Who may post what: the operator's password and session, and CSRF tokens — all stateless.

Every value is an HMAC under a key derived from ``PINGAN_SECRET_KEY`` for one purpose, so a
token of one kind never passes for another. The operator's session key also covers the
operator's name and password: changing the password logs every session out.

- hand-in forms carry ``<time>.<HMAC(link token, time)>``: tied to the link, valid a day;
- the operator's session is a cookie ``<name>.<expiry>.<HMAC>``; review forms carry an HMAC
  of that cookie (double submit: a cross-site form can neither read nor forge it);
- the login form carries an HMAC of a random nonce that is also set as a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

HAND_IN_CSRF_TTL = 24 * 3600
SESSION_TTL = 12 * 3600
PBKDF2 = "pbkdf2_sha256"


def hash_password(password: str, *, iterations: int = 310_000, salt: str | None = None) -> str:
    """A value for ``PINGAN_OPERATOR_PASSWORD`` that is not the password itself."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{PBKDF2}${iterations}${salt}${base64.b64encode(digest).decode()}"


def check_password(given: str, stored: str) -> bool:
    """Compare in constant time, whether ``stored`` is a hash or (discouraged) the plain password."""
    if stored.startswith(PBKDF2 + "$"):
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", given.encode(), salt.encode(), int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(base64.b64encode(digest).decode(), expected)
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(stored.encode()).digest())


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()[:40]


class Signer:
    def __init__(self, signing_key: bytes, operator_user: str, operator_secret: str):
        self._hand_in = hmac.new(signing_key, b"pingan.web.hand-in-csrf", hashlib.sha256).digest()
        self._login = hmac.new(signing_key, b"pingan.web.login-csrf", hashlib.sha256).digest()
        account = hashlib.sha256(f"{operator_user}\x00{operator_secret}".encode()).digest()
        self._session = hmac.new(signing_key, b"pingan.web.session\x00" + account, hashlib.sha256).digest()

    # -- hand-in forms
    def hand_in_csrf(self, link_token: str, now: float | None = None) -> str:
        stamp = str(int(now if now is not None else time.time()))
        return f"{stamp}.{_mac(self._hand_in, link_token, stamp)}"

    def check_hand_in_csrf(self, link_token: str, value: str, now: float | None = None) -> bool:
        now = now if now is not None else time.time()
        stamp, _, mac = (value or "").partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(_mac(self._hand_in, link_token, stamp), mac):
            return False
        return -300 <= now - int(stamp) <= HAND_IN_CSRF_TTL

    # -- login form (double submit with a nonce cookie)
    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(18)

    def login_csrf(self, nonce: str) -> str:
        return _mac(self._login, nonce)

    def check_login_csrf(self, nonce: str | None, value: str | None) -> bool:
        return bool(nonce and value) and hmac.compare_digest(self.login_csrf(nonce), value)

    # -- the operator's session
    def session_cookie(self, user: str, now: float | None = None) -> str:
        expires = str(int((now if now is not None else time.time()) + SESSION_TTL))
        name = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        return f"{name}.{expires}.{_mac(self._session, name, expires)}"

    def session_user(self, cookie: str | None, now: float | None = None) -> str | None:
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        name, expires, mac = parts
        if not hmac.compare_digest(_mac(self._session, name, expires), mac):
            return None
        if (now if now is not None else time.time()) >= int(expires):
            return None
        try:
            return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    def review_csrf(self, cookie: str) -> str:
        return _mac(self._session, "csrf", cookie)

    def check_review_csrf(self, cookie: str | None, value: str | None) -> bool:
        return bool(cookie and value) and hmac.compare_digest(self.review_csrf(cookie), value)
