"""Who is signed in, for every page that needs a reviewer.

A route that needs one declares it: ``reviewer: Reviewer = Depends(current_reviewer)``. Without
a valid session (unknown, signed out, idle past ``PINGAN_SESSION_IDLE_MINUTES``, past
``PINGAN_SESSION_MAX_HOURS``, its account disabled or its password changed) the request is
answered with a redirect to the sign-in page, which comes back to the same page. What the
reviewer may see is ``reviewer.scope`` (``covers(unit_id)``, ``only`` for queries).

Sessions themselves are rows (``pingan.accounts.service``): the cookie holds a random token,
the database its SHA-256.
"""

from __future__ import annotations

import urllib.parse

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pingan.accounts import service as accounts
from pingan.accounts.service import Reviewer
from pingan.core.db import session_scope

SESSION_COOKIE, LOGIN_COOKIE = "pingan_session", "pingan_login"


class SignInRequired(Exception):
    """Raised by ``current_reviewer``; the app answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def client_address(request: Request) -> str:
    """The client's address as the throttle counts it (uvicorn applies X-Forwarded-For from
    the proxies in FORWARDED_ALLOW_IPS, 127.0.0.1 by default)."""
    return request.client.host if request.client else "unknown"


def _lookup(request: Request) -> Reviewer | None:
    web = request.app.state.web
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with session_scope(web.engine) as session:
        return accounts.reviewer_for(session, token, as_of=web.clock(), settings=web.settings)


async def optional_reviewer(request: Request) -> Reviewer | None:
    """The signed-in reviewer, or None; looked up once per request."""
    if not hasattr(request.state, "reviewer"):
        request.state.reviewer = await run_in_threadpool(_lookup, request)
    return request.state.reviewer


async def current_reviewer(request: Request) -> Reviewer:
    """A FastAPI dependency: the signed-in reviewer, or a redirect to the sign-in page."""
    reviewer = await optional_reviewer(request)
    if reviewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return reviewer


def to_sign_in(next_path: str) -> RedirectResponse:
    return RedirectResponse("/login?" + urllib.parse.urlencode({"next": next_path}), status_code=303)


def set_session(response: Response, token: str, *, secure: bool) -> None:
    # no max-age: the cookie ends with the browser; the server ends the session itself
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure)
