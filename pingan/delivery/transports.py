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

How: ``pingan.delivery.capture`` puts a recording proxy in place of ``requests`` in every
Apprise plugin module; ``pingan.delivery.schemes`` adds ``pingan://`` (the demo's local outbox
file) and ``smsgw://`` (an HTTP SMS gateway). Both are installed once, when this module loads.

Apprise traps handled here
    * Every plugin instance sleeps ~5.5 s between two sends (``request_rate_per_sec``); we set it
      to 0 on each instance: pacing is the dispatcher's job, not a sleep inside a worker thread.
    * Apprise logs tokens at DEBUG level and some plugins put an invalid key into a WARNING: the
      ``apprise`` logger is set to WARNING and a filter masks the parts of the URL being handled.
    * A plugin's own ``retry=``/``optional=`` URL parameters are not applied (they live in
      ``Apprise.notify``): the outbox decides about retries and fallbacks.

Code that sends calls ``transports.deliver(...)`` through the module attribute, so the tests
replace it with their one double (``tests/factories.py``, ``Recorder``) and nothing else.
"""

from __future__ import annotations

import collections
import http
import re
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise
import requests
from apprise.common import NotifyFormat
from apprise.conversion import convert_between
from apprise.plugins.base import NotifyBase

from pingan.delivery import capture, schemes
from pingan.delivery.capture import N_MGR, OK, Outcome, handling

__all__ = ["OK", "Outcome", "deliver", "mask", "parts", "validate"]

_ASSET = apprise.AppriseAsset()
_local = threading.local()

# Each worker thread keeps the plugin objects of the URLs it sent to lately: building one takes
# ~0.5 ms of CPU (a fifth of a local HTTP send); objects are never shared between threads.
_INSTANCE_CACHE_SIZE = 256

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
    with handling(url):
        instance = apprise.Apprise.instantiate(_tokens(url.strip(), scheme), asset=_ASSET)
    if instance is None:
        if scheme not in N_MGR:
            return None, f"unknown channel type {scheme}://"
        return None, f"invalid {scheme}:// URL (Apprise cannot parse it)"
    # Apprise waits request_rate_per_sec (~5.5 s) between two sends of one object.
    instance.request_rate_per_sec = 0
    return instance, None


def _tokens(url: str, scheme: str) -> dict | str:
    """What Apprise makes of ``url`` before building its plugin: the plugin's own parse, as
    ``apprise.plugins.url_to_dict`` does — without its log-safe copy of the URL (a second parse,
    a sixth of a send's CPU) made for log lines the redacting filter masks anyway. The URL
    itself where only ``url_to_dict`` knows what to do (native URLs, unknown schemes)."""
    if scheme not in N_MGR:
        return url
    tokens = N_MGR[scheme].parse_url(url.replace("/#", "/%23"))
    return tokens if tokens else url


def validate(url: str) -> str | None:
    """Why ``url`` cannot be used as a channel (secret-free), or None when it can."""
    instance, error = _instantiate(url)
    if error:
        return error
    if _scheme(url) == "pingan" and not schemes.pingan_recipient(url):
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
        return f"pingan://local/{schemes.pingan_recipient(url)}"
    with handling(url):
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


def parts(url: str) -> list[tuple[str | None, str]]:
    """The calls one channel takes, each (label, URL): one per SMS number, else the channel itself."""
    return schemes.sms_parts(url) or [(None, url)]


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
    try:
        with capture.recording() as found, handling(url):
            ok = instance.notify(body=body, title=title, body_format=NotifyFormat.TEXT)
    except Exception as exc:  # a plugin bug must not kill the worker; its text may hold secrets
        return Outcome(ok=False, permanent=False, error=f"{instance.service_name} failed ({type(exc).__name__})")
    if ok:
        return OK
    if found.verdict is not None:
        return found.verdict
    if found.exc is not None:
        return _from_exception(found.exc, float(timeout))
    if found.status is not None:
        return _from_status(found.status, instance.service_name)
    return Outcome(ok=False, permanent=False, error=f"{instance.service_name} reported failure")



capture.quiet_apprise()
capture.install_proxies()
schemes.register()
