"""Review: a reviewer signs in with their own account, lists what was handed in for the units
they answer for, opens the files, accepts or rejects.

Reviewers are persons of the organisation (``pingan account add``): the safety section sees
every unit, a 包保/分管 leader only theirs (``pingan.accounts.rules.review_scope``) — a unit
outside their scope is "not found", whatever the URL. Sign-ins are throttled per account name
and per client address (429 while locked); sessions are rows, ended by signing out, by a
password change, by ``PINGAN_SESSION_IDLE_MINUTES`` without a request and after
``PINGAN_SESSION_MAX_HOURS``. Forms carry CSRF tokens; accepting and rejecting are
``pingan.evidence.service.review``, the same as ``pingan evidence accept|reject``, and every
audit row names the reviewer (``person:<code>``).
"""

from __future__ import annotations

import logging
import math
import urllib.parse

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from pingan.accounts import service as accounts
from pingan.accounts.service import Reviewer
from pingan.core.db import session_scope
from pingan.core.i18n import t
from pingan.evidence import files as evfiles
from pingan.evidence import service as ev
from pingan.web.sessions import (
    LOGIN_COOKIE, SESSION_COOKIE, client_address, current_reviewer, set_session,
)
from pingan.web.site import MAX_ID, BodyTooLarge, Web, form_body

log = logging.getLogger("pingan.web")


def ID():  # noqa: N802 — a fresh Path() for each parameter: FastAPI binds one to the name it first serves
    return Path(ge=1, le=MAX_ID)


async def small_form(request: Request) -> dict[str, str] | None:
    """A sign-in or review form (a few short fields, no files), or None when it is anything else."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > 100_000:
        return None
    try:
        form = await request.form(max_files=0, max_fields=20, max_part_size=20_000)
    except (BodyTooLarge, MultiPartException, StarletteHTTPException, UnicodeDecodeError, ValueError):
        return None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a page of this site, never elsewhere."""
    value = value or "/review"
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/review"
    return value if value.startswith(("/review", "/account")) else "/review"


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    signer = web.signer

    def csrf(request: Request) -> str:
        return signer.review_csrf(request.cookies.get(SESSION_COOKIE) or "")

    def checked(request: Request, form: dict | None) -> bool:
        return form is not None and signer.check_review_csrf(request.cookies.get(SESSION_COOKIE), form.get("csrf"))

    # ------------------------------------------------------------------ signing in and out

    def login_page(request: Request, next_: str | None, error: str | None = None, code: int = 200,
                   user: str = "", headers: dict | None = None) -> HTMLResponse:
        nonce = signer.new_nonce()
        response = web.page(request, "login.html", code, csrf=signer.login_csrf(nonce), next=safe_next(next_),
                            error=error, user=user, demo=web.settings.demo)
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                            secure=web.secure_cookies)
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = Query(None, max_length=2000)):
        return login_page(request, next)

    @router.post("/login", response_class=HTMLResponse, openapi_extra=form_body("csrf", "next", "user", "password"))
    async def login(request: Request):
        form = await small_form(request)
        if form is None:
            return login_page(request, None, t("web.bad_form"), 400)
        next_, user = safe_next(form.get("next")), form.get("user", "")[:100]
        if not signer.check_login_csrf(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return login_page(request, next_, t("web.csrf"), 403, user=user)
        address = client_address(request)

        def attempt() -> accounts.SignIn:
            with session_scope(web.engine) as session:
                return accounts.sign_in(session, login=user, password=form.get("password", ""), address=address,
                                        as_of=web.clock(), settings=web.settings)

        outcome = await run_in_threadpool(attempt)
        if outcome.wait:
            minutes = max(1, math.ceil(outcome.wait / 60))
            log.warning("sign-in refused: too many failures (account or address locked for %.0f s)", outcome.wait)
            return login_page(request, next_, t("rv.throttled", minutes=minutes), 429, user=user,
                              headers={"retry-after": str(math.ceil(outcome.wait))})
        if outcome.reviewer is None:
            log.warning("sign-in failed (%s)", outcome.reason)
            if outcome.reason == "scope":
                return login_page(request, next_, t("rv.no_scope"), 403, user=user)
            return login_page(request, next_, t("rv.bad_login"), 401, user=user)
        log.info("reviewer %s signed in", outcome.reviewer.code)
        response = RedirectResponse(next_, status_code=303)
        set_session(response, outcome.session_token, secure=web.secure_cookies)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @router.post("/logout", openapi_extra=form_body("csrf"))
    async def logout(request: Request, reviewer: Reviewer = Depends(current_reviewer)):
        if not checked(request, await small_form(request)):
            return web.message(request, t("web.csrf"), "", 403)

        def work() -> None:
            with session_scope(web.engine) as session:
                accounts.sign_out(session, reviewer, as_of=web.clock())

        await run_in_threadpool(work)
        log.info("reviewer %s signed out", reviewer.code)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ------------------------------------------------------------------ one's own password

    def password_page(request: Request, reviewer: Reviewer, *, errors: list[str] | None = None, done: bool = False,
                      code: int = 200) -> HTMLResponse:
        return web.page(request, "password.html", code, user=reviewer, csrf=csrf(request), errors=errors or [],
                        done=done)

    @router.get("/account/password", response_class=HTMLResponse)
    def password_form(request: Request, done: int = Query(0, ge=0, le=1),
                      reviewer: Reviewer = Depends(current_reviewer)):
        return password_page(request, reviewer, done=bool(done))

    @router.post("/account/password", response_class=HTMLResponse,
                 openapi_extra=form_body("csrf", "current", "new", "again"))
    async def change_password(request: Request, reviewer: Reviewer = Depends(current_reviewer)):
        form = await small_form(request)
        if not checked(request, form):
            return password_page(request, reviewer, errors=[t("web.csrf")], code=403)
        new = form.get("new", "")
        if new != form.get("again", ""):
            return password_page(request, reviewer, errors=[t("rv.pw.mismatch")], code=400)

        def work() -> str:
            with session_scope(web.engine) as session:
                return accounts.change_own_password(session, reviewer, current=form.get("current", ""), new=new,
                                                    as_of=web.clock(), settings=web.settings,
                                                    address=client_address(request))

        try:
            token = await run_in_threadpool(work)
        except accounts.AccountError as exc:
            return password_page(request, reviewer, errors=[str(exc)], code=400)
        log.info("reviewer %s changed their password: every other session ended", reviewer.code)
        response = RedirectResponse("/account/password?done=1", status_code=303)
        set_session(response, token, secure=web.secure_cookies)
        return response

    # ------------------------------------------------------------------ reviewing

    @router.get("/review", response_class=HTMLResponse)
    def review_list(request: Request, status: str = Query("submitted", max_length=20),
                    done: str | None = Query(None, max_length=20), id: int | None = Query(None, ge=1, le=MAX_ID),
                    n: int = Query(0, ge=0, le=10_000), reviewer: Reviewer = Depends(current_reviewer)):
        status = status if status in (*ev.STATUSES, "all") else "submitted"
        with Session(web.engine) as session:
            rows = ev.list_evidence(session, web.runtime, status=None if status == "all" else status,
                                    latest_only=status != "all", units=reviewer.scope.only)
        flash = t(f"rv.done.{done}", id=id, n=n) if done in ("accepted", "rejected") and id else None
        return web.page(request, "review_list.html", rows=rows, status=status, flash=flash, user=reviewer,
                        csrf=csrf(request))

    def detail_page(request: Request, reviewer: Reviewer, evidence_id: int, *, errors: list[str] | None = None,
                    reason: str = "", code: int = 200) -> HTMLResponse:
        with Session(web.engine) as session:
            detail = ev.evidence_detail(session, web.runtime, evidence_id)
        if detail is None or not reviewer.scope.covers(detail.task.unit_id):
            return web.not_found(request)
        return web.page(request, "review_detail.html", code, d=detail, errors=errors or [], reason=reason,
                        user=reviewer, csrf=csrf(request))

    @router.get("/review/{evidence_id}", response_class=HTMLResponse)
    def review_detail(request: Request, evidence_id: int = ID(), reviewer: Reviewer = Depends(current_reviewer)):
        return detail_page(request, reviewer, evidence_id)

    @router.get("/review/files/{file_id}")
    def review_file(request: Request, file_id: int = ID(), reviewer: Reviewer = Depends(current_reviewer)):
        with Session(web.engine) as session:
            stored = ev.stored_file(session, file_id)
        if stored is None or not reviewer.scope.covers(stored.unit_id):
            return web.not_found(request)
        path = evfiles.blob_path(web.settings.evidence_dir, stored.sha256)
        if not path.is_file():
            return web.not_found(request)
        return FileResponse(path, media_type=stored.content_type, headers=evfiles.download_headers(stored.filename))

    async def decide(request: Request, reviewer: Reviewer, evidence_id: int, accept: bool) -> Response:
        form = await small_form(request)
        if form is None:
            return web.message(request, t("web.bad_form"), "", 400)
        reason = form.get("reason", "")
        if not checked(request, form):
            return await run_in_threadpool(lambda: detail_page(request, reviewer, evidence_id, errors=[t("web.csrf")],
                                                               reason=reason, code=403))

        def work() -> ev.ReviewOutcome:
            with session_scope(web.engine) as session:
                return ev.review(session, web.runtime, evidence_id=evidence_id, accept=accept, reason=reason,
                                 actor=reviewer.actor, reviewer=reviewer.label, units=reviewer.scope.only,
                                 as_of=web.clock())

        try:
            outcome = await run_in_threadpool(work)
        except evfiles.EvidenceError as exc:
            if exc.status == 404:
                return web.not_found(request)
            messages, code = exc.messages, exc.status
            return await run_in_threadpool(lambda: detail_page(request, reviewer, evidence_id, errors=messages,
                                                               reason=reason, code=code))
        except sa.exc.SQLAlchemyError:
            log.exception("review of evidence #%s not recorded: database error", evidence_id)
            return web.unavailable(request, kept=[(t("rv.reason"), reason)] if reason else [])
        log.info("evidence #%s %s by %s", evidence_id, outcome.status, reviewer.code)
        query = urllib.parse.urlencode({"done": outcome.status, "id": evidence_id, "n": len(outcome.notified)})
        return RedirectResponse(f"/review?{query}", status_code=303)

    @router.post("/review/{evidence_id}/accept", openapi_extra=form_body("csrf"))
    async def accept(request: Request, evidence_id: int = ID(), reviewer: Reviewer = Depends(current_reviewer)):
        return await decide(request, reviewer, evidence_id, True)

    @router.post("/review/{evidence_id}/reject", openapi_extra=form_body("csrf", "reason"))
    async def reject(request: Request, evidence_id: int = ID(), reviewer: Reviewer = Depends(current_reviewer)):
        return await decide(request, reviewer, evidence_id, False)

    return router
