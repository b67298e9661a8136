"""A semester of history written straight into the database, to price what history costs a morning.

``fill(engine, rt, first, last)`` writes what pingan's own runs would have left behind from
``first`` up to ``last`` for every planned duty and every subject of the organisation — the daily
patrol included — as if every task had been handed in on time and accepted:

- the tasks (``occurrence``) of every period whose escalation began before ``last`` (so none is
  still open: the morning after history plans, reminds and escalates exactly what it does on a
  fresh database, and the difference in cost is the history alone);
- the evidence of each (accepted), its two audit rows (submitted, accepted);
- the "opens" reminder of each task to each of its assignees, composed into one message per
  person and day as the digest does, each message sent (one ``delivery`` row, one audit row);
- for ``late`` of the tasks (default 5%), a level-1 escalation fired the day after the grace
  ended, its notice to the principal and its audit row, before the late hand-in.

Rows are computed with the same pure planning functions the flows use
(``pingan.core.periods.periods_between`` / ``timing``, ``Org.subjects`` / ``assignees``) and
written with plain Core ``executemany`` in chunks: replaying months through every flow at
2,000 schools would take hours, and it is the *tables' size* the morning must not feel.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from models import Audit, Delivery, Escalation, Evidence, Message, Notice, Occurrence
from pingan.core.clock import TZ
from pingan.core.periods import periods_between, timing
from pingan.duties.runtime import Runtime
from pingan.org.snapshot import Org

O, EV, N, M, D, E, A = (t.__table__ for t in (Occurrence, Evidence, Notice, Message, Delivery, Escalation, Audit))
CHUNK = 5_000
BODY = "平安校园安全工作提醒：" + "今日到期任务、办理链接与依据条款。" * 20  # about the size of a routine day's message


def _chunks(rows: list[dict], n: int = CHUNK) -> Iterator[list[dict]]:
    for i in range(0, len(rows), n):
        yield rows[i:i + n]


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict], returning: bool = False) -> list[int]:
    ids: list[int] = []
    for chunk in _chunks(rows):
        if returning:
            ids += [r.id for r in conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), chunk)]
        else:
            conn.execute(table.insert(), chunk)
    return ids


def fill(engine: sa.Engine, rt: Runtime, org: Org, first: dt.date, last: dt.datetime, *, late: float = 0.05,
         seed: int = 1, log: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Write the history of [first, last); return the rows written per table."""
    rng = random.Random(seed)
    ctx, counts = rt.ctx, defaultdict(int)
    tasks: list[dict] = []
    for duty in rt.catalog.planned:
        subjects = org.subjects(duty.carrier)
        for period in periods_between(duty.cadence, first, last.date(), ctx.terms, ctx.key_dates, ctx.calendar):
            t = timing(period, duty.window, ctx.calendar)
            escalate_at = t.due_at + duty.escalation.grace
            if t.opens_at.date() < first or escalate_at >= last:
                continue
            for unit_id, person_id in subjects:
                tasks.append({
                    "duty_key": duty.key, "unit_id": unit_id, "person_id": person_id, "person_key": person_id or 0,
                    "period_key": period.key, "period_start": period.start, "period_end": period.end,
                    "opens_at": t.opens_at, "due_at": t.due_at, "escalate_at": escalate_at,
                    "review": "accepted", "created_at": t.opens_at,
                    # handed in before the deadline, or (late) after the first escalation
                    "closed_at": escalate_at + dt.timedelta(days=1, hours=2) if rng.random() < late else t.due_at - dt.timedelta(hours=6),
                })
    log(f"  history: {len(tasks):,} tasks from {first} to {last:%Y-%m-%d}")
    with engine.begin() as conn:
        ids = _insert(conn, O, tasks, returning=True)
        counts["occurrence"] = len(ids)
        evidence, audits, notices, escalations = [], [], [], []
        for task_id, task in zip(ids, tasks):
            submitted = task["closed_at"] - dt.timedelta(hours=1)
            duty = rt.catalog.duties[task["duty_key"]]
            evidence.append({"occurrence_id": task_id, "person_id": task["person_id"], "version": 1,
                             "kind": duty.evidence[0] if duty.evidence else "record", "fields": {}, "note": None,
                             "submitted_at": submitted, "status": "accepted", "reviewed_by": "安全科",
                             "reviewed_at": task["closed_at"]})
            for action, at in (("evidence.submitted", submitted), ("evidence.accepted", task["closed_at"])):
                audits.append({"at": at, "actor": "system", "action": action, "object_type": "occurrence",
                               "object_id": str(task_id), "detail": {}})
            opened = max(task["opens_at"], dt.datetime.combine(task["opens_at"].date(), dt.time(9), tzinfo=TZ))
            payload = {"duty": task["duty_key"], "unit": str(task["unit_id"]), "period": task["period_key"],
                       "due": task["due_at"].isoformat(), "step": "open"}
            for pid in org.assignees(duty.carrier, task["unit_id"], task["person_id"]):
                notices.append({"person_id": pid, "dedupe_key": f"r:{task_id}:open", "kind": "reminder",
                                "occurrence_id": task_id, "duty_key": task["duty_key"], "step": "open", "level": None,
                                "urgent": False, "payload": payload, "created_at": opened, "release_at": opened})
            if task["closed_at"] > task["escalate_at"]:
                fired = task["escalate_at"] + dt.timedelta(hours=1)
                principals = [p for p in org.escalation_targets(duty.escalation.levels[0].to, task["unit_id"])]
                escalations.append({"occurrence_id": task_id, "level": 1, "seq": 0, "reason": "missing",
                                    "recipients": principals, "due_at": task["escalate_at"], "fired_at": fired})
                audits.append({"at": fired, "actor": "system", "action": "escalation.fired", "object_type": "occurrence",
                               "object_id": str(task_id), "detail": {"duty": task["duty_key"], "level": 1}})
                notices += [{"person_id": pid, "dedupe_key": f"e:{task_id}:1:0", "kind": "escalation",
                             "occurrence_id": task_id, "duty_key": task["duty_key"], "step": "L1", "level": 1,
                             "urgent": False, "payload": payload, "created_at": fired, "release_at": fired}
                            for pid in principals]
        counts["evidence"] = len(_insert(conn, EV, evidence, returning=True))
        counts["escalation"] = len(_insert(conn, E, escalations, returning=True))
        # one message per person and day, as the morning digest composes them
        groups: dict[tuple[int, dt.date], list[int]] = defaultdict(list)
        for i, notice in enumerate(notices):
            groups[(notice["person_id"], notice["release_at"].date())].append(i)
        messages = [{"person_id": pid, "title": "平安校园安全工作：待办提醒", "body": BODY, "summary": None,
                     "status": "sent", "urgent": False, "attempts": 1,
                     "created_at": dt.datetime.combine(day, dt.time(9), tzinfo=TZ),
                     "sent_at": dt.datetime.combine(day, dt.time(9, 1), tzinfo=TZ), "possible_repeat": False}
                    for pid, day in groups]
        message_ids = _insert(conn, M, messages, returning=True)
        for message_id, members in zip(message_ids, groups.values()):
            for i in members:
                notices[i]["message_id"] = message_id
                notices[i]["batch"] = None
        counts["notice"] = len(_insert(conn, N, notices, returning=True))
        counts["message"] = len(message_ids)
        deliveries = [{"message_id": mid, "channel_id": None, "part": None, "destination": None, "claim_token": None,
                       "at": m["sent_at"], "finished_at": m["sent_at"], "ok": True, "permanent": False,
                       "interrupted": False, "possible_repeat": False, "error": None}
                      for mid, m in zip(message_ids, messages)]
        counts["delivery"] = len(_insert(conn, D, deliveries, returning=True))
        audits += [{"at": m["sent_at"], "actor": "system", "action": "message.sent", "object_type": "message",
                    "object_id": str(mid), "detail": {}} for mid, m in zip(message_ids, messages)]
        counts["audit"] = len(_insert(conn, A, audits, returning=True))
    return dict(counts)
