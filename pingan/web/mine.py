"""A person's own page (``/m/<token>``), their leader's page, hazards by link and the calendar feed.

Every message carries the person's page link (``pingan.core.links.page_url``): long-lived,
revoked with ``pingan person link revoke CODE``, after which the old link is the same 403 page
as any refused link. The page lists what waits for the person (``pingan.reports.pages``); each
task opens its hand-in page through a fresh hand-in link, each hazard its form here. Hazard
actions are ``pingan.hazards.service``'s (the same moves, events and audit as the shell). The
leader's page (``/m/<token>/lead``) shows the overdue tasks of the units the person answers for,
each readable (``/m/<token>/task/<id>``), with "remind again". The feed (``/c/<token>.ics``) is
an iCalendar of the same open tasks, signed for its own purpose; ``/c/<token>/unit/<id>.ics``
is a unit's.
"""

from __future__ import annotations

import datetime as dt
import logging

import icalendar
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from models import Person
from pingan.core.clock import local
from pingan.core.db import session_scope
from pingan.core.i18n import t
from pingan.core.links import sign
from pingan.evidence import files as evfiles
from pingan.evidence import service as ev
from pingan.hazards import service as hazards
from pingan.hazards.rules import HazardError
from pingan.org import links
from pingan.org.snapshot import load_org
from pingan.reports import pages
from pingan.web.site import MAX_ID, BodyTooLarge, Web, form_body
from pingan.web.watchday import watch_duties

log = logging.getLogger("pingan.web")


def TOKEN():
    return Path(max_length=200)


def routes(web: Web) -> APIRouter:
    router = APIRouter()

    def person_of(token: str, purpose: str = "page") -> Person | None:
        with Session(web.engine, expire_on_commit=False) as session:
            try:
                person = links.person_of(session, token, web.settings.signing_keys, purpose)
            except links.LinkRefused as exc:
                log.info("person link refused: %s", exc)
                return None
            session.expunge(person)
            return person

    def task_link(task_id: int, person_id: int, due: dt.datetime) -> str:
        expires = max(due, web.clock()) + dt.timedelta(days=web.settings.link_ttl_days)
        return f"/e/{sign(task_id, person_id, expires, web.settings.signing_key)}"

    @router.get("/m/{token}", response_class=HTMLResponse)
    def my_page(request: Request, token: str = TOKEN()):
        person = person_of(token)
        if person is None:
            return web.denied(request)
        now = web.clock()
        with Session(web.engine) as session:
            org = load_org(session)
            page = pages.my_page(session, web.runtime, org, person.id, now)
            report_links = _watch_links(session, web, page, person.id)
            _page, feed = links.urls(session, person.id, web.settings.base_url, web.settings.signing_key)
            units = [(org.units[u].name, f"{feed[:-len('.ics')]}/unit/{u}.ics") for u in pages.feed_units(org, person.id)]
        base = web.settings.base_url.rstrip("/")
        return web.page(request, "my.html", page=page, token=token, now=now, unit_feeds=units,
                        link=lambda x: task_link(x.id, person.id, x.due_at), watch_links=report_links,
                        feed_https=feed, feed_webcal="webcal://" + feed.split("://", 1)[1] if "://" in feed else feed,
                        base=base)

    # ------------------------------------------------------------------ the leader's page
    def lead_page(request: Request, token: str, person: Person, *, notice: str | None = None, error: str | None = None,
                  code: int = 200) -> HTMLResponse:
        now = web.clock()
        with Session(web.engine) as session:
            org = load_org(session)
            groups = pages.lead_page(session, web.runtime, org, person.id, now)
            units = [org.units[u].name for u in pages.led_units(org, person.id)]
        return web.page(request, "lead.html", code, groups=groups, units=units, token=token, notice=notice,
                        error=error, csrf=web.signer.hand_in_csrf(token), link=lambda x: f"/m/{token}/task/{x.id}")

    @router.get("/m/{token}/lead", response_class=HTMLResponse)
    def lead(request: Request, token: str = TOKEN()):
        person = person_of(token)
        if person is None:
            return web.denied(request)
        return lead_page(request, token, person)

    @router.post("/m/{token}/lead/remind", response_class=HTMLResponse, openapi_extra=form_body("csrf", "unit"))
    async def remind(request: Request, token: str = TOKEN()):
        person = person_of(token)
        if person is None:
            return web.denied(request)
        form = await request.form(max_files=0, max_fields=20)
        text = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
            return lead_page(request, token, person, error=t("web.csrf"), code=403)
        unit = text.get("unit", "")
        if not (unit.isascii() and unit.isdigit() and int(unit) <= MAX_ID):
            return web.message(request, t("web.bad_request"), "", 400)
        now = web.clock()
        try:
            with session_scope(web.engine) as session:
                org = load_org(session)
                queued = pages.remind_again(session, web.runtime, org, leader_id=person.id, unit_id=int(unit), as_of=now,
                                            actor=f"person:{person.code}")
                name = org.units[int(unit)].name
        except LookupError:
            return web.denied(request)
        except pages.TooSoon as exc:
            with Session(web.engine) as session:
                name = load_org(session).units[int(unit)].name
            return lead_page(request, token, person, code=429, error=t(
                "lead.too_soon", unit=name, at=local(exc.last).strftime("%m-%d %H:%M"), hours=pages.REMIND_AGAIN_HOURS))
        log.info("unit %s reminded again by person %s: %s notice(s)", unit, person.id, queued)
        return lead_page(request, token, person, notice=t("lead.reminded", unit=name, n=queued))

    @router.get("/m/{token}/task/{task_id}", response_class=HTMLResponse)
    def task_view(request: Request, token: str = TOKEN(), task_id: int = Path(ge=1, le=MAX_ID)):
        """A task of a unit the leader answers for, read-only; its carriers go to the hand-in page."""
        person = person_of(token)
        if person is None:
            return web.denied(request)
        now = web.clock()
        with Session(web.engine) as session:
            org = load_org(session)
            task = ev.load_task(session, web.runtime, task_id)
            if task is None or task.duty is None:
                return web.not_found(request)
            carriers = org.assignees(task.duty.carrier, task.unit_id, task.person_id)
            if person.id in carriers:
                return RedirectResponse(task_link(task.id, person.id, task.due_at), status_code=303)
            if task.unit_id not in pages.led_units(org, person.id):
                return web.denied(request)
            versions = ev.versions_of(session, web.runtime, task.id)
            names = [org.persons[p].name for p in carriers if p in org.persons]
        return web.page(request, "task_view.html", task=task, duty=task.duty, state=task.state(now), carriers=names,
                        versions=versions, token=token, csrf=web.signer.hand_in_csrf(token),
                        document=web.catalog.documents.get(task.duty.source.document, task.duty.source.document))

    # ------------------------------------------------------------------ hazards by link
    def hazard_page(request: Request, token: str, person: Person, hazard_id: int, *, errors=(), note: str = "",
                    done: str | None = None, code: int = 200) -> HTMLResponse:
        with Session(web.engine) as session:
            org = load_org(session)
            role = pages.may_act_on_hazard(session, web.runtime, org, person.id, hazard_id)
            item = next((h for h in pages.my_hazards(session, web.runtime, org, person.id) if h.id == hazard_id), None)
        if role is None and done is None:
            return web.message(request, t("hzw.gone"), "", 403 if code == 200 else code)
        return web.page(request, "hazard.html", code, hazard=item, role=role, token=token, errors=list(errors),
                        note=note, done=done, hazard_id=hazard_id, csrf=web.signer.hand_in_csrf(token),
                        limits=web.limits, accept=",".join("." + x for x in web.limits.types))

    @router.get("/m/{token}/hazard/{hazard_id}", response_class=HTMLResponse)
    def hazard_form(request: Request, token: str = TOKEN(), hazard_id: int = Path(ge=1, le=MAX_ID),
                    done: str | None = Query(None, max_length=16)):
        person = person_of(token)
        if person is None:
            return web.denied(request)
        return hazard_page(request, token, person, hazard_id, done=done or None)

    @router.post("/m/{token}/hazard/{hazard_id}", response_class=HTMLResponse,
                 openapi_extra=form_body("csrf", "note", "decision", files=True))
    async def hazard_act(request: Request, token: str = TOKEN(), hazard_id: int = Path(ge=1, le=MAX_ID)):
        person = person_of(token)
        if person is None:
            return web.denied(request)
        try:
            form = await request.form(max_files=web.limits.max_files + 1, max_fields=20)
        except BodyTooLarge:
            return hazard_page(request, token, person, hazard_id, code=413,
                               errors=[t("web.too_large", limit=evfiles.human_size(web.limits.max_total))])
        except (MultiPartException, StarletteHTTPException):
            return hazard_page(request, token, person, hazard_id, errors=[t("web.bad_form")], code=400)
        try:
            text = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            note = text.get("note", "")
            if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
                return hazard_page(request, token, person, hazard_id, errors=[t("web.csrf")], note=note, code=403)
            uploads = [evfiles.Upload(f.filename or "", f.file) for f in form.getlist("files") if isinstance(f, UploadFile)]
            now, actor = web.clock(), f"person:{person.code}"
            with Session(web.engine) as session:
                role = pages.may_act_on_hazard(session, web.runtime, load_org(session), person.id, hazard_id)
            if role is None:
                return web.message(request, t("hzw.gone"), "", 403)
            try:
                if role == "rectify":
                    new = hazards.act(web.runtime, lambda s, org: hazards.rectify(
                        s, web.runtime, org, hazard_id, person_id=person.id, note=note, files=uploads, actor=actor, as_of=now))
                else:
                    new = hazards.act(web.runtime, lambda s, org: hazards.verify(
                        s, web.runtime, org, hazard_id, person_id=person.id, passed=text.get("decision") == "pass",
                        note=note, actor=actor, as_of=now, files=uploads))
            except HazardError as exc:
                return hazard_page(request, token, person, hazard_id, errors=[str(exc)], note=note, code=400)
        finally:
            await form.close()
        log.info("hazard #%s moved to %s by person %s", hazard_id, new, person.id)
        return RedirectResponse(f"/m/{token}/hazard/{hazard_id}?done={new}", status_code=303)

    # ------------------------------------------------------------------ the calendar feed
    @router.get("/c/{token}.ics")
    def feed(request: Request, token: str = TOKEN()):
        person = person_of(token, "feed")
        if person is None:
            return web.denied(request)
        now = web.clock()
        with Session(web.engine) as session:
            tasks = pages.my_tasks(session, web.runtime, load_org(session), person.id, now)
        base = web.settings.base_url.rstrip("/")
        body = calendar(person.name, tasks, now, lambda x: base + task_link(x.id, person.id, x.due_at))
        return Response(body, media_type="text/calendar; charset=utf-8")

    @router.get("/c/{token}/unit/{unit_id}.ics")
    def unit_feed(request: Request, token: str = TOKEN(), unit_id: int = Path(ge=1, le=MAX_ID)):
        """A unit's calendar: every open task of the unit, for a person of it or answering for it."""
        person = person_of(token, "feed")
        if person is None:
            return web.denied(request)
        now = web.clock()
        with Session(web.engine) as session:
            org = load_org(session)
            if unit_id not in pages.feed_units(org, person.id):
                return web.denied(request)
            found = pages.unit_tasks(session, web.runtime, org, unit_id, now)
            names = {pid: org.persons[pid].name for _, carriers in found for pid in carriers if pid in org.persons}
            unit = org.units[unit_id].name
        base = web.settings.base_url.rstrip("/")
        tasks = [task for task, _ in found]
        carried = {task.id: [names[p] for p in carriers if p in names] for task, carriers in found}
        mine = {task.id for task, carriers in found if person.id in carriers}
        body = calendar(unit, tasks, now, lambda x: base + task_link(x.id, person.id, x.due_at) if x.id in mine else None,
                        carriers=carried)
        return Response(body, media_type="text/calendar; charset=utf-8")

    return router


def _watch_links(session: Session, web: Web, page: pages.MyPage, person_id: int) -> dict:
    """For each watch row, the open roster and daily-report tasks of its unit (id, due) to link to."""
    roster, report = watch_duties(web)
    by_key = {(x.duty_key, x.unit_id, x.period): x for x in page.tasks}
    out = {}
    for w in page.watch:
        out[(w.unit_id, w.period)] = {
            "report": by_key.get((report, w.unit_id, w.day.isoformat())) if w.day else None,
            "roster": next((x for (d, u, _), x in by_key.items() if d == roster and u == w.unit_id), None),
        }
    return out


def calendar(name: str, tasks: list[pages.TaskItem], as_of: dt.datetime, link,
             carriers: dict[int, list[str]] | None = None) -> bytes:
    """An iCalendar (RFC 5545) of the tasks: one event per task ending at its deadline, with the
    link to act on it (``link(task)``, None where the reader does not carry it) and, for a unit's
    calendar, who carries it."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//pingan//school safety//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", t("cal.name", name=name))
    cal.add("x-wr-timezone", "Asia/Shanghai")
    for task in tasks:
        event = icalendar.Event()
        url = link(task)
        event.add("uid", f"task-{task.id}@pingan")
        event.add("dtstamp", as_of.astimezone(dt.UTC))
        event.add("dtstart", local(task.due_at) - dt.timedelta(minutes=30))
        event.add("dtend", local(task.due_at))
        event.add("summary", t("cal.summary", duty=task.name, unit=task.unit))
        lines = [t("cal.description", clause=task.clause, period=task.period)]
        if carriers is not None:
            lines.append(t("cal.carriers", names="、".join(carriers.get(task.id, []))))
        if url:
            lines.append(t("cal.open", link=url))
            event.add("url", url)
        event.add("description", "\n".join(lines))
        cal.add_component(event)
    return cal.to_ical()
