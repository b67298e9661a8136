"""What every Apprise plugin's HTTP request returned, per thread, and the secrets of the URL in hand.

Apprise's ``notify()`` answers one bool; the chat APIs answer HTTP 200 even for an error code in
the body. Inside every Apprise plugin module that imported ``requests`` this module puts a proxy
that delegates to ``requests`` but records, per thread, the status or the exception of each
request and, for WeCom, DingTalk and Feishu, turns an error code in a 200 reply into a failed
status (see ``pingan.delivery.transports`` for the classification). It also masks the URL
being handled in Apprise's log records: tokens never reach a log line.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from apprise.manager_plugins import NotificationManager


@dataclass(frozen=True)
class Outcome:
    """What one send through one channel came to; ``error`` never holds a secret."""

    ok: bool
    permanent: bool = False
    error: str | None = None


OK = Outcome(ok=True)
N_MGR = NotificationManager()
_local = threading.local()

# ---------------------------------------------------------------------------------------------
# Secrets: what must never reach a log line or an error text


# Host names and addresses are not secrets; anything else in the host slot may be a token.
_PUBLIC_HOST_RE = re.compile(
    r"^(localhost|local|[0-9.]+|\[[0-9a-f:.]+\]|([a-z0-9-]+\.)+[a-z]{2,})$", re.I
)


def _secret_parts(url: str) -> list[str]:
    """The parts of ``url`` that may be tokens: user, password, token-like host, path, query."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return [url] if len(url) >= 4 else []
    found: list[str] = []
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo:
        found.extend(userinfo.split(":", 1))
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
    if host and not _PUBLIC_HOST_RE.match(host):
        found.append(host)  # wecombot://<key>, feishu://<token>, dingtalk://<token>
    found.extend(parts.path.split("/"))
    found.extend(value for _, value in parse_qsl(parts.query, keep_blank_values=False))
    secrets = {unquote(s) for s in found if len(s) >= 4} | {s for s in found if len(s) >= 4}
    return sorted(secrets, key=len, reverse=True)


def _scrub(text: str, url: str | None = None) -> str:
    url = url if url is not None else getattr(_local, "url", None)
    if not url:
        return text
    for secret in _secret_parts(url):
        # Whole words only, so a path segment like "notify" does not mangle ordinary text.
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


class _RedactFilter(logging.Filter):
    """Masks the URL being handled by this thread in Apprise's log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "url", None):
            message = record.getMessage()
            scrubbed = _scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


@contextlib.contextmanager
def recording() -> Iterator[Capture]:
    """What the requests of this thread return inside the block (one send)."""
    found = _local.capture = Capture()
    try:
        yield found
    finally:
        _local.capture = None


@contextlib.contextmanager
def handling(url: str) -> Iterator[None]:
    previous = getattr(_local, "url", None)
    _local.url = url
    try:
        yield
    finally:
        _local.url = previous


def quiet_apprise() -> None:
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.setLevel(logging.WARNING)
    for existing in list(apprise_logger.filters):
        if type(existing).__name__ == "_RedactFilter":  # importlib.reload leaves the old one
            apprise_logger.removeFilter(existing)
    apprise_logger.addFilter(_RedactFilter())


# ---------------------------------------------------------------------------------------------
# Status capture: a stand-in for ``requests`` inside the plugin modules


@dataclass
class Capture:
    status: int | None = None
    exc: BaseException | None = None
    verdict: Outcome | None = None  # a reason found in a reply body, or set by our own plugins


def note(error: str, *, permanent: bool) -> None:
    capture = getattr(_local, "capture", None)
    if capture is not None:
        capture.verdict = Outcome(ok=False, permanent=permanent, error=error)


def _clean_message(message: object) -> str:
    text = str(message or "").strip()
    text = re.split(r",?\s*hint:|\s*more info at", text, maxsplit=1)[0]  # WeCom appends ids, IP, URL
    text = re.sub(r"https?://\S+", "", text).strip(" ,;")
    text = _scrub(text)
    return text[:120]


def _body_code_check(
    service: str, fields: Sequence[str], message_fields: Sequence[str], transient: frozenset[int]
) -> Callable[[requests.Response], Outcome | None]:
    def check(response: requests.Response) -> Outcome | None:
        try:
            data = response.json()
        except ValueError:
            return Outcome(ok=False, permanent=False, error=f"{service}: HTTP 200 reply is not JSON")
        if not isinstance(data, dict):
            return None
        code = next((data[name] for name in fields if name in data), 0)
        try:
            code = int(code)
        except (TypeError, ValueError):
            return None
        if code == 0:
            return None
        message = next((data[name] for name in message_fields if data.get(name)), "")
        reason = _clean_message(message)
        error = f"{service} error {code}" + (f": {reason}" if reason else "")
        return Outcome(ok=False, permanent=code not in transient, error=error)

    return check


_WECOM_CHECK = _body_code_check("WeCom", ["errcode"], ["errmsg"], frozenset({-1, 45009, 45033}))
_DINGTALK_CHECK = _body_code_check("DingTalk", ["errcode"], ["errmsg"], frozenset({-1, 130101, 410100}))
_FEISHU_CHECK = _body_code_check(
    "Feishu", ["code", "StatusCode"], ["msg", "StatusMessage"], frozenset({11232})
)
_BODY_CHECKS = {
    "apprise.plugins.wecombot": _WECOM_CHECK,
    "apprise.plugins.dingtalk": _DINGTALK_CHECK,
    "apprise.plugins.feishu": _FEISHU_CHECK,
    "apprise.plugins.lark": _FEISHU_CHECK,
}

# The status a failed body check puts on the 200 reply, so the plugin returns False.
_FAILED_STATUS = {True: 400, False: 503}


def session() -> requests.Session:
    """This thread's HTTP session: connections are kept alive between the sends of one thread
    (Apprise itself opens a new connection for every message).

    It does not read the environment on every request (``trust_env`` costs a scan of
    ``os.environ`` per request, a sixth of a local send): ``_environment`` reads it once per
    host and hands the same proxies and CA bundle to each request.
    """
    found = getattr(_local, "session", None)
    if found is None:
        found = _local.session = requests.Session()
        found.trust_env = False
        _local.environment = {}
    return found


def _environment(url: str, kwargs: dict) -> dict:
    """What ``trust_env`` would add to a request to ``url`` (proxies, no_proxy, the CA bundle), cached per host."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc)
    cache = _local.environment
    found = cache.get(key)
    if found is None:
        found = cache[key] = requests.Session().merge_environment_settings(url, {}, None, None, None)
    merged = dict(kwargs)
    merged["proxies"] = {**found["proxies"], **(kwargs.get("proxies") or {})}
    if merged.get("verify", True) is True:
        merged["verify"] = found["verify"]
    return merged


class _RequestsProxy:
    """Sends through this thread's ``requests.Session``; records per thread what each request
    returned or raised."""

    _pingan_proxy = True

    def __init__(self, check: Callable[[requests.Response], Outcome | None] | None = None) -> None:
        self._check = check

    def __getattr__(self, name: str):
        return getattr(requests, name)

    def _call(self, method: str, url, **kwargs) -> requests.Response:
        capture = getattr(_local, "capture", None)
        try:
            # Session.request is looked up on every call, so tests can patch it.
            http_session = session()
            response = http_session.request(method, url, **_environment(url, kwargs))
        except requests.RequestException as exc:
            if capture is not None:
                capture.exc, capture.status = exc, None
            raise
        if capture is not None:
            capture.status, capture.exc = response.status_code, None
        if self._check is not None and response.status_code == 200:
            verdict = self._check(response)
            if verdict is not None:
                response.status_code = _FAILED_STATUS[verdict.permanent]
                if capture is not None:
                    capture.verdict = verdict
        return response

    def request(self, method, url, **kwargs):
        return self._call(method.upper(), url, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        return self._call("POST", url, data=data, json=json, **kwargs)

    def get(self, url, params=None, **kwargs):
        return self._call("GET", url, params=params, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self._call("PUT", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self._call("PATCH", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self._call("DELETE", url, **kwargs)


http = _RequestsProxy()  # our own plugins send through it too


def install_proxies() -> None:
    """Put a proxy in place of ``requests`` in every loaded Apprise plugin module (idempotent)."""
    N_MGR.load_modules()  # imports every plugin module once; a no-op afterwards
    for name, module in list(sys.modules.items()):
        if not name.startswith("apprise.plugins") or module is None:
            continue
        current = module.__dict__.get("requests")
        if current is requests or getattr(current, "_pingan_proxy", False):
            module.requests = _RequestsProxy(_BODY_CHECKS.get(name))


