"""Review: the operator signs in, lists what was handed in, opens the files, accepts or rejects.

Sessions are signed cookies (``pingan.web.auth``), forms carry CSRF tokens; accepting and
rejecting are ``pingan.evidence.service.review``, the same as ``pingan evidence accept|reject``.
A rejection's notice goes out with the outbox's next dispatch (the sweeper runs every 15
minutes in working hours), not from inside the request.
"""

from __future__ import annotations

import logging
import urllib.parse

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from pingan.evidence import service as ev
from pingan.evidence import files as evfiles
from pingan.core.db import session_scope
from pingan.core.i18n import t
from pingan.web.auth import SESSION_TTL, check_password
from pingan.web.site import BodyTooLarge, Web

log = logging.getLogger("pingan.web")
SESSION_COOKIE, LOGIN_COOKIE = "pingan_operator", "pingan_login"


async def small_form(request: Request) -> dict[str, str] | None:
    """A login or review form (a few short fields, no files), or None when it is anything else."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > 100_000:
        return None
    try:
        form = await request.form(max_files=0, max_fields=20, max_part_size=20_000)
    except (BodyTooLarge, MultiPartException, StarletteHTTPException):
        return None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a review page of this site, never elsewhere."""
    value = value or "/review"
    return value if value.startswith("/review") and "//" not in value and "\\" not in value else "/review"


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    settings, signer = web.settings, web.signer

    def operator(request: Request) -> str | None:
        return signer.session_user(request.cookies.get(SESSION_COOKIE))

    def csrf(request: Request) -> str:
        return signer.review_csrf(request.cookies.get(SESSION_COOKIE) or "")

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)

    # ------------------------------------------------------------------ signing in and out

    def login_page(request: Request, next_: str | None, error: str | None = None, code: int = 200) -> HTMLResponse:
        nonce = signer.new_nonce()
        response = web.page(request, "login.html", code, csrf=signer.login_csrf(nonce), next=safe_next(next_),
                            error=error, user=settings.operator_user if settings.demo else "")
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                            secure=web.secure_cookies)
        return response

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None):
        return login_page(request, next)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request):
        form = await small_form(request)
        if form is None:
            return login_page(request, None, t("web.bad_form"), 400)
        next_ = safe_next(form.get("next"))
        if not signer.check_login_csrf(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return login_page(request, next_, t("web.csrf"), 403)
        # both compared in constant time, and both always (no early answer for a wrong name)
        user_ok = check_password(form.get("user", ""), settings.operator_user)
        password_ok = check_password(form.get("password", ""), settings.operator_secret)
        if not (user_ok and password_ok):
            log.warning("operator login failed")
            return login_page(request, next_, t("rv.bad_login"), 401)
        log.info("operator signed in")
        response = RedirectResponse(next_, status_code=303)
        response.set_cookie(SESSION_COOKIE, signer.session_cookie(settings.operator_user), max_age=SESSION_TTL,
                            httponly=True, samesite="strict", secure=web.secure_cookies)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request):
        form = await small_form(request)
        if form is None or not signer.check_review_csrf(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
            return web.message(request, t("web.csrf"), "", 403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ------------------------------------------------------------------ reviewing

    @router.get("/review", response_class=HTMLResponse)
    def review_list(request: Request, status: str = "submitted", done: str | None = None, id: int | None = None,
                    n: int = 0):
        user = operator(request)
        if user is None:
            return to_login(request)
        status = status if status in (*ev.STATUSES, "all") else "submitted"
        with Session(web.engine) as session:
            rows = ev.list_evidence(session, web.runtime, status=None if status == "all" else status,
                                    latest_only=status != "all")
        flash = t(f"rv.done.{done}", id=id, n=n) if done in ("accepted", "rejected") and id else None
        return web.page(request, "review_list.html", rows=rows, status=status, flash=flash, user=user, csrf=csrf(request))

    def detail_page(request: Request, evidence_id: int, *, errors: list[str] | None = None, reason: str = "",
                    code: int = 200) -> HTMLResponse:
        with Session(web.engine) as session:
            detail = ev.evidence_detail(session, web.runtime, evidence_id)
        if detail is None:
            return web.not_found(request)
        return web.page(request, "review_detail.html", code, d=detail, errors=errors or [], reason=reason,
                        user=operator(request), csrf=csrf(request))

    @router.get("/review/{evidence_id}", response_class=HTMLResponse)
    def review_detail(request: Request, evidence_id: int):
        if operator(request) is None:
            return to_login(request)
        return detail_page(request, evidence_id)

    @router.get("/review/files/{file_id}")
    def review_file(request: Request, file_id: int):
        if operator(request) is None:
            return to_login(request)
        with Session(web.engine) as session:
            stored = ev.stored_file(session, file_id)
        path = evfiles.blob_path(settings.evidence_dir, stored.sha256) if stored else None
        if path is None or not path.is_file():
            return web.not_found(request)
        disposition = "inline" if stored.inline else "attachment"
        return FileResponse(path, media_type=stored.content_type, headers={
            "content-disposition": f"{disposition}; filename*=UTF-8''{urllib.parse.quote(stored.filename, safe='')}",
            # the content was checked to be an image, PDF or Office file; a stricter policy stops Chrome's PDF viewer
            "content-security-policy": "frame-ancestors 'none'",
            "cache-control": "private, no-store",
        })

    async def decide(request: Request, evidence_id: int, accept: bool) -> Response:
        user = operator(request)
        if user is None:
            return to_login(request)
        form = await small_form(request)
        if form is None:
            return web.message(request, t("web.bad_form"), "", 400)
        reason = form.get("reason", "")
        if not signer.check_review_csrf(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
            return await run_in_threadpool(lambda: detail_page(request, evidence_id, errors=[t("web.csrf")],
                                                               reason=reason, code=403))

        def work() -> ev.ReviewOutcome:
            with session_scope(web.engine) as session:
                return ev.review(session, web.runtime, evidence_id=evidence_id, accept=accept, reason=reason,
                                 actor=f"operator:{user}", as_of=web.clock())

        try:
            outcome = await run_in_threadpool(work)
        except evfiles.EvidenceError as exc:
            messages, code = exc.messages, exc.status
            return await run_in_threadpool(lambda: detail_page(request, evidence_id, errors=messages, reason=reason,
                                                               code=code))
        log.info("evidence #%s %s by the operator", evidence_id, outcome.status)
        query = urllib.parse.urlencode({"done": outcome.status, "id": evidence_id, "n": len(outcome.notified)})
        return RedirectResponse(f"/review?{query}", status_code=303)

    @router.post("/review/{evidence_id}/accept")
    async def accept(request: Request, evidence_id: int):
        return await decide(request, evidence_id, True)

    @router.post("/review/{evidence_id}/reject")
    async def reject(request: Request, evidence_id: int):
        return await decide(request, evidence_id, False)

    return router
