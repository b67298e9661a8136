"""Walking the schedules of the jobs over a date range, in the order production runs them.

``pingan replay`` runs every scheduled job of a range of days in time: the jobs are given with
the cron expressions of their deployments (``deployments/*.py``, Asia/Shanghai), and
:func:`replay` fires each at every instant its schedule names, earliest first — at one instant,
in the order the jobs are given — with ``as_of`` set to that instant. Cron expressions are
read with ``cronsim`` (day-of-month and day-of-week ORed, as cron and Prefect do).

Two things production does besides its schedules are replayed too:

- a job may start others at once (``then``): a flow that queued something urgent starts the
  dispatcher straight away instead of waiting for its next sweep;
- a job may run at the instant its next piece of work falls due (``follow_up``): registering
  an incident schedules a run of its clock at each deadline.

A job that knows when it next has work (``next_work``) is not run at instants before it: the
dispatcher's five-minute sweep with nothing released, the incident sweep with no deadline
passed. Such a run would change nothing, and a day has 576 of them. The answer is asked again
after any job has run, since that job may have made work (queued a notice, say).

Nothing here knows a duty, a database or Prefect: the jobs bring their work as functions.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cronsim import CronSim

from pingan.core.clock import TZ_NAME

_DIRTY = object()


@dataclass(frozen=True)
class Job:
    name: str  # what the operator knows it by: the deployment's name
    flow: str  # the flow it runs (``--flows`` chooses by it)
    crons: tuple[str, ...]  # its schedules
    run: Callable[[dt.datetime], dict]  # one run at ``as_of``: ``{step: summary}``
    timezone: str = TZ_NAME
    # When a run could next do something (at or before ``as_of``: now), None when nothing is pending.
    next_work: Callable[[dt.datetime], dt.datetime | None] | None = None
    follow_up: bool = False  # also run at ``next_work`` itself (a run scheduled at a deadline)
    then: tuple[str, ...] = ()  # names of jobs started right after each run, when they have work now


@dataclass
class Tally:
    """What the runs of one job did: runs, instants skipped with nothing to do, summed counts."""

    runs: int = 0
    skipped: int = 0
    counts: Counter = field(default_factory=Counter)  # "step.key" → sum (a list counts its items)

    def add(self, steps: dict) -> None:
        self.runs += 1
        for step, summary in steps.items():
            for key, value in (summary or {}).items():
                if isinstance(value, bool) or value is None:
                    continue
                if isinstance(value, int):
                    self.counts[f"{step}.{key}"] += value
                elif isinstance(value, (list, tuple)):
                    self.counts[f"{step}.{key}"] += len(value)

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


def bounds(start: dt.date, end: dt.date, timezone: str = TZ_NAME) -> tuple[dt.datetime, dt.datetime]:
    """From the first instant of ``start`` to the last of ``end`` (inclusive), in ``timezone``."""
    tz = ZoneInfo(timezone)
    return dt.datetime.combine(start, dt.time(0), tzinfo=tz), dt.datetime.combine(end, dt.time(23, 59, 59), tzinfo=tz)


def firings(jobs: Sequence[Job], start: dt.date, end: dt.date) -> Iterator[tuple[dt.datetime, int]]:
    """(instant, job index) of every scheduled run in [start, end], earliest first; at one instant
    in the order of ``jobs``, each job once (two schedules of a job naming the same minute are one run)."""
    heap: list[tuple[dt.datetime, int, int, Iterator[dt.datetime]]] = []  # (next, job, schedule, its times)
    for index, job in enumerate(jobs):
        first, _ = bounds(start, end, job.timezone)
        for n, cron in enumerate(job.crons):
            times = iter(CronSim(cron, first - dt.timedelta(seconds=1)))
            heapq.heappush(heap, (next(times), index, n, times))
    last: tuple[dt.datetime, int] | None = None
    while heap:
        when, index, n, times = heapq.heappop(heap)
        if when > bounds(start, end, jobs[index].timezone)[1]:
            continue
        heapq.heappush(heap, (next(times), index, n, times))
        if (when, index) != last:
            last = (when, index)
            yield when, index


def replay(
    jobs: Sequence[Job], start: dt.date, end: dt.date, *,
    on_run: Callable[[Job, dt.datetime, dict], None] | None = None,
) -> dict[str, Tally]:
    """Run ``jobs`` at every instant their schedules name in [start, end], in order; a tally per job."""
    jobs = list(jobs)
    by_name = {job.name: i for i, job in enumerate(jobs)}
    unknown = sorted({name for job in jobs for name in job.then} - set(by_name))
    if unknown:
        raise ValueError(f"jobs started by others but not given: {', '.join(unknown)}")
    tallies = {job.name: Tally() for job in jobs}
    known: list[object] = [_DIRTY] * len(jobs)  # each job's next_work while no job has run since
    last_run: list[dt.datetime | None] = [None] * len(jobs)
    _, stop = bounds(start, end)

    def next_work(i: int, as_of: dt.datetime) -> dt.datetime | None:
        if known[i] is _DIRTY:
            known[i] = jobs[i].next_work(as_of)
        return known[i]  # type: ignore[return-value]

    def has_work(i: int, as_of: dt.datetime) -> bool:
        if jobs[i].next_work is None:
            return True
        due = next_work(i, as_of)
        return due is not None and due <= as_of

    def run(i: int, as_of: dt.datetime) -> None:
        steps = jobs[i].run(as_of)
        tallies[jobs[i].name].add(steps)
        last_run[i] = as_of
        known[:] = [_DIRTY] * len(jobs)
        if on_run is not None:
            on_run(jobs[i], as_of, steps)
        for name in jobs[i].then:
            j = by_name[name]
            if has_work(j, as_of):
                run(j, as_of)

    def follow_ups(after: dt.datetime | None) -> list[tuple[dt.datetime, int]]:
        """The runs a job scheduled at its next deadline, after ``after`` and within the range."""
        out = []
        for i, job in enumerate(jobs):
            if not job.follow_up or after is None:
                continue
            due = next_work(i, after)
            if due is not None and after < due <= stop and (last_run[i] is None or due > last_run[i]):
                out.append((due, i))
        return out

    scheduled = firings(jobs, start, end)
    upcoming = next(scheduled, None)
    now: dt.datetime | None = None
    while True:
        candidates = ([upcoming] if upcoming else []) + follow_ups(now)
        if not candidates:
            break
        when, i = min(candidates)
        if upcoming is not None and (when, i) == upcoming:
            upcoming = next(scheduled, None)
        now = when
        if has_work(i, when):
            run(i, when)
        else:
            tallies[jobs[i].name].skipped += 1
    return tallies

