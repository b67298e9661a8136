"""The evidence web app: hand-in through a reminder's signed link, review behind the operator's login.

Server-rendered (Jinja2), no JavaScript, one column: most people open it from WeCom or
DingTalk on a phone. The routes (``handin``, ``review``) are thin: checking, storing and
reviewing are ``pingan.evidence.service``'s, shared with ``pingan evidence …``. No page, log line or
error carries the signing key, the operator's password or a hand-in token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pingan.core.clock import now
from pingan.core.db import get_engine
from pingan.duties.runtime import Runtime, build_runtime, get_runtime
from pingan.core.settings import Settings
from pingan.web import handin, review
from pingan.web.site import HERE, Guard, Web


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The app. Raises ValueError for a placeholder secret key or operator password outside demo mode.

    ``clock`` gives the instant hand-ins and reviews are recorded at and links are checked
    against (tests and demos replay time); by default the wall clock.
    """
    if runtime is None:
        runtime = build_runtime(settings) if settings is not None else get_runtime()
    web = Web.build(runtime, clock or now, get_engine(runtime.settings.db_url))

    app = FastAPI(title="pingan evidence", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Guard, max_body=web.max_body)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(handin.routes(web))
    app.include_router(review.routes(web))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return web.not_found(request)
        return PlainTextResponse(str(exc.status_code), status_code=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/review", status_code=303)

    return app
