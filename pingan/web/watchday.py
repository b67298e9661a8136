"""The holiday watch from a reminder's link: the daily report in one tap, an incident, the roster.

The link of a daily-report task (``/e/<token>``) shows "平安无事" and "报告事故" instead of the
evidence form: 平安无事 asks once more, then files the report as ``pingan watch report`` does
(``pingan.watch.service.file_report``); 报告事故 opens a form with the unit and the time filled
in and registers the incident through the same function, which starts its clock (the clock runs
at once, as after ``pingan watch report``; later escalations are the incident sweep's). The link of a
roster task shows the roster form (带班领导, 值班值宿人员, phones): ``file_roster``. Every form
carries the hand-in CSRF token of its link; a refused filing shows its one-line reason and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from models import Person, WatchReport
from pingan.core.clock import TZ, local
from pingan.core.db import session_scope
from pingan.core.i18n import pick, t
from pingan.duties.catalog import CatalogError
from pingan.duties.service import ensure_catalog
from pingan.evidence import service as ev
from pingan.incidents import rules as incident_rules
from pingan.incidents import service as incidents
from pingan.incidents.rules import IncidentError
from pingan.incidents.workflow import CLOCK
from pingan.org.snapshot import load_org
from pingan.watch import service as watch
from pingan.watch.rules import WatchError, load_rules, parse_entry
from pingan.web.grants import home_of, task_and_person
from pingan.web.site import Web, form_body

log = logging.getLogger("pingan.web")


def TOKEN():
    return Path(max_length=200)


_DUTIES: dict[int, tuple[str | None, str | None]] = {}


def watch_duties(web: Web) -> tuple[str | None, str | None]:
    """(roster duty key, daily report duty key) of this catalog, or Nones without a holiday watch;
    read once per runtime (every hand-in page asks)."""
    key = id(web.runtime)
    if key not in _DUTIES:
        try:
            rules = load_rules(web.runtime)
            _DUTIES[key] = (rules.roster.duty, rules.daily_report.duty)
        except (CatalogError, OSError):
            _DUTIES[key] = (None, None)
    return _DUTIES[key]


def _act(web: Web, work):
    ensure_catalog(web.runtime)
    with session_scope(web.engine) as session:
        return work(session, load_org(session))


def _day(task: ev.Task) -> dt.date:
    return dt.date.fromisoformat(task.period)


def carries(web: Web, task: ev.Task, person: Person) -> bool:
    """Whether the person carries the task (files the unit's report or roster); a leader reminded
    of it sees where it stands but does not vouch for the unit."""
    with Session(web.engine) as session:
        return person.id in load_org(session).assignees(task.duty.carrier, task.unit_id, task.person_id)


def page_for(web: Web, request: Request, token: str, task: ev.Task, person: Person, *, errors: list[str] | None = None,
             done: str | None = None, confirm: bool = False, values: dict | None = None, code: int = 200) -> HTMLResponse | None:
    """The watch page of a roster or daily-report task; None for any other task."""
    roster, report = watch_duties(web)
    if task.duty_key not in (roster, report) or task.duty_key is None:
        return None
    csrf = web.signer.hand_in_csrf(token)
    mine = carries(web, task, person)
    with Session(web.engine) as session:
        home = home_of(web, session, person.id)
    if task.duty_key == report:
        day = _day(task)
        with Session(web.engine) as session:
            reported = session.scalar(sa.select(WatchReport.status).where(WatchReport.unit_id == task.unit_id,
                                                                          WatchReport.day == day))
        return web.page(request, "zero.html", code, task=task, duty=task.duty, day=day, csrf=csrf, token=token,
                        errors=errors or [], done=done, confirm=confirm, reported=reported, mine=mine,
                        home=home)
    with Session(web.engine) as session:
        period = next((p for p in watch.periods(session, include_cancelled=True) if p.key == task.period), None)
    if period is None:
        return None
    return web.page(request, "roster.html", code, task=task, duty=task.duty, period=period, csrf=csrf, token=token,
                    errors=errors or [], done=done, values=values or {}, mine=mine, home=home)


def routes(web: Web) -> APIRouter:
    router = APIRouter()

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form(max_files=0, max_fields=50)
        return {k: v for k, v in form.multi_items() if isinstance(v, str)}

    def granted(token: str, duty: str | None):
        found = task_and_person(web, token)
        if found is None or duty is None or found[0].duty_key != duty or not carries(web, *found):
            return None
        return found

    @router.post("/e/{token}/zero", response_class=HTMLResponse, openapi_extra=form_body("csrf", "confirm"))
    async def zero_report(request: Request, token: str = TOKEN()):
        found = granted(token, watch_duties(web)[1])
        if found is None:
            return web.denied(request)
        task, person = found
        text = await form_of(request)
        if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
            return page_for(web, request, token, task, person, errors=[t("web.csrf")], code=403)
        if text.get("confirm") != "yes":  # the first tap asks once more
            return page_for(web, request, token, task, person, confirm=True)
        day, now = _day(task), web.clock()
        try:
            filed = _act(web, lambda session, org: watch.file_report(
                session, web.runtime, org, unit=org.units[task.unit_id].code, day=day, as_of=now,
                actor=f"person:{person.code}"))
        except (WatchError, IncidentError) as exc:
            return page_for(web, request, token, task, person, errors=[str(exc)], code=400)
        log.info("zero report of unit %s for %s filed by person %s (report #%s)", task.unit_id, day, person.id, filed.id)
        return RedirectResponse(f"/e/{token}?filed={'ok' if filed.created else 'again'}", status_code=303)

    def incident_page(request: Request, token: str, task: ev.Task, *, errors=(), values=None, code=200) -> HTMLResponse:
        rules = incident_rules.load_rules(web.runtime)
        now = local(web.clock())
        values = values or {"at": now.strftime("%Y-%m-%dT%H:%M")}
        return web.page(request, "incident_form.html", code, task=task, csrf=web.signer.hand_in_csrf(token),
                        categories=[(k, pick(v.name, v.name_en)) for k, v in rules.categories.items()],
                        severities=[(k, pick(v.name, v.name_en)) for k, v in rules.severities.items()],
                        values=values, errors=list(errors), token=token)

    @router.get("/e/{token}/incident", response_class=HTMLResponse)
    def incident_form(request: Request, token: str = TOKEN()):
        found = granted(token, watch_duties(web)[1])
        if found is None:
            return web.denied(request)
        return incident_page(request, token, found[0])

    @router.post("/e/{token}/incident", response_class=HTMLResponse,
                 openapi_extra=form_body("csrf", "at", "category", "severity", "summary"))
    async def incident_report(request: Request, token: str = TOKEN()):
        found = granted(token, watch_duties(web)[1])
        if found is None:
            return web.denied(request)
        task, person = found
        text = await form_of(request)
        values = {k: text.get(k, "") for k in ("at", "category", "severity", "summary")}
        if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
            return incident_page(request, token, task, errors=[t("web.csrf")], values=values, code=403)
        try:
            occurred = dt.datetime.fromisoformat(values["at"].strip()).replace(tzinfo=TZ)
        except ValueError:
            return incident_page(request, token, task, errors=[t("inc.form.bad_time")], values=values, code=400)
        day, now = _day(task), web.clock()

        def work(session, org):
            code = org.units[task.unit_id].code
            req = incidents.IncidentRequest(unit=code, occurred_at=occurred, category=values["category"],
                                            severity=values["severity"], summary=values["summary"] or None)
            return watch.file_report(session, web.runtime, org, unit=code, day=day, as_of=now,
                                     actor=f"person:{person.code}", note=values["summary"] or None, incident=req)
        try:
            filed = _act(web, work)
        except (WatchError, IncidentError) as exc:
            return incident_page(request, token, task, errors=[str(exc)], values=values, code=400)
        log.info("incident #%s of unit %s reported by person %s", filed.incident_id, task.unit_id, person.id)
        # as `pingan watch report` does: what is already late is escalated at once (the dispatcher's
        # sweep sends it within minutes; the incident sweep keeps the clock after that)
        CLOCK.run(web.runtime, as_of=now)
        return RedirectResponse(f"/e/{token}?filed=incident", status_code=303)

    @router.post("/e/{token}/roster", response_class=HTMLResponse,
                 openapi_extra=form_body("csrf", "leader_name", "leader_phone", "staff_name", "staff_phone",
                                         "staff2_name", "staff2_phone"))
    async def roster(request: Request, token: str = TOKEN()):
        found = granted(token, watch_duties(web)[0])
        if found is None:
            return web.denied(request)
        task, person = found
        text = await form_of(request)
        names = ("leader_name", "leader_phone", "staff_name", "staff_phone", "staff2_name", "staff2_phone")
        values = {k: text.get(k, "").strip() for k in names}
        if not web.signer.check_hand_in_csrf(token, text.get("csrf", "")):
            return page_for(web, request, token, task, person, errors=[t("web.csrf")], values=values, code=403)
        if not all(values[k] for k in names[:4]) or bool(values["staff2_name"]) != bool(values["staff2_phone"]):
            return page_for(web, request, token, task, person, errors=[t("ro.missing")], values=values, code=400)
        now = web.clock()
        try:
            entries = [parse_entry(f"{values['leader_name']}:{values['leader_phone']}", "leader", t("ro.leader"), 1),
                       parse_entry(f"{values['staff_name']}:{values['staff_phone']}", "staff", t("ro.staff"), 1)]
            if values["staff2_name"]:
                entries.append(parse_entry(f"{values['staff2_name']}:{values['staff2_phone']}", "staff", t("ro.staff"), 2))
            filed = _act(web, lambda session, org: watch.file_roster(
                session, web.runtime, org, unit=org.units[task.unit_id].code, entries=entries, as_of=now,
                actor=f"person:{person.code}", period=task.period))
        except (WatchError, IncidentError) as exc:
            return page_for(web, request, token, task, person, errors=[str(exc)], values=values, code=400)
        log.info("roster of unit %s for %s filed by person %s", task.unit_id, task.period, person.id)
        return RedirectResponse(f"/e/{token}?filed={'roster-late' if filed.late else 'roster'}", status_code=303)

    return router
