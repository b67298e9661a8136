"""Pure decisions about reviewers' accounts: what a password must be, how failed sign-ins are
throttled, when a session ends, and which units a person may review. No database here.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from models import RoleKind, UnitKind
from pingan.core.i18n import register, t
from pingan.org.snapshot import Org

register({
    "acc.pw.short": {"zh-CN": "密码太短：至少 {n} 个字符", "en": "the password is too short: at least {n} characters"},
    "acc.pw.long": {"zh-CN": "密码太长：最多 {n} 个字符", "en": "the password is too long: at most {n} characters"},
    "acc.pw.common": {"zh-CN": "密码是常见密码，容易被猜中：请另选一个", "en": "the password is a common one, easily guessed: choose another"},
    "acc.pw.simple": {"zh-CN": "密码过于简单（不同字符太少）", "en": "the password is too simple (too few different characters)"},
    "acc.pw.name": {"zh-CN": "密码不能包含登录名", "en": "the password must not contain the login name"},
    "acc.pw.control": {"zh-CN": "密码不能包含控制字符", "en": "the password must not contain control characters"},
})

MIN_PASSWORD = 12
MAX_PASSWORD = 256  # argon2 takes any length; a cap keeps a megabyte "password" from costing anything
MAX_LOGIN = 64
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")


# --------------------------------------------------------------------------- names and passwords

def normal_login(text: str | None) -> str:
    """A login name as stored and compared: NFKC, stripped, lower case."""
    return unicodedata.normalize("NFKC", text or "").strip().lower()


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def password_problem(password: str, *, login: str = "") -> str | None:
    """Why ``password`` may not be a reviewer's (one line, in the reader's language), or None."""
    if len(password) < MIN_PASSWORD:
        return t("acc.pw.short", n=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        return t("acc.pw.long", n=MAX_PASSWORD)
    if any(unicodedata.category(c) == "Cc" for c in password):
        return t("acc.pw.control")
    if password.lower().strip() in common_passwords():
        return t("acc.pw.common")
    if len(set(password.lower())) < 5:
        return t("acc.pw.simple")
    login = normal_login(login)
    if len(login) >= 3 and login in password.lower():
        return t("acc.pw.name")
    return None


# --------------------------------------------------------------------------- throttling

@dataclass(frozen=True)
class ThrottlePolicy:
    """``free`` failures in a row are answered at once; each failure from the ``free``-th on
    locks the key for ``delay`` seconds, doubled with each further failure up to ``max_delay``;
    ``forget`` seconds without a failure start the count again. A success clears it."""

    free: int
    delay: float
    max_delay: float
    forget: float

    def lock_for(self, failures: int) -> float:
        """Seconds of lock after the ``failures``-th failure in a row (0: none)."""
        if failures < self.free:
            return 0.0
        return min(self.delay * 2 ** min(failures - self.free, 32), self.max_delay)


# Per account name: five failures, then 1, 2, 4, 8 minutes, then 15 minutes per failure.
ACCOUNT = ThrottlePolicy(free=5, delay=60, max_delay=900, forget=24 * 3600)
# Per client address (a school's or the bureau's NAT carries many people): twenty failures
# across any names, then the same delays; an attacker spraying names is held here.
ADDRESS = ThrottlePolicy(free=20, delay=60, max_delay=900, forget=3600)
POLICIES = {"account": ACCOUNT, "address": ADDRESS}


@dataclass(frozen=True)
class Throttle:
    failures: int = 0
    last_failure_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None

    def wait(self, now: dt.datetime) -> float:
        """Seconds before another attempt is heard (0: now)."""
        if self.locked_until is None or self.locked_until <= now:
            return 0.0
        return (self.locked_until - now).total_seconds()

    def after_failure(self, policy: ThrottlePolicy, now: dt.datetime) -> Throttle:
        fresh = self.last_failure_at is None or (now - self.last_failure_at).total_seconds() >= policy.forget
        failures = 1 if fresh else self.failures + 1
        lock = policy.lock_for(failures)
        return Throttle(failures, now, now + dt.timedelta(seconds=lock) if lock else None)


# --------------------------------------------------------------------------- sessions

def session_ends(*, created_at: dt.datetime, last_seen_at: dt.datetime, max_hours: float,
                 idle_minutes: float) -> dt.datetime:
    """When a session stops being accepted: after ``idle_minutes`` without a request, and
    ``max_hours`` after it began, whichever comes first."""
    return min(last_seen_at + dt.timedelta(minutes=idle_minutes), created_at + dt.timedelta(hours=max_hours))


# --------------------------------------------------------------------------- what a reviewer reviews

@dataclass(frozen=True)
class Scope:
    """The units a reviewer may see and review: every unit (``everything``) or ``units``."""

    everything: bool
    units: frozenset[int] = frozenset()

    def covers(self, unit_id: int) -> bool:
        return self.everything or unit_id in self.units

    @property
    def empty(self) -> bool:
        return not self.everything and not self.units

    @property
    def only(self) -> frozenset[int] | None:
        """The unit ids to filter by, or None for every unit."""
        return None if self.everything else self.units


def review_scope(org: Org, person_id: int) -> Scope:
    """What a person reviews, from their roles in the organisation:

    - the safety section (学校安全科: any role at a department whose function is ``safety``) and
      the bureau's leader in charge of safety work (分管安全, ``safety_lead`` at a bureau): every unit;
    - a 包保 leader (``patron``): the schools they answer for; a 分管 leader (``in_charge``): the
      departments they are in charge of;
    - anyone else: nothing (they hand in evidence; they do not review it).
    """
    if person_id not in org.persons:
        return Scope(False)
    units: set[int] = set()
    for pid, unit_id, role in org.roles:
        if pid != person_id or unit_id not in org.units:
            continue
        unit = org.units[unit_id]
        role = RoleKind(role)
        if unit.kind == UnitKind.department and unit.function == "safety":
            return Scope(True)
        if unit.kind == UnitKind.bureau and role == RoleKind.safety_lead:
            return Scope(True)
        if role in (RoleKind.patron, RoleKind.in_charge):
            units.add(unit_id)
    return Scope(False, frozenset(units))
