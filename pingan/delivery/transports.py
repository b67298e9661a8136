"""The one layer that talks to Apprise: one message, one channel URL, one :class:`Outcome`.

Contract (healthchecks' transports are the model)::

    deliver(url, title, body, *, timeout) -> Outcome(ok, permanent, error)

``deliver`` sends through exactly one Apprise URL, so the caller learns which of a person's
channels failed (Apprise's own ``notify()`` only answers one bool for all of them). It never
raises for a delivery problem and is safe to call from many threads at once. ``error`` is a
short reason that never contains the URL, a token or a password; it may be stored and shown.

Classification
    ok=True                      the service accepted the message
    permanent=True               retrying the same URL will not help: Apprise cannot parse the
                                 URL; HTTP 3xx/4xx except 408 and 429; an API error code in a
                                 200 reply that is not a rate limit (below); invalid request
    permanent=False (transient)  HTTP 5xx, 408, 429; timeouts; refused or broken connections;
                                 DNS failures; TLS errors; a rate-limit code in a 200 reply;
                                 a plugin that failed without telling why (e-mail/SMTP)

Chat APIs that answer HTTP 200 with an error in the body (Apprise would count it a success):
    WeCom bot (``wecombot://``) and DingTalk (``dingtalk://``): ``errcode`` != 0.
        transient: -1 (system busy), 45009 (WeCom: API frequency limit), 45033 (WeCom:
        concurrency limit), 130101 (DingTalk: more than 20 messages a minute), 410100
        (DingTalk: throttled). Every other code is permanent, e.g. 93000 (WeCom: invalid
        webhook URL), 300001 (DingTalk: token does not exist), 310000 (DingTalk: keyword,
        signature or IP allow-list mismatch), 88 (DingTalk: authentication).
    Feishu (``feishu://``) and Lark (``lark://``): ``code`` (or the older ``StatusCode``) != 0.
        transient: 11232 (frequency limited). Every other code is permanent, e.g. 19001 (invalid
        webhook token), 19021 (signature check failed), 19024 (keyword not found), 9499 (bad
        request).
    A 200 reply from these APIs that is not JSON is transient (something in between answered).

How: inside every Apprise plugin module that imported ``requests`` this module replaces that
name by a proxy which delegates everything to ``requests`` but records, per thread, the HTTP
status or the exception of each request, and for the chat plugins above inspects the reply and
turns an error code into a failed status so the plugin returns False. Installed once at import.

Apprise traps handled here
    * Every plugin instance sleeps ~5.5 s between two sends (``request_rate_per_sec``); we set it
      to 0 on each instance: pacing is the dispatcher's job, not a sleep inside a worker thread.
    * Apprise logs tokens at DEBUG level and some plugins put an invalid key into a WARNING: the
      ``apprise`` logger is set to WARNING and a filter masks the parts of the URL being handled.
    * A plugin's own ``retry=``/``optional=`` URL parameters are not applied (they live in
      ``Apprise.notify``): the outbox decides about retries and fallbacks.

Schemes added by pingan
    ``pingan://local/<person-code>``  the demo channel: appends one JSON line
        ``{"at", "to", "title", "body"}`` to ``<PINGAN_HOME>/outbox.jsonl``; nothing leaves
        the machine.
    ``smsgw://<token>@host[:port]/path?to=<mobile>[,<mobile>…]&sign=<签名>`` (``smsgws://`` for
        HTTPS): a generic HTTP SMS gateway. For each number it POSTs JSON
        ``{"to": "<mobile>", "sign": "<签名>", "text": "<title>\\n<body>"}`` with
        ``Authorization: Bearer <token>`` to ``http(s)://host[:port]/path``; any 2xx reply is
        success, other statuses are classified like every HTTP channel.

Testing code that sends: call ``pingan.delivery.transports.deliver`` through the module attribute
(``from pingan import transports`` … ``transports.deliver(...)``), never ``from
pingan.delivery.transports import deliver``; tests then replace it with :func:`fake_transport` or
``monkeypatch.setattr(pingan.delivery.transports, "deliver", RecordingTransport(...))``.
"""

from __future__ import annotations

import collections
import contextlib
import http
import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import apprise
import requests
from apprise.common import NotifyFormat, NotifyType
from apprise.conversion import convert_between
from apprise.decorators import notify as apprise_notify
from apprise.manager_plugins import NotificationManager
from apprise.plugins.base import NotifyBase
from apprise.utils.parse import parse_url

from pingan.core.clock import now
from pingan.core.settings import get_settings

__all__ = [
    "Outcome",
    "RecordingTransport",
    "Sent",
    "deliver",
    "fake_transport",
    "mask",
    "validate",
]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool = False
    error: str | None = None


OK = Outcome(ok=True)

_N_MGR = NotificationManager()
_ASSET = apprise.AppriseAsset()
_local = threading.local()

# Each worker thread keeps the plugin objects of the URLs it sent to lately: building one takes
# ~0.5 ms of CPU (a fifth of a local HTTP send); objects are never shared between threads.
_INSTANCE_CACHE_SIZE = 256


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
def _handling(url: str) -> Iterator[None]:
    previous = getattr(_local, "url", None)
    _local.url = url
    try:
        yield
    finally:
        _local.url = previous


def _quiet_apprise() -> None:
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.setLevel(logging.WARNING)
    for existing in list(apprise_logger.filters):
        if type(existing).__name__ == "_RedactFilter":  # importlib.reload leaves the old one
            apprise_logger.removeFilter(existing)
    apprise_logger.addFilter(_RedactFilter())


# ---------------------------------------------------------------------------------------------
# Status capture: a stand-in for ``requests`` inside the plugin modules


@dataclass
class _Capture:
    status: int | None = None
    exc: BaseException | None = None
    verdict: Outcome | None = None  # a reason found in a reply body, or set by our own plugins


def _note(error: str, *, permanent: bool) -> None:
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


class _RequestsProxy:
    """Delegates to ``requests``; records per thread what each request returned or raised."""

    _pingan_proxy = True

    def __init__(self, check: Callable[[requests.Response], Outcome | None] | None = None) -> None:
        self._check = check

    def __getattr__(self, name: str):
        return getattr(requests, name)

    def _call(self, name: str, *args, **kwargs) -> requests.Response:
        capture = getattr(_local, "capture", None)
        try:
            # Looked up on every call, so tests can patch requests.post / requests.request.
            response = getattr(requests, name)(*args, **kwargs)
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
        return self._call("request", method, url, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        return self._call("post", url, data=data, json=json, **kwargs)

    def get(self, url, params=None, **kwargs):
        return self._call("get", url, params=params, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self._call("put", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self._call("patch", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self._call("delete", url, **kwargs)


_http = _RequestsProxy()  # our own plugins send through it too


def _install_proxies() -> None:
    """Put a proxy in place of ``requests`` in every loaded Apprise plugin module (idempotent)."""
    _N_MGR.load_modules()  # imports every plugin module once; a no-op afterwards
    for name, module in list(sys.modules.items()):
        if not name.startswith("apprise.plugins") or module is None:
            continue
        current = module.__dict__.get("requests")
        if current is requests or getattr(current, "_pingan_proxy", False):
            module.requests = _RequestsProxy(_BODY_CHECKS.get(name))


# ---------------------------------------------------------------------------------------------
# pingan:// — the demo channel, a JSON-lines file in PINGAN_HOME

_outbox_lock = threading.Lock()


def _pingan_recipient(meta: Mapping) -> str:
    host = unquote(str(meta.get("host") or ""))
    path = unquote(str(meta.get("fullpath") or "")).strip("/")
    parts = [p for p in ([] if host == "local" else [host]) + [path] if p]
    return "/".join(parts)


def _to_outbox_file(body: str, title: str, notify_type: str, meta: Mapping, *args, **kwargs) -> bool:
    to = _pingan_recipient(meta)
    if not to:
        _note("pingan:// URL names no recipient (pingan://local/<person-code>)", permanent=True)
        return False
    settings = get_settings()
    line = {
        "at": now().isoformat(timespec="seconds"),
        "to": to,
        "title": title,
        "body": body,
    }
    data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    path = settings.home / "outbox.jsonl"
    try:
        with _outbox_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One write() on an O_APPEND descriptor: lines never interleave, even across processes.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
    except OSError as exc:
        _note(f"cannot write {path}: {exc.strerror or type(exc).__name__}", permanent=False)
        return False
    return True


def _parse_custom(url: str) -> Mapping:
    """What Apprise hands a decorator-registered scheme as ``meta``."""
    return parse_url(url.strip(), verify_host=False, simple=True) or {}


def _register_pingan_scheme() -> None:
    if "pingan" in _N_MGR:
        _N_MGR.remove("pingan", unload=False)  # importlib.reload: register the fresh function
    apprise_notify(on="pingan", name="pingan outbox file")(_to_outbox_file)


# ---------------------------------------------------------------------------------------------
# smsgw:// and smsgws:// — a generic HTTP SMS gateway

_MOBILE_RE = re.compile(r"^\+?\d{5,20}$")


class NotifySmsGateway(NotifyBase):
    """A generic HTTP SMS gateway: POST JSON {to, sign, text}, Bearer token."""

    service_name = "SMS gateway"
    protocol = "smsgw"
    secure_protocol = "smsgws"
    request_rate_per_sec = 0
    title_maxlen = 0  # SMS has no title: Apprise puts it in front of the body
    templates = (
        "{schema}://{token}@{host}/{targets}",
        "{schema}://{token}@{host}:{port}/{targets}",
    )
    template_tokens = dict(
        NotifyBase.template_tokens,
        token={"name": "Bearer token", "type": "string", "private": True, "required": True},
        host={"name": "Hostname", "type": "string", "required": True},
        port={"name": "Port", "type": "int", "min": 1, "max": 65535},
        targets={"name": "Mobile numbers", "type": "list:string", "required": True},
    )
    template_args = dict(
        NotifyBase.template_args,
        to={"alias_of": "targets"},
        token={"alias_of": "token"},
        sign={"name": "SMS signature (签名)", "type": "string"},
    )

    def __init__(self, token=None, targets=None, sign=None, **kwargs):
        super().__init__(**kwargs)
        self.token = token or self.user
        if not self.token:
            raise TypeError("smsgw:// needs a token: smsgw://<token>@host/path?to=<mobile>")
        self.targets = [t for t in re.split(r"[\s,;]+", targets or "") if t] if isinstance(
            targets, str
        ) else [t for t in (targets or []) if t]
        if not self.targets:
            raise TypeError("smsgw:// needs ?to=<mobile>")
        bad = [t for t in self.targets if not _MOBILE_RE.match(t)]
        if bad:
            raise TypeError(f"smsgw:// has {len(bad)} invalid mobile number(s)")
        self.sign = sign or ""

    @property
    def url_identifier(self):
        return (self.secure_protocol, self.token, self.host, self.port, self.fullpath)

    def __len__(self) -> int:
        return len(self.targets)

    def url(self, privacy=False, *args, **kwargs):
        params = {"to": ",".join(_mask_mobile(t) if privacy else t for t in self.targets)}
        if self.sign:
            params["sign"] = self.sign
        params.update(self.url_parameters(privacy=privacy, *args, **kwargs))
        return "{schema}://{token}@{host}{port}{path}?{params}".format(
            schema=self.secure_protocol if self.secure else self.protocol,
            token=self.pprint(self.token, privacy, safe=""),
            host=self.host,
            port=f":{self.port}" if self.port else "",
            path=self.quote(self.fullpath or "/", safe="/"),
            params=self.urlencode(params),
        )

    def send(self, body, title="", notify_type=NotifyType.INFO, **kwargs):
        scheme = "https" if self.secure else "http"
        port = f":{self.port}" if self.port else ""
        endpoint = f"{scheme}://{self.host}{port}{self.fullpath or '/'}"
        headers = {
            "User-Agent": self.app_id,
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self.token}",
        }
        # title_maxlen = 0: Apprise has already put the title in front of the body, with \r\n.
        text = (f"{title}\n{body}" if title else body).replace("\r\n", "\n")
        for target in self.targets:
            payload = {"to": target, "sign": self.sign, "text": text}
            self.throttle()
            try:
                r = _http.post(
                    endpoint,
                    data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                    headers=headers,
                    verify=self.verify_certificate,
                    timeout=self.request_timeout,
                    allow_redirects=False,
                )
            except requests.RequestException:
                self.logger.warning("Failed to reach the SMS gateway.")
                return False
            if not 200 <= r.status_code < 300:
                self.logger.warning("SMS gateway refused a message: HTTP %s.", r.status_code)
                return False  # the capture keeps the status; later numbers wait for the retry
        return True

    @staticmethod
    def parse_url(url):
        results = NotifyBase.parse_url(url)
        if not results:
            return results
        qsd = results["qsd"]
        results["token"] = NotifySmsGateway.unquote(qsd["token"]) if qsd.get("token") else results["user"]
        results["targets"] = qsd.get("to", "")
        results["sign"] = qsd.get("sign", "")
        return results


def _mask_mobile(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) >= 11 else number[:2] + "***"


def _register_smsgw_scheme() -> None:
    _N_MGR.add(NotifySmsGateway, force=True)


# ---------------------------------------------------------------------------------------------
# URLs: parse, check, mask


def _scheme(url: str) -> str | None:
    match = re.match(r"^\s*([a-z][a-z0-9+.-]*)://", url, re.I)
    return match.group(1).lower() if match else None


def _instantiate(url: str) -> tuple[NotifyBase | None, str | None]:
    """The plugin object for ``url``, or why there is none (secret-free)."""
    if not isinstance(url, str) or not url.strip():
        return None, "empty channel URL"
    scheme = _scheme(url)
    if scheme is None:
        return None, "not an Apprise URL (expected scheme://…)"
    with _handling(url):
        instance = apprise.Apprise.instantiate(url.strip(), asset=_ASSET)
    if instance is None:
        if scheme not in _N_MGR:
            return None, f"unknown channel type {scheme}://"
        return None, f"invalid {scheme}:// URL (Apprise cannot parse it)"
    # Apprise waits request_rate_per_sec (~5.5 s) between two sends of one object.
    instance.request_rate_per_sec = 0
    return instance, None


def validate(url: str) -> str | None:
    """Why ``url`` cannot be used as a channel (secret-free), or None when it can."""
    instance, error = _instantiate(url)
    if error:
        return error
    if _scheme(url) == "pingan" and not _pingan_recipient(_parse_custom(url)):
        return "pingan:// URL names no recipient (pingan://local/<person-code>)"
    return None


_SECRET_QUERY_RE = re.compile(r"token|key|secret|pass|auth|sig(?!n$)", re.I)


def mask(url: str) -> str:
    """``url`` fit for logs and screens: Apprise's privacy form, or ``scheme://***``."""
    scheme = _scheme(url) if isinstance(url, str) else None
    instance, error = _instantiate(url) if scheme else (None, "")
    if instance is None:
        return f"{scheme or 'unknown'}://***"
    if scheme == "pingan":  # holds no secret; Apprise's form would drop the person code
        return f"pingan://local/{_pingan_recipient(_parse_custom(url))}"
    with _handling(url):
        private = instance.url(privacy=True)
    # Apprise shows custom headers (json://…?+X-Token=…) and some query values in clear.
    parts = urlsplit(private)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any((k.startswith("+") or _SECRET_QUERY_RE.search(k)) and v for k, v in query):
        return private
    query = [(k, "***" if (k.startswith("+") or _SECRET_QUERY_RE.search(k)) and v else v) for k, v in query]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*,/:")))


# ---------------------------------------------------------------------------------------------
# Sending


def _instance_for(url: str) -> tuple[NotifyBase | None, str | None]:
    cache = getattr(_local, "instances", None)
    if cache is None:
        cache = _local.instances = collections.OrderedDict()
    instance = cache.get(url)
    if instance is not None:
        cache.move_to_end(url)
        return instance, None
    instance, error = _instantiate(url)
    if instance is not None:
        cache[url] = instance
        if len(cache) > _INSTANCE_CACHE_SIZE:
            cache.popitem(last=False)
    return instance, error


_PERMANENT_EXCEPTIONS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.TooManyRedirects,
    requests.exceptions.URLRequired,
)


def _causes(exc: BaseException) -> Iterator[object]:
    """The exception and what it wraps (requests → urllib3 → socket), without str()."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen or len(seen) > 20:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseException):
            todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
            todo.extend(a for a in item.args if isinstance(a, BaseException))


def _from_exception(exc: BaseException, timeout: float) -> Outcome:
    def failed(error: str, permanent: bool = False) -> Outcome:
        return Outcome(ok=False, permanent=permanent, error=error)

    if isinstance(exc, _PERMANENT_EXCEPTIONS):
        return failed(f"invalid request ({type(exc).__name__})", permanent=True)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return failed(f"connect timeout after {timeout:g}s")
    if isinstance(exc, requests.exceptions.Timeout):
        return failed(f"no response within {timeout:g}s")
    if isinstance(exc, requests.exceptions.SSLError):
        return failed("TLS error")
    causes = list(_causes(exc))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return failed("connection refused")
    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in causes):
        return failed("host name not resolved")
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes):
        return failed(f"no response within {timeout:g}s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return failed("connection failed")
    return failed(f"request failed ({type(exc).__name__})")


def _from_status(status: int, service: str) -> Outcome:
    if 200 <= status < 300:
        return Outcome(ok=False, permanent=False, error=f"{service} reported failure after HTTP {status}")
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    permanent = 300 <= status < 500 and status not in (408, 429)
    return Outcome(ok=False, permanent=permanent, error=f"HTTP {status} {phrase}".rstrip())


def deliver(url: str, title: str, body: str, *, timeout: float) -> Outcome:
    """Send one message through one Apprise URL; never raises for a delivery problem."""
    if not (title or body):
        return Outcome(ok=False, permanent=True, error="empty message")
    instance, error = _instance_for(url)
    if instance is None:
        return Outcome(ok=False, permanent=True, error=error)
    instance.socket_connect_timeout = instance.socket_read_timeout = float(timeout)
    # Bodies are plain text; convert like Apprise.notify(body_format=TEXT) does per service.
    fmt = instance.notify_format
    if fmt != NotifyFormat.TEXT:
        body = convert_between(NotifyFormat.TEXT, fmt, content=body)
        if title and instance.title_maxlen <= 0:
            title = convert_between(NotifyFormat.TEXT, fmt, content=title)
    capture = _local.capture = _Capture()
    try:
        with _handling(url):
            ok = instance.notify(body=body, title=title, body_format=NotifyFormat.TEXT)
    except Exception as exc:  # a plugin bug must not kill the worker; its text may hold secrets
        return Outcome(ok=False, permanent=False, error=f"{instance.service_name} failed ({type(exc).__name__})")
    finally:
        _local.capture = None
    if ok:
        return OK
    if capture.verdict is not None:
        return capture.verdict
    if capture.exc is not None:
        return _from_exception(capture.exc, float(timeout))
    if capture.status is not None:
        return _from_status(capture.status, instance.service_name)
    return Outcome(ok=False, permanent=False, error=f"{instance.service_name} reported failure")


# ---------------------------------------------------------------------------------------------
# A stand-in for deliver() in tests of the code that sends


@dataclass(frozen=True)
class Sent:
    url: str
    title: str
    body: str
    timeout: float


@dataclass
class RecordingTransport:
    """Records every call and answers from a script instead of sending.

    ``results`` maps a URL to the outcomes of its successive calls (once used up, the last one
    repeats), or is a function ``(url, title, body) -> Outcome``. URLs it does not name get
    ``default``. Thread-safe, like the real ``deliver``.
    """

    results: Mapping[str, Outcome | Sequence[Outcome]] | Callable[[str, str, str], Outcome] | None = None
    default: Outcome = OK
    calls: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._used: collections.Counter[str] = collections.Counter()

    def __call__(self, url: str, title: str, body: str, *, timeout: float) -> Outcome:
        with self._lock:
            self.calls.append(Sent(url, title, body, timeout))
            if callable(self.results):
                script = None
            else:
                script = (self.results or {}).get(url)
                index = self._used[url]
                self._used[url] += 1
        if callable(self.results):
            return self.results(url, title, body)
        if script is None:
            return self.default
        if isinstance(script, Outcome):
            return script
        return script[min(index, len(script) - 1)] if script else self.default

    def sent_to(self, url: str) -> list[Sent]:
        with self._lock:
            return [c for c in self.calls if c.url == url]


@contextlib.contextmanager
def fake_transport(
    results: Mapping[str, Outcome | Sequence[Outcome]] | Callable[[str, str, str], Outcome] | None = None,
    *,
    default: Outcome = OK,
) -> Iterator[RecordingTransport]:
    """Replace ``pingan.delivery.transports.deliver`` by a :class:`RecordingTransport` for a block."""
    module = sys.modules[__name__]
    fake = RecordingTransport(results, default)
    real = module.deliver
    module.deliver = fake
    try:
        yield fake
    finally:
        module.deliver = real


_quiet_apprise()
_install_proxies()
_register_pingan_scheme()
_register_smsgw_scheme()
