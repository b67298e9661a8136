"""The dispatcher in a process of its own, ended like ``kill -9`` (``os._exit``, no cleanup, no
commit) at a chosen point; tests/test_delivery.py runs it to leave the database as a crash does.

    python tests/faults.py finish 3   # exits as the 3rd call returned, before its outcome is written
    python tests/faults.py start 2    # exits just before the 2nd call's attempt row is written
"""

from __future__ import annotations

import os
import sys

from pingan.delivery import outbox


def crash_at(point: str, nth: int) -> None:
    original = getattr(outbox.Store, point)
    seen = 0

    def crashing(self, *args, **kwargs):
        nonlocal seen
        seen += 1
        if seen == nth:
            os._exit(137)
        return original(self, *args, **kwargs)

    setattr(outbox.Store, point, crashing)


if __name__ == "__main__":
    from pingan.core.clock import now
    from pingan.delivery.workflow import dispatch
    from pingan.duties.runtime import get_runtime

    crash_at(sys.argv[1], int(sys.argv[2]))
    dispatch(get_runtime(), now())
    sys.exit(0)  # the crash point was never reached
