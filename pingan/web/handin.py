"""Hand-in: ``/e/<token>`` shows the task and its form; posting it stores a new evidence version.

The token (``pingan.core.links``) names the task and the person and expires; the person must also
have been reminded of the task or answer for it. Every refusal is the same 403 page. The form
carries a CSRF token tied to the link; a bad hand-in is shown again with its messages and what
was typed, and nothing is stored. When the database or the file store fails, nothing is stored
either: the page says so in Chinese and keeps what was typed, ready to send again.
"""

from __future__ import annotations

import logging
import urllib.parse

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from models import Evidence, Person
from pingan.core.db import session_scope
from pingan.core.i18n import pick, t
from pingan.core.links import LinkGrant
from pingan.evidence import files as evfiles
from pingan.evidence import service as ev
from pingan.web import watchday
from pingan.web.grants import home_of, link_grant, task_and_person
from pingan.web.site import BodyTooLarge, Web, form_body

log = logging.getLogger("pingan.web")


def TOKEN():
    return Path(max_length=200)


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    catalog, limits = web.catalog, web.limits

    def grant_of(token: str) -> LinkGrant | None:
        return link_grant(web, token)

    def allowed(token: str) -> tuple[ev.Task, Person] | None:
        return task_and_person(web, token)

    def hand_in_page(request: Request, token: str, task: ev.Task, *, kind: str | None = None,
                     values: dict | None = None, note: str = "", errors: list[str] | None = None,
                     done: int | None = None, code: int = 200) -> HTMLResponse:
        duty = task.duty
        kinds = [catalog.evidence_kinds[k] for k in duty.evidence if k in catalog.evidence_kinds]
        chosen = next((k for k in kinds if k.key == kind), kinds[0])
        try:
            with Session(web.engine) as session:
                versions = ev.versions_of(session, web.runtime, task.id)
                carrier = session.get(Person, task.person_id) if task.person_id else None
                grant = link_grant(web, token)
                home = home_of(web, session, grant.person_id) if grant else None
        except sa.exc.SQLAlchemyError:  # the form is what matters now: show it without the history
            log.warning("hand-in page of task %s shown without its history: database error", task.id)
            versions, carrier, home = [], None, None
        fields = [{
            "name": f"f_{f.key}", "label": pick(f.label, f.label_en), "type": f.type, "required": f.required,
            "value": (values or {}).get(f.key, ""),
        } for f in chosen.fields]
        return web.page(
            request, "handin.html", code, task=task, duty=duty, carrier=carrier.name if carrier else None, home=home,
            document=catalog.documents.get(duty.source.document, duty.source.document),
            state="rejected" if task.review == "rejected" else task.state(web.clock()),
            kinds=kinds, kind=chosen, fields=fields, note=note, errors=errors or [], done=done,
            versions=versions, latest=versions[0] if versions else None, accepted=task.review == "accepted",
            csrf=web.signer.hand_in_csrf(token), limits=limits, accept=",".join("." + x for x in limits.types),
        )

    def kept_page(request: Request, token: str, text: dict[str, str]) -> HTMLResponse:
        """The database could not even say whose link this is: keep what was typed, offer to send it again."""
        kind = catalog.evidence_kinds.get(text.get("kind") or "")
        kept = [(pick(f.label, f.label_en), text.get(f"f_{f.key}", "")) for f in (kind.fields if kind else ())]
        kept.append((t("web.note"), text.get("note", "")))
        resend = {k: v for k, v in text.items() if k.startswith("f_") or k in ("kind", "note")}
        return web.unavailable(request, kept=kept, form={"action": f"/e/{token}", "values": resend,
                                                         "csrf": web.signer.hand_in_csrf(token)})

    @router.get("/e/{token}", response_class=HTMLResponse)
    def hand_in_form(request: Request, token: str = TOKEN(), kind: str | None = Query(None, max_length=64),
                     done: int | None = Query(None, ge=1, le=100_000),
                     filed: str | None = Query(None, max_length=16)):
        found = allowed(token)
        if found is None:
            return web.denied(request)
        special = watchday.page_for(web, request, token, *found, done=filed)  # the holiday watch: its own forms
        if special is not None:
            return special
        return hand_in_page(request, token, found[0], kind=kind, done=done)

    @router.post("/e/{token}", response_class=HTMLResponse,
                 openapi_extra=form_body("csrf", "kind", "note", "f_date", "f_attendees", "f_topics", files=True))
    async def hand_in(request: Request, token: str = TOKEN()):
        if grant_of(token) is None:  # no database needed to refuse a forged or expired link
            return web.denied(request)
        try:
            found = await run_in_threadpool(allowed, token)
        except sa.exc.SQLAlchemyError:
            log.exception("hand-in link not checked: database error")
            found = "unavailable"
        if found is None:
            return web.denied(request)
        if found == "unavailable":
            try:
                form = await request.form(max_files=limits.max_files + 1, max_fields=200)
                text = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                await form.close()
            except (BodyTooLarge, MultiPartException, StarletteHTTPException):
                text = {}
            return kept_page(request, token, text)
        task, person = found

        async def again(errors: list[str], code: int, **kw) -> HTMLResponse:
            return await run_in_threadpool(lambda: hand_in_page(request, token, task, errors=errors, code=code, **kw))

        too_large = t("web.too_large", limit=evfiles.human_size(limits.max_total))
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > web.max_body:
            return await again([too_large], 413)
        try:
            form = await request.form(max_files=limits.max_files + 1, max_fields=200)
        except BodyTooLarge:
            return await again([too_large], 413)
        except (MultiPartException, StarletteHTTPException) as exc:
            if "files" in str(getattr(exc, "detail", None) or getattr(exc, "message", None) or exc).lower():
                return await again([t("ev.err.max_files", n=limits.max_files)], 413)
            return await again([t("web.bad_form")], 400)
        try:
            text = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            kind, note = text.get("kind"), text.get("note", "")
            raw = {k[2:]: v for k, v in text.items() if k.startswith("f_")}
            keep = {"kind": kind, "values": raw, "note": note}
            if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
                log.info("hand-in refused: CSRF token missing or stale (task %s)", task.id)
                return await again([t("web.csrf")], 403, **keep)
            uploads = [evfiles.Upload(f.filename or "", f.file) for f in form.getlist("files") if isinstance(f, UploadFile)]

            def record() -> Evidence:
                checked = ev.check_hand_in(task.duty, catalog.evidence_kinds, kind or task.duty.evidence[0], raw, note,
                                           uploads, limits)
                with session_scope(web.engine) as session:
                    return ev.hand_in(session, web.runtime, task=task, person=person, checked=checked, as_of=web.clock())

            try:
                evidence = await run_in_threadpool(record)
            except evfiles.EvidenceError as exc:
                log.info("hand-in refused for task %s: %s", task.id, exc)
                return await again(exc.messages, exc.status, **keep)
            except (OSError, sa.exc.SQLAlchemyError):
                # the transaction rolled back: no evidence row, no file row, the task unchanged
                log.exception("hand-in for task %s not stored: storage or database error", task.id)
                return await again([t("web.store_failed")], 503, **keep)
        finally:
            await form.close()
        log.info("evidence #%s handed in: task %s version %s by person %s", evidence.id, task.id, evidence.version,
                 person.id)
        query = urllib.parse.urlencode({"done": evidence.version, "kind": evidence.kind})
        return RedirectResponse(f"/e/{token}?{query}", status_code=303)

    return router
