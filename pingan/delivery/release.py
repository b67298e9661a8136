"""When a notice may be sent: one message per person per morning, at most one more in the afternoon.

People act on messages only while there are few of them. The duty runs of a morning (08:31 to
08:59, one per duty) each queue their reminders and escalations; if each run sent its own, a
principal would get seven messages before nine. So a routine notice waits for the next digest
slot and the dispatcher composes everything released for a person into one message:

- queued before the morning slot (default 09:00) of a working day: released at that slot;
- queued later that working day, for a task that falls due that very day (a daily patrol's
  reminder, say): released at the afternoon slot (default 15:00) — at most one more message;
- anything else: released at the next working day's morning slot.

Urgent notices (the incident clock, a major hazard, a holiday watch's missing report, an
operator alert) and announcements someone is waiting for (a rejected hand-in, a sensitive
period, the digests at their own hour) are released at once. With no morning slot set
(``PINGAN_DIGEST_MORNING=`` empty), everything is released at once.
"""

from __future__ import annotations

import datetime as dt

from pingan.core.calendar import WorkCalendar
from pingan.core.clock import at, local


def release_at(
    as_of: dt.datetime, *, calendar: WorkCalendar, morning: dt.time | None, afternoon: dt.time | None,
    due_at: dt.datetime | None = None, urgent: bool = False,
) -> dt.datetime:
    """The instant a notice queued at ``as_of`` may be sent (see the module's rules)."""
    as_of = local(as_of)
    if urgent or morning is None:
        return as_of
    today = as_of.date()
    if calendar.is_workday(today):
        if as_of <= at(today, morning):
            return at(today, morning)
        due_today = due_at is not None and local(due_at).date() == today
        if afternoon is not None and due_today and as_of <= at(today, afternoon):
            return at(today, afternoon)
    day = calendar.next_workday(today + dt.timedelta(days=1))
    return at(day, morning)
