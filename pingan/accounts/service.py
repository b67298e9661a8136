"""Reviewers' accounts: adding them, their passwords, signing in (throttled) and their sessions.

Data functions taking a session; they never commit (the caller's ``session_scope`` does). The
web page (``pingan.web.sessions``) and ``pingan account …`` call the same functions.

Signing in counts an attempt *before* the password is checked: the throttle rows of the account
name and of the client address move by a conditional update (compare and set), so attempts made
at the same instant each count, and a key that is locked is answered 429 without looking at the
password. A success clears both counts. Passwords are argon2id hashes (argon2-cffi); a name that
has no account is checked against a dummy hash, so the answer takes as long either way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from models import Account, Audit, LoginThrottle, Person, Unit, WebSession
from pingan.accounts.rules import (
    MAX_LOGIN, MAX_PASSWORD, POLICIES, Scope, Throttle, normal_login, password_problem, review_scope, session_ends,
)
from pingan.core.db import insert_ignore
from pingan.core.i18n import register, t
from pingan.core.settings import Settings
from pingan.org.snapshot import load_org

register({
    "acc.err.person": {"zh-CN": "没有编码为「{code}」的人员", "en": "no person with code “{code}”"},
    "acc.err.inactive": {"zh-CN": "人员「{code}」已停用", "en": "person “{code}” is inactive"},
    "acc.err.scope": {"zh-CN": "{name}（{code}）不在安全科，也不包保或分管任何单位：不能审核材料",
                      "en": "{name} ({code}) is not in the safety section and answers for no unit (包保/分管): cannot review"},
    "acc.err.has": {"zh-CN": "{name}（{code}）已有账号「{login}」：改密码用 pingan account passwd",
                    "en": "{name} ({code}) already has the account “{login}”: use pingan account passwd"},
    "acc.err.login": {"zh-CN": "登录名「{login}」不可用：1 至 {n} 个字母、数字或 . _ @ -",
                      "en": "login name “{login}” cannot be used: 1 to {n} letters, digits or . _ @ -"},
    "acc.err.taken": {"zh-CN": "登录名「{login}」已被使用", "en": "login name “{login}” is taken"},
    "acc.err.no_account": {"zh-CN": "没有登录名为「{login}」的账号", "en": "no account “{login}”"},
    "acc.err.password": {"zh-CN": "密码不可用：{problem}", "en": "password refused: {problem}"},
})


class AccountError(ValueError):
    """A request about accounts that cannot be done: one line for the user; nothing was written."""


# argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes).
HASHER = PasswordHasher()
DEMO_PASSWORD = "pingan-demo"  # the demo accounts' published password: valid only in demo mode
_DUMMY: list[str] = []
TOUCH_EVERY = dt.timedelta(seconds=60)  # a session's last_seen is written at most this often
A, S, TH = Account.__table__, WebSession.__table__, LoginThrottle.__table__


@dataclass(frozen=True)
class Reviewer:
    """A signed-in person: who they are and what they may review."""

    account_id: int
    login: str
    person_id: int
    code: str
    name: str
    scope: Scope
    session_id: str | None = None

    @property
    def actor(self) -> str:
        """How audit rows name them."""
        return f"person:{self.code}"

    @property
    def label(self) -> str:
        return f"{self.name}（{self.code}）"


@dataclass(frozen=True)
class SignIn:
    """What a sign-in came to: a reviewer, or a refusal (``wait`` > 0: throttled, answer 429)."""

    reviewer: Reviewer | None
    wait: float = 0.0
    reason: str = ""  # for the log: throttled, unknown, password, disabled, demo, scope
    session_token: str | None = None


def _audit(session: Session, as_of: dt.datetime, actor: str, action: str, object_type: str, object_id: str,
           **detail) -> None:
    session.add(Audit(at=as_of, actor=actor[:100], action=action, object_type=object_type,
                      object_id=str(object_id)[:64], detail=detail))


def token_id(token: str) -> str:
    """The id a session is stored under: the SHA-256 of its cookie's token."""
    return hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------- managing accounts

def _person(session: Session, code: str) -> Person:
    person = session.scalar(sa.select(Person).where(Person.code == code))
    if person is None:
        raise AccountError(t("acc.err.person", code=code))
    return person


def _account(session: Session, login: str) -> Account:
    account = session.scalar(sa.select(Account).where(Account.login == normal_login(login)))
    if account is None:
        raise AccountError(t("acc.err.no_account", login=login))
    return account


def check_password(password: str, *, login: str) -> None:
    problem = password_problem(password, login=login)
    if problem:
        raise AccountError(t("acc.err.password", problem=problem))


def scope_of(session: Session, person_id: int) -> Scope:
    return review_scope(load_org(session), person_id)


def add_account(session: Session, *, person_code: str, password: str, actor: str, as_of: dt.datetime,
                login: str | None = None, demo: bool = False) -> Account:
    """An account for a person who reviews (the safety section, a 包保/分管 leader); every check first."""
    person = _person(session, person_code)
    if not person.active:
        raise AccountError(t("acc.err.inactive", code=person.code))
    scope = scope_of(session, person.id)
    if scope.empty:
        raise AccountError(t("acc.err.scope", name=person.name, code=person.code))
    existing = session.scalar(sa.select(Account.login).where(Account.person_id == person.id))
    if existing is not None:
        raise AccountError(t("acc.err.has", name=person.name, code=person.code, login=existing))
    name = normal_login(login or person.code)
    if not re.fullmatch(rf"[\w.@-]{{1,{MAX_LOGIN}}}", name):
        raise AccountError(t("acc.err.login", login=(login or person.code)[:80], n=MAX_LOGIN))
    if session.scalar(sa.select(Account.id).where(Account.login == name)) is not None:
        raise AccountError(t("acc.err.taken", login=name))
    if not demo:
        check_password(password, login=name)
    account = Account(person_id=person.id, login=name, password_hash=HASHER.hash(password), demo=demo,
                      created_at=as_of, password_changed_at=as_of)
    session.add(account)
    session.flush()
    _audit(session, as_of, actor, "account.added", "account", name, person=person.code, name=person.name,
           scope="all" if scope.everything else sorted(scope.units), demo=demo)
    return account


def set_password(session: Session, *, login: str, password: str, actor: str, as_of: dt.datetime) -> int:
    """A new password; every session of the account ends. Returns the sessions ended."""
    account = _account(session, login)
    check_password(password, login=account.login)
    account.password_hash = HASHER.hash(password)
    account.password_changed_at = as_of
    account.demo = False
    ended = revoke_all(session, account_id=account.id, as_of=as_of)
    _audit(session, as_of, actor, "account.password_changed", "account", account.login, sessions_ended=ended)
    return ended


def set_active(session: Session, *, login: str, active: bool, actor: str, as_of: dt.datetime) -> int:
    """Disable (every session ends) or enable an account. Returns the sessions ended."""
    account = _account(session, login)
    account.active = active
    ended = 0 if active else revoke_all(session, account_id=account.id, as_of=as_of)
    _audit(session, as_of, actor, "account.enabled" if active else "account.disabled", "account", account.login,
           sessions_ended=ended)
    return ended


def unlock(session: Session, *, actor: str, as_of: dt.datetime, login: str | None = None,
           address: str | None = None) -> int:
    """Clear the failed sign-ins (and the lock) of an account name and/or a client address;
    returns how many of the two had any."""
    keys = ([("account", normal_login(login))] if login else []) + ([("address", address.strip())] if address else [])
    cleared = 0
    for kind, key in keys:
        row = session.execute(sa.select(TH).where(TH.c.kind == kind, TH.c.key == key)).first()
        if row is None:
            continue
        session.execute(sa.delete(TH).where(TH.c.kind == kind, TH.c.key == key))
        locked = bool(row.locked_until and row.locked_until > as_of)
        cleared += bool(row.failures or row.locked_until)
        _audit(session, as_of, actor, "login.unlocked", kind, key, failures=row.failures, refused=row.refused,
               was_locked=locked)
    return cleared


@dataclass(frozen=True)
class AccountRow:
    login: str
    code: str
    name: str
    unit: str
    scope: str  # "all", or the unit names it covers
    active: bool
    demo: bool
    locked_until: dt.datetime | None
    failures: int
    last_login_at: dt.datetime | None
    sessions: int  # open sessions

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("locked_until", "last_login_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def list_accounts(session: Session, *, as_of: dt.datetime) -> list[AccountRow]:
    P, U = Person.__table__, Unit.__table__
    org = load_org(session)
    open_ = (sa.select(sa.func.count()).where(S.c.account_id == A.c.id, S.c.revoked_at.is_(None),
                                              S.c.expires_at > as_of).scalar_subquery())
    rows = session.execute(
        sa.select(A.c.login, A.c.person_id, A.c.active, A.c.demo, A.c.last_login_at, P.c.code, P.c.name,
                  U.c.name.label("unit"), TH.c.locked_until, TH.c.failures, open_.label("sessions"))
        .join(P, P.c.id == A.c.person_id).join(U, U.c.id == P.c.unit_id)
        .outerjoin(TH, sa.and_(TH.c.kind == "account", TH.c.key == A.c.login))
        .order_by(A.c.login)
    ).all()
    out = []
    for r in rows:
        scope = review_scope(org, r.person_id)
        names = "all" if scope.everything else "、".join(sorted(org.units[u].name for u in scope.units))
        locked = r.locked_until if r.locked_until and r.locked_until > as_of else None
        out.append(AccountRow(r.login, r.code, r.name, r.unit, names, r.active, r.demo, locked, r.failures or 0,
                              r.last_login_at, r.sessions))
    return out


def ensure_demo_accounts(session: Session, *, as_of: dt.datetime) -> list[str]:
    """Demo accounts (password ``pingan-demo``, valid only in demo mode) for the safety section,
    the leader in charge of safety and one 包保 leader; those that exist are left alone."""
    from models import RoleKind

    org = load_org(session)
    everything = [pid for pid in sorted(org.persons) if review_scope(org, pid).everything]
    patrons = sorted({pid for pid, _, role in org.roles
                      if RoleKind(role) == RoleKind.patron and pid in org.persons and pid not in everything})
    people = everything + patrons[:1]
    have = set(session.scalars(sa.select(Account.person_id).where(Account.person_id.in_(people))))
    made = []
    for pid in people:
        if pid in have:
            continue
        code = org.persons[pid].code
        if session.scalar(sa.select(Account.id).where(Account.login == normal_login(code))) is None:
            made.append(add_account(session, person_code=code, password=DEMO_PASSWORD, actor="system:demo",
                                    as_of=as_of, demo=True).login)
    return made


# --------------------------------------------------------------------------- the throttle

def _throttle(session: Session, kind: str, key: str) -> tuple[Throttle, int] | None:
    row = session.execute(sa.select(TH).where(TH.c.kind == kind, TH.c.key == key)).first()
    return (Throttle(row.failures, row.last_failure_at, row.locked_until), row.refused) if row else None


def _count_attempt(session: Session, kind: str, key: str, as_of: dt.datetime) -> tuple[Throttle, Throttle] | float:
    """Count an attempt as a failure before the password is checked: (before, after), or the
    seconds to wait when the key is locked. Compare-and-set, so concurrent attempts all count."""
    insert_ignore(session, TH, [{"kind": kind, "key": key, "failures": 0, "refused": 0}], ["kind", "key"], returning=())
    for _ in range(20):
        before, _ = _throttle(session, kind, key)
        if before.wait(as_of) > 0:  # locked by an attempt made meanwhile
            return _refuse(session, kind, key, as_of)
        after = before.after_failure(POLICIES[kind], as_of)
        same = [TH.c.failures == before.failures,
                TH.c.last_failure_at.is_(None) if before.last_failure_at is None
                else TH.c.last_failure_at == before.last_failure_at,
                TH.c.locked_until.is_(None) if before.locked_until is None
                else TH.c.locked_until == before.locked_until]
        done = session.execute(
            sa.update(TH).where(TH.c.kind == kind, TH.c.key == key, *same)
            .values(failures=after.failures, last_failure_at=after.last_failure_at, locked_until=after.locked_until,
                    refused=0 if after.locked_until else TH.c.refused)
            .returning(TH.c.kind)
        ).first()
        if done is not None:
            return before, after
    raise RuntimeError(f"login throttle {kind} kept changing under this attempt")


def _refuse(session: Session, kind: str, key: str, as_of: dt.datetime) -> float:
    """Turn an attempt away while the key is locked: counted, the first of each lock audited;
    returns the seconds left."""
    before, refused = _throttle(session, kind, key)
    session.execute(sa.update(TH).where(TH.c.kind == kind, TH.c.key == key).values(refused=TH.c.refused + 1))
    if refused == 0:
        _audit(session, as_of, "anonymous", "login.throttled", kind, key,
               locked_until=before.locked_until.isoformat(), failures=before.failures)
    return before.wait(as_of)


def _clear(session: Session, kind: str, key: str) -> None:
    session.execute(sa.update(TH).where(TH.c.kind == kind, TH.c.key == key)
                    .values(failures=0, last_failure_at=None, locked_until=None, refused=0))


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(HASHER.hash(secrets.token_hex(16)))
    return _DUMMY[0]


def sign_in(session: Session, *, login: str, password: str, address: str | None, as_of: dt.datetime,
            settings: Settings) -> SignIn:
    """Check a sign-in and, when it holds, open a session. Commit what this wrote in every case:
    the attempt is counted (and audited) whether it succeeds or not."""
    name = normal_login(login)[:MAX_LOGIN] or "-"
    address = (address or "unknown")[:64]
    keys = (("account", name), ("address", address))
    for kind, key in keys:  # a locked address must not go on counting (and locking) the names it tries
        found = _throttle(session, kind, key)
        if found is not None and found[0].wait(as_of) > 0:
            return SignIn(None, wait=_refuse(session, kind, key, as_of), reason="throttled")
    counted = []
    for kind, key in keys:
        outcome = _count_attempt(session, kind, key, as_of)
        if isinstance(outcome, float):
            return SignIn(None, wait=outcome, reason="throttled")
        counted.append((kind, key, *outcome))

    row = session.execute(
        sa.select(Account, Person).join(Person, Person.id == Account.person_id).where(Account.login == name)
    ).first()
    account, person = (row[0], row[1]) if row else (None, None)
    try:
        HASHER.verify(account.password_hash if account else _dummy_hash(), password[:MAX_PASSWORD])
        right = account is not None
    except (VerificationError, InvalidHashError):
        right = False
    reason = ("unknown" if account is None else "password" if not right else "disabled"
              if not (account.active and person.active) else "demo" if account.demo and not settings.demo else "")
    actor = f"person:{person.code}" if person else "anonymous"
    if reason:
        _audit(session, as_of, actor, "login.failed", "account", name, address=address, reason=reason)
        for kind, key, before, after in counted:
            if after.locked_until and before.wait(as_of) == 0:
                _audit(session, as_of, actor if kind == "account" else "anonymous", "login.locked", kind, key,
                       failures=after.failures, locked_until=after.locked_until.isoformat())
        return SignIn(None, reason=reason)

    for kind, key, *_ in counted:
        _clear(session, kind, key)
    scope = scope_of(session, person.id)
    if scope.empty:
        _audit(session, as_of, actor, "login.failed", "account", name, address=address, reason="scope")
        return SignIn(None, reason="scope")
    if HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = HASHER.hash(password)
    account.last_login_at = as_of
    token = secrets.token_urlsafe(32)
    sid = token_id(token)
    session.execute(sa.insert(S).values(id=sid, account_id=account.id, created_at=as_of, last_seen_at=as_of,
                                        expires_at=as_of + dt.timedelta(hours=settings.session_max_hours),
                                        address=address))
    _audit(session, as_of, actor, "login.succeeded", "account", name, address=address)
    return SignIn(Reviewer(account.id, account.login, person.id, person.code, person.name, scope, sid),
                  session_token=token)


# --------------------------------------------------------------------------- sessions

def reviewer_for(session: Session, token: str | None, *, as_of: dt.datetime, settings: Settings) -> Reviewer | None:
    """The reviewer a session cookie stands for, or None (unknown, revoked, idle too long, past
    its end, account or person disabled, demo account outside demo, nothing left to review).
    Notes the request as the session's last activity (at most once a minute)."""
    if not token or len(token) > 128:
        return None
    sid = token_id(token)
    row = session.execute(
        sa.select(S.c.created_at, S.c.last_seen_at, S.c.expires_at, S.c.revoked_at, A.c.id, A.c.login, A.c.active,
                  A.c.demo, Person.id.label("person_id"), Person.code, Person.name, Person.active.label("person_active"))
        .join(A, A.c.id == S.c.account_id).join(Person, Person.id == A.c.person_id).where(S.c.id == sid)
    ).first()
    if row is None or row.revoked_at is not None or not row.active or not row.person_active:
        return None
    if row.demo and not settings.demo:
        return None
    ends = min(row.expires_at, session_ends(created_at=row.created_at, last_seen_at=row.last_seen_at,
                                            max_hours=settings.session_max_hours,
                                            idle_minutes=settings.session_idle_minutes))
    if as_of >= ends:
        return None
    scope = scope_of(session, row.person_id)
    if scope.empty:
        return None
    if as_of - row.last_seen_at >= TOUCH_EVERY:
        session.execute(sa.update(S).where(S.c.id == sid).values(last_seen_at=as_of))
    return Reviewer(row.id, row.login, row.person_id, row.code, row.name, scope, sid)


def sign_out(session: Session, reviewer: Reviewer, *, as_of: dt.datetime) -> None:
    session.execute(sa.update(S).where(S.c.id == reviewer.session_id, S.c.revoked_at.is_(None)).values(revoked_at=as_of))
    _audit(session, as_of, reviewer.actor, "login.signed_out", "account", reviewer.login)


def revoke_all(session: Session, *, account_id: int, as_of: dt.datetime) -> int:
    """End every open session of an account; returns how many."""
    return session.execute(
        sa.update(S).where(S.c.account_id == account_id, S.c.revoked_at.is_(None)).values(revoked_at=as_of)
    ).rowcount or 0


def change_own_password(session: Session, reviewer: Reviewer, *, current: str, new: str, as_of: dt.datetime,
                        settings: Settings, address: str | None = None) -> str:
    """A reviewer changes their password: every session ends, this browser gets a new one (its token)."""
    account = session.get(Account, reviewer.account_id)
    try:
        HASHER.verify(account.password_hash, current[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        raise AccountError(t("acc.err.current")) from None
    set_password(session, login=account.login, password=new, actor=reviewer.actor, as_of=as_of)
    token = secrets.token_urlsafe(32)
    session.execute(sa.insert(S).values(id=token_id(token), account_id=account.id, created_at=as_of, last_seen_at=as_of,
                                        expires_at=as_of + dt.timedelta(hours=settings.session_max_hours),
                                        address=(address or "unknown")[:64]))
    return token


register({
    "acc.err.current": {"zh-CN": "当前密码不正确", "en": "the current password is wrong"},
})
