"""The evidence web app: hand-in through a reminder's signed link, review behind reviewers' own accounts.

Server-rendered (Jinja2), no JavaScript, one column: most people open it from WeCom or
DingTalk on a phone. The routes (``handin``, ``review``) are thin: checking, storing and
reviewing are ``pingan.evidence.service``'s, shared with ``pingan evidence …``; accounts and
sessions are ``pingan.accounts``', reached through ``pingan.web.sessions``. No page, log line
or error carries a signing key, a password, a session cookie or a hand-in token.

Every answer is a page in the reader's language: a bad URL parameter gets the 404 or 400 page
(never FastAPI's JSON, which echoes the input), a database or storage failure a 503 page, any
other failure a 500 page without detail. ``/healthz`` answers 200 only when the database and the
evidence store both work.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pingan.core.clock import now
from pingan.core.db import get_engine
from pingan.core.i18n import t
from pingan.core.settings import Settings
from pingan.duties.runtime import Runtime, build_runtime, get_runtime
from pingan.evidence.files import check_store
from pingan.web import handin, mine, review, watchday
from pingan.web.sessions import SignInRequired, to_sign_in
from pingan.web.site import HERE, Guard, Web, redact

log = logging.getLogger("pingan.web")


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The app. Raises ValueError (one line) for a signing key refused outside demo mode.

    ``clock`` gives the instant hand-ins, reviews, sign-ins and sessions are recorded at and
    links are checked against (tests and demos replay time); by default the wall clock.
    """
    if runtime is None:
        runtime = build_runtime(settings) if settings is not None else get_runtime()
    runtime.settings.check_secrets()
    web = Web.build(runtime, clock or now, get_engine(runtime.settings.db_url))

    # The OpenAPI schema is not served (it would only map the site for a prober), but it exists
    # (``app.openapi()``) so the suite can fuzz every route from it (tests/test_web_fuzz.py).
    app = FastAPI(title="pingan evidence", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.add_middleware(Guard, max_body=web.max_body)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(handin.routes(web))
    app.include_router(watchday.routes(web))
    app.include_router(mine.routes(web))
    app.include_router(review.routes(web))

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired):
        return to_sign_in(exc.next_path)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):
        # Never echo the input: a wrong path parameter is a page that does not exist, a wrong
        # query parameter a bad request.
        if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
            return web.not_found(request)
        return web.message(request, t("web.bad_request"), t("web.bad_request_body"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return web.not_found(request)
        if exc.status_code == 405:
            return web.message(request, t("web.method"), "", 405)
        return web.message(request, t("web.bad_request"), "", exc.status_code)

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def database_down(request: Request, exc: sa.exc.SQLAlchemyError):
        log.error("database error on %s %s: %s", request.method, redact(request.url.path), type(exc).__name__)
        return web.unavailable(request)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception):
        return web.message(request, t("web.error.title"), t("web.error.body"), 500)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        """200 "ok" when the database answers and a file can be stored; 503 naming what fails."""
        problems = []
        try:
            with web.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            problems.append(f"database: {type(exc).__name__}")
        store = check_store(web.settings.evidence_dir)
        if store:
            problems.append(f"evidence store: {store}")
        if problems:
            log.warning("health check failed: %s", "; ".join(problems))
            return PlainTextResponse("; ".join(problems), status_code=503)
        return PlainTextResponse("ok")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/review", status_code=303)

    app.openapi = lambda: _truthful(app)
    return app


def _truthful(app: FastAPI) -> dict:
    """The schema FastAPI derives, with the answers this app really gives: a bad parameter is the
    400 or 404 page (FastAPI would promise a 422 JSON body)."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    page = {"content": {"text/html": {"schema": {"type": "string"}}}}
                    responses.setdefault("400", {"description": "the bad request page", **page})
                    responses.setdefault("404", {"description": "the not found page", **page})
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
