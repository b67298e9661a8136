"""The channel schemes pingan adds to Apprise.

``pingan://local/<person-code>``  the demo channel: appends one JSON line
    ``{"at", "to", "title", "body"}`` to ``<PINGAN_HOME>/outbox.jsonl``; nothing leaves the machine.
``smsgw://<token>@host[:port]/path?to=<mobile>[,<mobile>…]&sign=<签名>`` (``smsgws://`` for HTTPS):
    a generic HTTP SMS gateway. For each number it POSTs JSON ``{"to", "sign", "text"}`` with
    ``Authorization: Bearer <token>``; any 2xx reply is success, other statuses are classified
    like every HTTP channel.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import requests
from apprise.common import NotifyType
from apprise.decorators import notify as apprise_notify
from apprise.plugins.base import NotifyBase
from apprise.utils.parse import parse_url

from pingan.core.clock import now
from pingan.core.settings import get_settings
from pingan.delivery.capture import N_MGR, http, note

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
        note("pingan:// URL names no recipient (pingan://local/<person-code>)", permanent=True)
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
        note(f"cannot write {path}: {exc.strerror or type(exc).__name__}", permanent=False)
        return False
    return True


def _parse_custom(url: str) -> Mapping:
    """What Apprise hands a decorator-registered scheme as ``meta``."""
    return parse_url(url.strip(), verify_host=False, simple=True) or {}


def pingan_recipient(url: str) -> str:
    """The person code a ``pingan://`` URL names ("" for none)."""
    return _pingan_recipient(_parse_custom(url))


def _register_pingan() -> None:
    if "pingan" in N_MGR:
        N_MGR.remove("pingan", unload=False)  # importlib.reload: register the fresh function
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
        params = {"to": ",".join(mask_mobile(t) if privacy else t for t in self.targets)}
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
                r = http.post(
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


def mask_mobile(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) >= 11 else number[:2] + "***"


def _register_smsgw() -> None:
    N_MGR.add(NotifySmsGateway, force=True)




def register() -> None:
    """Add pingan:// and smsgw:// to Apprise (idempotent)."""
    _register_pingan()
    _register_smsgw()


def sms_parts(url: str) -> list[tuple[str, str]] | None:
    """(masked number, URL for that number alone) of an ``smsgw://`` URL; None for other URLs.

    Each number is its own call, recorded on its own: a gateway failing part-way never makes
    the numbers that already got the message get it twice.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in (NotifySmsGateway.protocol, NotifySmsGateway.secure_protocol):
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    numbers = [n for k, v in query if k == "to" for n in re.split(r"[\s,;]+", v) if n]
    rest = [(k, v) for k, v in query if k != "to"]
    if len(numbers) <= 1:
        return [(mask_mobile(numbers[0]) if numbers else "", url)]
    return [(mask_mobile(n), urlunsplit(parts._replace(query=urlencode([("to", n), *rest])))) for n in numbers]
