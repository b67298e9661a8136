"""Reviewers' accounts, their server-side sessions, and the login throttle.

An account belongs to a person of the organisation (the safety section, a 包保/分管 leader);
what it may review follows from that person's roles (``pingan.accounts.rules.review_scope``),
never from the account. Passwords are stored as argon2 hashes only; a session's cookie holds
a random token and the table only its SHA-256, so reading the table signs nobody in.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from models.types import AwareDateTime
from pingan.core.clock import now


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    login: str = Field(max_length=64, unique=True)  # lower case; by default the person's code
    password_hash: str = Field(max_length=255, repr=False)
    active: bool = True
    # Made by the demo with its published password: signs in only while PINGAN_DEMO is on.
    demo: bool = False
    created_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    password_changed_at: dt.datetime = Field(default_factory=now, sa_type=AwareDateTime)
    last_login_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)


class WebSession(SQLModel, table=True):
    """A signed-in browser. Ends at ``expires_at``, after the idle timeout, or when revoked
    (signing out, a password change, the account disabled)."""

    __tablename__ = "web_session"

    id: str = Field(primary_key=True, max_length=64)  # SHA-256 (hex) of the cookie's token
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: dt.datetime = Field(sa_type=AwareDateTime)
    last_seen_at: dt.datetime = Field(sa_type=AwareDateTime)
    expires_at: dt.datetime = Field(sa_type=AwareDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    address: str | None = Field(default=None, max_length=64)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins counted per account name (``kind="account"``, even a name no account has)
    and per client address (``kind="address"``); ``locked_until`` answers 429 until it passes."""

    __tablename__ = "login_throttle"

    kind: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=100)
    failures: int = 0
    last_failure_at: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    locked_until: dt.datetime | None = Field(default=None, sa_type=AwareDateTime)
    refused: int = 0  # attempts answered 429 during the current lock
