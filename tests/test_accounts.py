"""Reviewers' accounts without the web page: the password policy, the throttle over an hour of
attacks, who may review what, argon2 hashes, concurrent sign-ins, sessions that end, and
``pingan account add | passwd | disable | enable | list | unlock`` (one line, exit 2, nothing
written for every refusal). The web page's side is in test_web.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from argon2 import PasswordHasher
from factories import at, rows
from typer.testing import CliRunner

from pingan.accounts import rules
from pingan.accounts import service as accounts
from pingan.cli import app
from pingan.core.clock import now
from pingan.core.db import session_scope
from pingan.core.settings import Settings, get_settings, reset_settings
from pingan.org.snapshot import load_org

GOOD = "safety-lantern-orbit-42"
runner = CliRunner()


@pytest.fixture
def quick_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(accounts, "_DUMMY", [])


def cli(*args: str, password: str | None = None):
    return runner.invoke(app, list(args), input=None if password is None else password + "\n")


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("错误：", "error:")) and "Traceback" not in result.output, result.output
    return lines[0]


def counts() -> tuple[int, int, int]:
    with session_scope() as session:
        return tuple(rows(session, f"select count(*) from {table}")[0][0] for table in ("account", "audit", "web_session"))


# --------------------------------------------------------------------------- pure rules

def test_an_attacker_trying_every_second_is_heard_eleven_times_in_an_hour():
    # By the policy (five failures, then 1, 2, 4, 8 minutes, then 15 minutes per failure), tries
    # at seconds 0-4 are heard (the fifth locks until 64), then at 64 (lock 120 s → 184),
    # 184 (240 s → 424), 424 (480 s → 904), 904 (900 s → 1804), 1804 (→ 2704), 2704 (→ 3604):
    # eleven in the hour 0 … 3599.
    start = at("2026-11-12")
    throttle, heard = rules.Throttle(), []
    for second in range(3600):
        now = start + dt.timedelta(seconds=second)
        if throttle.wait(now) == 0:
            heard.append(second)
            throttle = throttle.after_failure(rules.ACCOUNT, now)
    assert heard == [0, 1, 2, 3, 4, 64, 184, 424, 904, 1804, 2704]


def test_the_count_starts_again_after_a_quiet_day_and_the_address_allows_twenty():
    start = at("2026-11-12")
    throttle = rules.Throttle()
    for i in range(4):
        throttle = throttle.after_failure(rules.ACCOUNT, start + dt.timedelta(seconds=i))
    assert throttle.failures == 4 and throttle.locked_until is None
    later = throttle.after_failure(rules.ACCOUNT, start + dt.timedelta(days=1, seconds=3))
    assert later.failures == 1 and later.locked_until is None
    address = rules.Throttle()
    for i in range(19):
        address = address.after_failure(rules.ADDRESS, start)
    assert address.wait(start) == 0
    assert address.after_failure(rules.ADDRESS, start).wait(start) == 60


@pytest.mark.parametrize("password, problem", [
    ("short-pass1", "至少 12 个字符"),
    ("qwerty123456", "常见密码"), ("Q1W2E3R4T5Y6", "常见密码"), ("123456789123", "常见密码"),
    ("aaaaaaaaaaaaaaa", "不同字符太少"), ("abababababab", "不同字符太少"),
    ("dep-b-is-my-name", "不能包含登录名"),
    ("tab\tinside-password", "控制字符"),
    ("x" * 300, "最多 256"),
])
def test_a_weak_password_is_refused_with_its_reason(password, problem):
    assert problem in rules.password_problem(password, login="dep-b")


def test_a_good_password_passes():
    for password in (GOOD, "平安校园审核密码二〇二六", "Tr0ub4dor&3-horse"):
        assert rules.password_problem(password, login="dep-b") is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_safety_section_reviews_everything_and_a_leader_only_the_units_they_answer_for(ids):
    with session_scope() as session:
        org = load_org(session)
    scope = {code: rules.review_scope(org, ids[code]) for code in ("safe-head", "dep-a", "dep-b", "chief", "s1-head")}
    assert scope["safe-head"] == rules.Scope(True)  # the safety section (学校安全科)
    assert scope["dep-a"] == rules.Scope(True)  # the leader in charge of safety work (分管安全)
    assert scope["dep-b"] == rules.Scope(False, frozenset({ids["S1"], ids["S2"], ids["OFF"]}))  # 包保 ×2, 分管 办公室
    assert scope["chief"].empty and scope["s1-head"].empty  # they hand in, they do not review


# --------------------------------------------------------------------------- the command line

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_accounts_are_made_for_reviewers_only_and_every_refusal_writes_nothing(ids):
    before = counts()
    refusals = [
        (("account", "add", "s1-head"), GOOD, "一小校长（s1-head）不在安全科，也不包保或分管任何单位"),
        (("account", "add", "nobody"), GOOD, "没有编码为「nobody」的人员"),
        (("account", "add", "dep-b"), "short", "密码不可用：密码太短：至少 12 个字符"),
        (("account", "add", "dep-b"), "password1234", "常见密码"),
        (("account", "add", "dep-b", "--login", "dep b!"), GOOD, "登录名「dep b!」不可用"),
        (("account", "passwd", "dep-b"), GOOD, "没有登录名为「dep-b」的账号"),
        (("account", "disable", "nobody"), None, "没有登录名为「nobody」的账号"),
        (("account", "unlock"), None, "请给出登录名或 --address"),
    ]
    for args, password, why in refusals:
        assert why in one_line(cli(*args, password=password)), args
    assert counts() == before

    made = cli("account", "add", "dep-b", password=GOOD)
    assert made.exit_code == 0, made.output
    assert "已为 副局长乙（dep-b）创建账号「dep-b」，可审核：一小、二中、办公室" in made.output
    assert GOOD not in made.output
    with session_scope() as session:
        stored = rows(session, "select login, password_hash, demo from account")
        audit = rows(session, "select action, object_id, detail from audit where action like 'account.%'")
    # argon2id with the library's defaults (64 MiB, 3 passes, 4 lanes); never the password itself
    assert stored[0].login == "dep-b" and stored[0].password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert GOOD not in stored[0].password_hash and PasswordHasher().verify(stored[0].password_hash, GOOD)
    assert [(a.action, a.object_id) for a in audit] == [("account.added", "dep-b")]
    # a second account for the same person, or the same login for another, is refused
    assert "已有账号「dep-b」" in one_line(cli("account", "add", "dep-b", "--login", "other", password=GOOD))
    assert "登录名「dep-b」已被使用" in one_line(cli("account", "add", "safe-head", "--login", "DEP-B", password=GOOD))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_list_passwd_disable_enable_and_unlock(ids, quick_hashes):
    assert cli("account", "add", "safe-head", password=GOOD).exit_code == 0
    assert cli("account", "add", "dep-b", "--login", "yi", password=GOOD).exit_code == 0
    settings = get_settings()

    def sign_in(login: str, password: str = GOOD, address: str = "10.0.0.1"):
        with session_scope() as session:  # the wall clock, as the commands use it
            return accounts.sign_in(session, login=login, password=password, address=address, as_of=now(),
                                    settings=settings)

    first, second = sign_in("yi"), sign_in("yi", address="10.0.0.2")
    assert first.reviewer.code == "dep-b" and first.reviewer.scope.units == {ids["S1"], ids["S2"], ids["OFF"]}
    listed = json.loads(cli("account", "list", "--json").output)
    assert [(a["login"], a["code"], a["scope"], a["sessions"], a["active"]) for a in listed] == [
        ("safe-head", "safe-head", "all", 0, True), ("yi", "dep-b", "一小、二中、办公室", 2, True)]

    # a new password ends every session
    result = cli("account", "passwd", "yi", password="another-" + GOOD)
    assert result.exit_code == 0 and "已退出 2 个登录" in result.output
    with session_scope() as session:
        for outcome in (first, second):
            assert accounts.reviewer_for(session, outcome.session_token, as_of=now(), settings=settings) is None
    assert sign_in("yi").reviewer is None and sign_in("yi", "another-" + GOOD).reviewer is not None

    # disabled: no session, no sign-in, even with the right password; enabled again: back
    assert "已退出 1 个登录" in cli("account", "disable", "yi").output
    assert sign_in("yi", "another-" + GOOD).reason == "disabled"
    assert cli("account", "enable", "yi").exit_code == 0
    assert sign_in("yi", "another-" + GOOD).reviewer is not None

    # five failures lock the account; the list shows it; unlock clears it
    for i in range(5):
        assert sign_in("safe-head", f"wrong-{i}").reason == "password"
    assert 0 < sign_in("safe-head").wait <= 60  # locked for a minute from the fifth failure
    locked = [a for a in json.loads(cli("account", "list", "--json").output) if a["login"] == "safe-head"][0]
    assert locked["failures"] == 5 and locked["locked_until"] is not None
    assert "已清除 1 项" in cli("account", "unlock", "safe-head").output
    assert sign_in("safe-head").reviewer is not None
    with session_scope() as session:
        actions = [r.action for r in rows(session, "select action from audit where action like 'account.%' "
                                                   "or action like 'login.%' order by id")]
    assert actions.count("account.password_changed") == 1 and actions.count("account.disabled") == 1
    assert actions.count("login.locked") == 1 and actions.count("login.unlocked") == 1


def test_attempts_made_at_the_same_instant_all_count(migrated_db, quick_hashes):
    from factories import make_org

    with session_scope() as session:
        make_org(session)
        accounts.add_account(session, person_code="safe-head", password=GOOD, actor="test", as_of=at("2026-11-01"))
    settings, barrier, answers = get_settings(), threading.Barrier(12), []

    def attempt(i: int) -> None:
        barrier.wait()
        with session_scope() as session:
            outcome = accounts.sign_in(session, login="safe-head", password=f"wrong-{i}", address=f"10.0.0.{i}",
                                       as_of=at("2026-11-12"), settings=settings)
        answers.append("429" if outcome.wait else outcome.reason)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # twelve wrong passwords at once, from twelve addresses: five are checked, seven wait
    assert sorted(answers) == ["429"] * 7 + ["password"] * 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_accounts_sign_in_only_in_demo_mode(ids, quick_hashes, monkeypatch):
    with session_scope() as session:
        made = accounts.ensure_demo_accounts(session, as_of=at("2026-11-01"))
        assert accounts.ensure_demo_accounts(session, as_of=at("2026-11-01")) == []  # once
    assert made == ["dep-a", "safe-head", "dep-b"]

    def sign_in(demo: bool):
        settings = Settings(demo=demo)
        with session_scope() as session:
            return accounts.sign_in(session, login="safe-head", password=accounts.DEMO_PASSWORD, address="x",
                                    as_of=at("2026-11-12"), settings=settings)

    demo = sign_in(True)
    assert demo.reviewer is not None
    assert sign_in(False).reason == "demo"
    with session_scope() as session:  # nor does a session opened in demo mode outlive it
        settings = Settings(demo=False)
        assert accounts.reviewer_for(session, demo.session_token, as_of=at("2026-11-12"), settings=settings) is None
    # a demo account given a real password is a real account
    monkeypatch.setenv("PINGAN_DEMO", "0")
    reset_settings()
    assert cli("account", "passwd", "safe-head", password=GOOD).exit_code == 0
    with session_scope() as session:
        assert rows(session, "select demo from account where login = 'safe-head'")[0][0] in (False, 0)
