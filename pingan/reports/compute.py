"""Compliance figures for the annual assessment: per unit, per responsible leader and per duty.

For a period (``2026-Q4``, ``2026-H2``, ``2026-11``, ``2026``) and an instant ``as_of``, every task
(occurrence) *due* in the period — its deadline falls on a day of the period — and created by
``as_of`` gets exactly one outcome, judged with what the database knew at ``as_of``:

``on_time``  accepted, and the accepted version was handed in by the deadline (a task closed
             without evidence rows — an incident report, a holiday-watch roster — by its ``closed_at``);
``late``     accepted, handed in after the deadline;
``waived``   not accepted, and an approved, unrevoked waiver reaches past the deadline;
``pending``  handed in, awaiting review;
``not_due``  nothing accepted yet and the deadline is still ahead;
``missing``  the deadline passed with nothing handed in, or with the evidence rejected.

So ``tasks = due + not_due`` and ``due = on_time + late + pending + missing + waived``. The
on-time rate is ``on_time / (due − waived)``. Escalations are counted per task and level
reached (an ``escalation`` row fired by ``as_of`` that fell due before the task was completed:
an on-time report recorded after it was escalated counts none); repeats of a level count as
events only.

A task belongs to its unit, to its duty and to the bureau leaders who answer for it: the 包保
leader(s) of a school, the 分管 leader(s) of a department; a bureau leader's own (personal) task
is his, and a task of the bureau itself its principal's. Every figure is a count over
``Report.tasks``, whose ids each row keeps, so it can be traced to its tasks.

Open hazards (``models.hazard``) are counted by level per unit and leader: found and not yet
closed (销号) at the end of the period (at ``as_of`` while the period runs); and those found or
closed in the period. "Past deadline" uses the hazard's current state.

Everything is read in a handful of queries whatever the number of schools; the rest is pure.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from models import Duty, Escalation, Evidence, Occurrence, Person, Role, RoleKind, Unit, UnitKind, Waiver
from pingan.core.clock import local
from pingan.duties.runtime import Runtime
from pingan.reports.rules import ReportPeriod, parse_period

O, EV, W, E = Occurrence.__table__, Evidence.__table__, Waiver.__table__, Escalation.__table__
U, P, R, D = Unit.__table__, Person.__table__, Role.__table__, Duty.__table__

OUTCOMES = ("on_time", "late", "pending", "missing", "waived", "not_due")
RELATIONS = ("patron", "in_charge", "own", "principal")  # 包保, 分管, 本人, 主要负责人
NO_LEADER = ""  # the key of the row gathering tasks nobody answers for (an organisation gap)





# =========================================================================== facts

@dataclass(frozen=True)
class Leader:
    id: int
    code: str
    name: str
    relation: str  # one of RELATIONS


@dataclass(frozen=True)
class Waived:
    granted_by: str
    until: dt.datetime
    reason: str


@dataclass(frozen=True)
class TaskFact:
    """One task with its outcome at ``as_of``: one row of the workbook's task sheet."""

    id: int
    duty_key: str
    duty: str
    duty_en: str | None
    clause: str
    document: str
    unit_id: int
    unit_code: str
    unit: str
    unit_kind: str
    person_id: int | None
    person: str | None
    period_key: str
    due_at: dt.datetime
    outcome: str
    review: str  # as of ``as_of``: none | submitted | accepted | rejected
    completed_at: dt.datetime | None  # when the accepted version was handed in
    version: int | None  # the accepted (or latest) evidence version
    waiver: Waived | None
    levels: tuple[int, ...]  # escalation levels reached
    events: int  # escalation events, repeats included
    leaders: tuple[Leader, ...]

    @property
    def level(self) -> int:
        return max(self.levels, default=0)

    def as_dict(self) -> dict:
        return {
            "task": self.id, "duty": self.duty_key, "unit": self.unit_code, "person": self.person,
            "period": self.period_key, "due": self.due_at.isoformat(), "outcome": self.outcome, "review": self.review,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None, "version": self.version,
            "waiver_until": self.waiver.until.isoformat() if self.waiver else None, "levels": list(self.levels),
            "escalation_events": self.events, "leaders": [f"{x.code}:{x.relation}" for x in self.leaders],
        }


@dataclass(frozen=True)
class Version:
    version: int
    submitted_at: dt.datetime
    status: str
    reviewed_at: dt.datetime | None


def judge(
    due_at: dt.datetime, review: str, closed_at: dt.datetime | None, versions: list[Version],
    waiver: Waived | None, as_of: dt.datetime,
) -> tuple[str, str, dt.datetime | None, int | None]:
    """(outcome, review as of ``as_of``, completed at, version): the one place an outcome is decided."""
    seen = sorted((v for v in versions if v.submitted_at <= as_of), key=lambda v: v.version)
    decided = [v for v in seen if v.reviewed_at is not None and v.reviewed_at <= as_of]
    accepted = [v for v in decided if v.status == "accepted"]
    completed, version, state = None, None, "none"
    if accepted:
        completed, version, state = accepted[-1].submitted_at, accepted[-1].version, "accepted"
    elif not versions and review == "accepted" and (closed_at is None or closed_at <= as_of):
        # Closed by its own flow (incident clock, holiday watch): no evidence rows, closed_at says when.
        completed, state = closed_at or due_at, "accepted"
    if completed is not None:
        return ("on_time" if completed <= due_at else "late"), state, completed, version
    if seen:
        latest = seen[-1]
        version = latest.version
        reviewed = latest.reviewed_at is not None and latest.reviewed_at <= as_of
        state = latest.status if reviewed else "submitted"
    elif not versions and review == "submitted":
        state = "submitted"
    if waiver is not None:
        return "waived", state, None, version
    if state == "submitted":
        return "pending", state, None, version
    if due_at > as_of:
        return "not_due", state, None, version
    return "missing", state, None, version


def warranted(
    events: Iterable[tuple[int, dt.datetime]], completed: dt.datetime | None,
) -> list[tuple[int, dt.datetime]]:
    """The escalation events (level, when due) a task earned: those that fell due before it was
    completed. A report registered after the fact — the school phoned on time, the operator typed
    it in later — may have been escalated before its time of arrival was known; those events do
    not count against the unit."""
    return [e for e in events if completed is None or e[1] < completed]


def leaders_of(
    unit_id: int, unit_kind: str, person: Leader | None, holders: Mapping[tuple[int, str], list[Leader]],
) -> tuple[Leader, ...]:
    """Who answers for a task: 包保 of a school, 分管 of a department; in the bureau, the leader
    whose own duty it is, else the bureau's principal."""
    if unit_kind == UnitKind.department.value:
        return tuple(holders.get((unit_id, RoleKind.in_charge.value), ()))
    if unit_kind == UnitKind.bureau.value:
        if person is not None:
            return (person,)
        return tuple(holders.get((unit_id, RoleKind.principal.value), ()))
    return tuple(holders.get((unit_id, RoleKind.patron.value), ()))


# =========================================================================== figures

@dataclass
class Figures:
    """Counts over a set of tasks, keeping their ids."""

    tasks: list[int] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    levels: Counter = field(default_factory=Counter)  # level → tasks that reached it
    escalated: int = 0
    events: int = 0

    def add(self, fact: TaskFact) -> None:
        self.tasks.append(fact.id)
        self.outcomes[fact.outcome] += 1
        self.levels.update(set(fact.levels))
        self.escalated += bool(fact.levels)
        self.events += fact.events

    @classmethod
    def of(cls, facts: Iterable[TaskFact]) -> Figures:
        out = cls()
        for fact in facts:
            out.add(fact)
        return out

    def __getitem__(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def due(self) -> int:
        return self.total - self["not_due"]

    @property
    def rate(self) -> float | None:
        """On-time rate: on time / (due − waived); None when nothing was due."""
        base = self.due - self["waived"]
        return self["on_time"] / base if base > 0 else None

    def as_dict(self, levels: Iterable[int]) -> dict:
        return {
            "tasks": self.total, "due": self.due, **{o: self[o] for o in OUTCOMES},
            "on_time_rate": None if self.rate is None else round(self.rate, 4),
            "escalated": self.escalated, **{f"level_{n}": self.levels.get(n, 0) for n in levels},
            "escalation_events": self.events, "task_ids": sorted(self.tasks),
        }


@dataclass(frozen=True)
class HazardFact:
    id: int
    unit_id: int
    unit_code: str
    unit: str
    level: str  # general | major
    state: str
    place: str
    found_at: dt.datetime
    deadline: dt.datetime
    closed_at: dt.datetime | None
    open: bool  # not closed at as_of
    overdue: bool  # open, waiting for rectification, past its deadline
    found_in_period: bool
    closed_in_period: bool


@dataclass
class HazardFigures:
    general: int = 0
    major: int = 0
    overdue: int = 0
    found: int = 0  # in the period
    closed: int = 0  # in the period
    open_ids: list[int] = field(default_factory=list)

    def add(self, h: HazardFact) -> None:
        if h.open:
            self.open_ids.append(h.id)
            self.general += h.level != "major"
            self.major += h.level == "major"
            self.overdue += h.overdue
        self.found += h.found_in_period
        self.closed += h.closed_in_period

    @property
    def open(self) -> int:
        return self.general + self.major

    def as_dict(self) -> dict:
        return {"open_general": self.general, "open_major": self.major, "open_overdue": self.overdue,
                "found_in_period": self.found, "closed_in_period": self.closed, "open_hazard_ids": sorted(self.open_ids)}


@dataclass
class Row:
    """One line of a view: a unit, a leader or a duty, with the figures of its tasks."""

    key: str
    label: str
    info: dict[str, str]
    figures: Figures = field(default_factory=Figures)
    hazards: HazardFigures | None = None
    # For a leader: relation (patron, in_charge, own, principal) → the units concerned.
    relations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self, levels: Iterable[int]) -> dict:
        out = {"key": self.key, "label": self.label, **self.info, **self.figures.as_dict(levels)}
        if self.relations:
            out["relations"] = {k: list(v) for k, v in self.relations.items()}
        if self.hazards is not None:
            out.update(self.hazards.as_dict())
        return out


@dataclass
class Report:
    period: ReportPeriod
    as_of: dt.datetime
    levels: tuple[int, ...]
    tasks: list[TaskFact]
    by_unit: list[Row]
    by_leader: list[Row]
    by_duty: list[Row]
    totals: Figures
    matrix: dict[tuple[str, str], Figures]  # (unit code, duty key) → figures
    hazards: list[HazardFact] | None  # None: no hazard table in this database
    hazard_totals: HazardFigures | None
    documents: dict[str, str] = field(default_factory=dict)  # file → title

    def as_dict(self) -> dict:
        return {
            "period": self.period.key, "start": self.period.start.isoformat(), "end": self.period.end.isoformat(),
            "as_of": self.as_of.isoformat(), "levels": list(self.levels),
            "totals": {**self.totals.as_dict(self.levels),
                       **(self.hazard_totals.as_dict() if self.hazard_totals else {})},
            "by_unit": [r.as_dict(self.levels) for r in self.by_unit],
            "by_leader": [r.as_dict(self.levels) for r in self.by_leader],
            "by_duty": [r.as_dict(self.levels) for r in self.by_duty],
            "tasks": [t.as_dict() for t in self.tasks],
            "hazards": None if self.hazards is None else [
                {"hazard": h.id, "unit": h.unit_code, "level": h.level, "state": h.state, "open": h.open,
                 "overdue": h.overdue, "found_at": h.found_at.isoformat(), "deadline": h.deadline.isoformat()}
                for h in self.hazards],
        }


# =========================================================================== reading

def _in_period(period: ReportPeriod):
    return sa.and_(O.c.due_at >= period.starts_at, O.c.due_at < period.ends_at)


def _holders(session: Session) -> dict[tuple[int, str], list[Leader]]:
    """(unit, role) → active persons holding it, for the roles that answer for a unit."""
    wanted = (RoleKind.patron.value, RoleKind.in_charge.value, RoleKind.principal.value)
    relation = {RoleKind.patron.value: "patron", RoleKind.in_charge.value: "in_charge",
                RoleKind.principal.value: "principal"}
    out: dict[tuple[int, str], list[Leader]] = defaultdict(list)
    query = (sa.select(R.c.unit_id, R.c.role, P.c.id, P.c.code, P.c.name).join(P, P.c.id == R.c.person_id)
             .where(R.c.role.in_(wanted), P.c.active.is_(True)).order_by(R.c.unit_id, R.c.role, P.c.id))
    for r in session.execute(query):
        out[(r.unit_id, r.role)].append(Leader(r.id, r.code, r.name, relation[r.role]))
    return dict(out)


def levels_of(rt: Runtime) -> tuple[int, ...]:
    """The escalation levels the catalog's policies use (1, 2, 3 with the shipped ones)."""
    return tuple(sorted({lvl.level for policy in rt.catalog.policies.values() for lvl in policy.levels})) or (1,)


def task_facts(
    session: Session, period: ReportPeriod, as_of: dt.datetime,
    holders: Mapping[tuple[int, str], list[Leader]] | None = None,
) -> list[TaskFact]:
    """Every task due in ``period`` that existed at ``as_of``, judged then: five queries whatever
    their number. (A task created later — when ``as_of`` is in the past, a replay's run, say — was
    not known yet.)"""
    as_of = local(as_of)
    known = sa.and_(_in_period(period), O.c.created_at <= as_of)
    ids = sa.select(O.c.id).where(known).scalar_subquery()
    versions: dict[int, list[Version]] = defaultdict(list)
    for r in session.execute(sa.select(EV.c.occurrence_id, EV.c.version, EV.c.submitted_at, EV.c.status,
                                       EV.c.reviewed_at).where(EV.c.occurrence_id.in_(ids))):
        versions[r.occurrence_id].append(Version(r.version, r.submitted_at, r.status, r.reviewed_at))
    waivers: dict[int, Waived] = {}
    for r in session.execute(
        sa.select(W.c.occurrence_id, W.c.granted_by, W.c.until, W.c.reason)
        .where(W.c.occurrence_id.in_(ids), W.c.created_at <= as_of,
               sa.or_(W.c.revoked_at.is_(None), W.c.revoked_at > as_of)).order_by(W.c.until)
    ):
        waivers[r.occurrence_id] = Waived(r.granted_by, r.until, r.reason)  # the latest-reaching wins
    fired: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)  # task → (level, when it fell due)
    for r in session.execute(
        sa.select(E.c.occurrence_id, E.c.level, E.c.due_at).where(E.c.occurrence_id.in_(ids), E.c.fired_at <= as_of)
    ):
        fired[r.occurrence_id].append((r.level, local(r.due_at)))
    holders = _holders(session) if holders is None else holders
    query = (
        sa.select(O.c.id, O.c.duty_key, O.c.unit_id, O.c.person_id, O.c.period_key, O.c.due_at, O.c.review,
                  O.c.closed_at, U.c.code.label("unit_code"), U.c.name.label("unit"), U.c.kind.label("unit_kind"),
                  P.c.code.label("person_code"), P.c.name.label("person"), D.c.name.label("duty"),
                  D.c.name_en.label("duty_en"), D.c.clause, D.c.document)
        .join(U, U.c.id == O.c.unit_id).outerjoin(P, P.c.id == O.c.person_id).join(D, D.c.key == O.c.duty_key)
        .where(known).order_by(O.c.due_at, O.c.duty_key, U.c.code, O.c.person_key)
    )
    out = []
    for r in session.execute(query):
        waiver = waivers.get(r.id)
        if waiver is not None and waiver.until <= r.due_at:
            waiver = None  # it ended before the deadline: the deadline stood
        outcome, review, completed, version = judge(r.due_at, r.review, r.closed_at, versions.get(r.id, []),
                                                    waiver, as_of)
        own = Leader(r.person_id, r.person_code, r.person, "own") if r.person_id is not None else None
        events = warranted(fired.get(r.id, ()), completed)
        out.append(TaskFact(
            id=r.id, duty_key=r.duty_key, duty=r.duty, duty_en=r.duty_en, clause=r.clause, document=r.document,
            unit_id=r.unit_id, unit_code=r.unit_code, unit=r.unit, unit_kind=r.unit_kind, person_id=r.person_id,
            person=r.person, period_key=r.period_key, due_at=r.due_at, outcome=outcome, review=review,
            completed_at=completed, version=version, waiver=waiver,
            levels=tuple(sorted({level for level, _ in events})), events=len(events),
            leaders=leaders_of(r.unit_id, r.unit_kind, own, holders),
        ))
    return out


def hazard_facts(session: Session, period: ReportPeriod, as_of: dt.datetime) -> list[HazardFact] | None:
    """Hazards open at the end of the period (at ``as_of`` while it runs), or found or closed in it;
    None when the database has no hazard table."""
    if not sa.inspect(session.connection()).has_table("hazard"):
        return None
    from models.hazard import Hazard, HazardState

    H = Hazard.__table__
    as_of = local(as_of)
    moment = min(as_of, period.ends_at)
    waiting = (HazardState.reported.value, HazardState.rectifying.value)
    query = (
        sa.select(H.c.id, H.c.unit_id, H.c.level, H.c.state, H.c.place, H.c.found_at, H.c.deadline, H.c.closed_at,
                  U.c.code, U.c.name)
        .join(U, U.c.id == H.c.unit_id)
        .where(H.c.found_at <= as_of, sa.or_(H.c.closed_at.is_(None), H.c.closed_at >= period.starts_at))
        .order_by(U.c.code, H.c.id)
    )
    out = []
    for r in session.execute(query):
        is_open = r.found_at <= moment and (r.closed_at is None or r.closed_at > moment)
        found = r.found_at in period
        closed = r.closed_at is not None and r.closed_at <= as_of and r.closed_at in period
        if not (is_open or found or closed):
            continue
        out.append(HazardFact(
            id=r.id, unit_id=r.unit_id, unit_code=r.code, unit=r.name, level=r.level, state=r.state, place=r.place,
            found_at=r.found_at, deadline=r.deadline, closed_at=r.closed_at, open=is_open,
            overdue=is_open and r.state in waiting and r.deadline < moment, found_in_period=found,
            closed_in_period=closed,
        ))
    return out


# =========================================================================== views

_KIND_RANK = {UnitKind.bureau.value: 0, UnitKind.department.value: 1}


def build(
    period: ReportPeriod, as_of: dt.datetime, facts: list[TaskFact], hazards: list[HazardFact] | None,
    *, levels: tuple[int, ...], holders: Mapping[tuple[int, str], list[Leader]] | None = None,
    units: Mapping[int, tuple[str, str, str]] | None = None, documents: Mapping[str, str] | None = None,
) -> Report:
    """The views over the facts (pure). ``units`` (id → code, name, kind) and ``holders`` place
    hazards of units that have no task in the period."""
    holders = holders or {}
    units = dict(units or {})
    for f in facts:
        units.setdefault(f.unit_id, (f.unit_code, f.unit, f.unit_kind))
    for h in hazards or ():
        units.setdefault(h.unit_id, (h.unit_code, h.unit, ""))

    by_unit: dict[int, Row] = {}
    by_leader: dict[str, Row] = {}
    by_duty: dict[str, Row] = {}
    matrix: dict[tuple[str, str], Figures] = defaultdict(Figures)
    relations: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    def answering(unit_id: int) -> tuple[Leader, ...]:
        kind = units[unit_id][2]
        return leaders_of(unit_id, kind, None, holders) if kind else ()

    def unit_row(unit_id: int) -> Row:
        if unit_id not in by_unit:
            code, name, kind = units[unit_id]
            by_unit[unit_id] = Row(code, name, {"kind": kind, "leaders": "、".join(x.name for x in answering(unit_id))},
                                   hazards=HazardFigures() if hazards is not None else None)
        return by_unit[unit_id]

    def leader_row(leader: Leader | None, unit: str) -> Row:
        key = leader.code if leader else NO_LEADER
        if key not in by_leader:
            by_leader[key] = Row(key, leader.name if leader else "", {},
                                 hazards=HazardFigures() if hazards is not None else None)
        if leader is not None:
            relations[key][leader.relation].add("" if leader.relation == "own" else unit)
        return by_leader[key]

    for f in facts:
        unit_row(f.unit_id).figures.add(f)
        matrix[(f.unit_code, f.duty_key)].add(f)
        duty = by_duty.setdefault(f.duty_key, Row(f.duty_key, f.duty, {
            "name_en": f.duty_en or "", "clause": f.clause, "document": f.document}))
        duty.figures.add(f)
        for leader in f.leaders or (None,):
            leader_row(leader, f.unit).figures.add(f)
    for h in hazards or ():
        unit_row(h.unit_id).hazards.add(h)
        for leader in answering(h.unit_id) or (None,):
            leader_row(leader, h.unit).hazards.add(h)
    for key, row in by_leader.items():
        row.relations = {rel: tuple(sorted(u for u in relations[key][rel] if u))
                         for rel in RELATIONS if rel in relations.get(key, {})}

    unit_rows = sorted(by_unit.values(), key=lambda r: (_KIND_RANK.get(r.info["kind"], 2), r.key))
    leader_rows = sorted(by_leader.values(), key=lambda r: (r.key == NO_LEADER, r.key))
    duty_rows = sorted(by_duty.values(), key=lambda r: (r.info["document"], r.key))
    hazard_totals = None
    if hazards is not None:
        hazard_totals = HazardFigures()
        for h in hazards:
            hazard_totals.add(h)
    return Report(
        period=period, as_of=as_of, levels=levels, tasks=facts, by_unit=unit_rows, by_leader=leader_rows,
        by_duty=duty_rows, totals=Figures.of(facts), matrix=dict(matrix), hazards=hazards,
        hazard_totals=hazard_totals, documents=dict(documents or {}),
    )


def compute(session: Session, rt: Runtime, period: ReportPeriod, as_of: dt.datetime) -> Report:
    """The report of ``period`` as the database stands at ``as_of``."""
    as_of = local(as_of)
    holders = _holders(session)
    facts = task_facts(session, period, as_of, holders)
    hazards = hazard_facts(session, period, as_of)
    units = {r.id: (r.code, r.name, r.kind) for r in session.execute(sa.select(U.c.id, U.c.code, U.c.name, U.c.kind))}
    levels = tuple(sorted(set(levels_of(rt)) | {n for f in facts for n in f.levels}))
    return build(period, as_of, facts, hazards, levels=levels, holders=holders, units=units,
                 documents=dict(rt.catalog.documents))


def report_for(rt: Runtime, period: str | None, as_of: dt.datetime) -> Report:
    """Parse ``period`` (default: the quarter just ended) and compute its report in one read transaction."""
    from pingan.core.db import get_engine, session_scope

    as_of = local(as_of)
    parsed = parse_period(period, as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        return compute(session, rt, parsed, as_of)


def report_dir(rt: Runtime, period: ReportPeriod) -> Path:
    """Where a period's files go by default: ``<home>/reports/<period>/``."""
    return Path(rt.settings.home) / "reports" / period.key
