"""What every page of the evidence app shares: settings, signer, clock, templates, and the ASGI guard.

The guard adds the security headers, caps request bodies, and logs each request with the
hand-in, page or feed token cut out of its path (a link is a credential).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders

from pingan.evidence import files as evfiles
from pingan.duties.catalog import Catalog
from pingan.core.i18n import locale, pick, t
from pingan.duties.runtime import Runtime
from pingan.core.settings import Settings
from pingan.web.auth import Signer
from pingan.web.texts import STATE_TEXTS

log = logging.getLogger("pingan.web")
HERE = Path(__file__).resolve().parent
MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger number in a URL is "not found", not a database error
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # hand-in URLs carry their token: never hand it to another site in a Referer
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "cache-control": "no-store",
}


def form_body(*names: str, files: bool = False) -> dict:
    """OpenAPI for a form a route reads itself (``openapi_extra``): every field a string, and
    ``files`` a list of uploads. Only the suite reads it (it fuzzes the app from its schema)."""
    properties: dict = {name: {"type": "string"} for name in names}
    if files:
        properties["files"] = {"type": "array", "items": {"type": "string", "format": "binary"}}
    media = "multipart/form-data" if files else "application/x-www-form-urlencoded"
    return {"requestBody": {"required": True, "content": {media: {"schema": {"type": "object",
                                                                            "properties": properties}}}}}


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


def redact(path: str) -> str:
    """A request path fit for the log."""
    return re.sub(r"^/([emc])/[^/]*", r"/\1/…", path)


class Guard:
    """ASGI middleware: security headers, a cap on request bodies, and a token-free access log."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status, received = time.monotonic(), [0], [0]

        async def capped_receive():
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        finally:
            log.info("%s %s %s %.0fms", scope["method"], redact(scope["path"]), status[0] or "-",
                     (time.monotonic() - started) * 1000)


@dataclass
class Web:
    runtime: Runtime
    signer: Signer
    clock: Callable[[], dt.datetime]
    engine: sa.Engine
    templates: Jinja2Templates
    limits: evfiles.Limits
    max_body: int  # the largest request: every file plus the form's text and framing

    @classmethod
    def build(cls, runtime: Runtime, clock: Callable[[], dt.datetime], engine: sa.Engine) -> Web:
        settings, catalog = runtime.settings, runtime.catalog
        # Refuses a weak or demo key outside demo mode (ValueError, naming the setting, never its value).
        signer = Signer(settings.signing_key)
        limits = evfiles.Limits.of(settings)
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        templates.env.globals.update(
            t=t, pick=pick, locale=locale, human_size=evfiles.human_size,
            state_text=lambda s: STATE_TEXTS.get(s, (s, s)),
            kind_name=lambda k: pick(catalog.evidence_kinds[k].name, catalog.evidence_kinds[k].name_en)
            if k in catalog.evidence_kinds else k,
        )
        templates.env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M") if v else ""
        return cls(runtime, signer, clock, engine, templates, limits, limits.max_total + 2_000_000)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    @property
    def secure_cookies(self) -> bool:
        return self.settings.base_url.startswith("https://")

    def page(self, request: Request, name: str, code: int = 200, **context) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, context, status_code=code)

    def message(self, request: Request, title: str, body: str, code: int) -> HTMLResponse:
        return self.page(request, "message.html", code, title=title, body=body)

    def denied(self, request: Request) -> HTMLResponse:
        """The one answer to a refused link, whatever the reason: no detail to probe with."""
        return self.message(request, t("web.denied.title"), t("web.denied.body"), 403)

    def not_found(self, request: Request) -> HTMLResponse:
        return self.message(request, t("web.not_found"), "", 404)

    def unavailable(self, request: Request, *, kept: list[tuple[str, str]] = (), form: dict | None = None,
                    code: int = 503) -> HTMLResponse:
        """The page for a database or storage failure: says nothing was saved, shows what the
        person typed (``kept``: label, value) and, with ``form``, lets them send it again."""
        return self.page(request, "unavailable.html", code, kept=[(k, v) for k, v in kept if v], form=form)
