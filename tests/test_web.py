"""The evidence page through FastAPI's TestClient: the hand-in link from a real reminder, every bad
input (a clear message, nothing stored), refused links (403, no detail), CSRF, reviewers' own
accounts (each sees only their units, every review names them), throttled sign-ins, sessions that
end, storage and database failures, the health check, the secret key policy, and
``python -m pingan.web`` standalone.

SQLite unless a test says otherwise; one end-to-end test also runs on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from factories import at, make_catalog_dir, make_org, rows
from fastapi.testclient import TestClient
from test_evidence import DOCX, JPEG, MINUTES, PDF, PNG, POLYGLOTS
from typer.testing import CliRunner

from models import Occurrence
from pingan.accounts import service as accounts
from pingan.delivery.workflow import dispatch
from pingan.duties.workflow import cycle
from pingan.delivery import transports
from pingan.duties.catalog import load_catalog
from pingan.core.db import dispose_engines, session_scope
from pingan.core.links import sign
from pingan.core.migrate import upgrade
from pingan.duties.runtime import build_runtime
from pingan.core.settings import REPO_ROOT, Settings, reset_settings
from pingan.delivery.transports import Outcome
from pingan.web import create_app
from pingan.cli import app as cli_app
from pingan.cli.supervisor import free_port

SECRET = "9f2c4e8a1b7d3f60c5e9a2d4b8f1c7e3a6d0b5f9e2c8a4d1b7f3e6c0a9d5b2e8"  # 32 random bytes, in hex
PASSWORD = "审核-correct-horse-battery"
LEADER_PASSWORD = "包保-staple-orbit-lantern"
FIELDS = {f"f_{k}": v for k, v in MINUTES.items()}


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """argon2 at its lightest: the suite signs in hundreds of times (production parameters are
    checked in tests/test_accounts.py)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(accounts, "_DUMMY", [])


class Clock:
    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


@dataclass
class Site:
    rt: object
    ids: dict
    task: int
    path: str  # /e/<token> from s1-head's reminder
    token: str
    client: TestClient
    clock: Clock
    sent: list

    def app(self, **overrides) -> TestClient:
        """Another app on the same database and clock, with some settings changed."""
        rt = build_runtime(self.rt.settings.model_copy(update=overrides), self.rt.catalog)
        return TestClient(create_app(runtime=rt, clock=self.clock))

    def csrf(self, client: TestClient | None = None, path: str | None = None) -> str:
        page = (client or self.client).get(path or self.path)
        return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating takes longer than the test)."""
    path = tmp_path_factory.mktemp("template") / "pingan.db"
    upgrade("head", url=f"sqlite:///{path}")
    dispose_engines()
    return path


@pytest.fixture(scope="session")
def catalog(tmp_path_factory):
    directory = make_catalog_dir(tmp_path_factory.mktemp("catalog"))
    return directory, load_catalog(directory)


def open_site(tmp_path, monkeypatch, url: str, catalog, template: Path | None = None) -> Site:
    if template is not None:
        shutil.copy(template, sa.make_url(url).database)
    else:
        upgrade("head", url=url)
    monkeypatch.setenv("PINGAN_DATABASE_URL", url)
    monkeypatch.setenv("PINGAN_SECRET_KEY", SECRET)
    monkeypatch.delenv("PINGAN_DEMO")
    reset_settings()
    dispose_engines()
    sent: list = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    rt = build_runtime(Settings(catalog_dir=catalog[0], send_backoff=0), catalog[1])
    with session_scope() as session:
        ids = make_org(session)
        # the safety section's head reviews every unit; 副局长乙 the two schools he answers for (包保)
        accounts.add_account(session, person_code="safe-head", password=PASSWORD, actor="test", as_of=at("2026-11-01"))
        accounts.add_account(session, person_code="dep-b", password=LEADER_PASSWORD, actor="test",
                             as_of=at("2026-11-01"))
    cycle(rt, "school-meeting", at("2026-11-10"))
    dispatch(rt, at("2026-11-10"))
    body = next(b for u, b in sent if u.endswith("/s1-head"))
    link = re.search(r"https?://\S+/e/\S+", body)[0]
    with session_scope() as session:
        task = session.scalar(sa.select(Occurrence.id).where(Occurrence.unit_id == ids["S1"]))
    clock = Clock(at("2026-11-12"))
    client = TestClient(create_app(runtime=rt, clock=clock))
    path = urlsplit(link).path
    return Site(rt, ids, task, path, path.rsplit("/", 1)[1], client, clock, sent)


@pytest.fixture
def site(tmp_path, sqlite_url, monkeypatch, catalog, template_db) -> Site:
    return open_site(tmp_path, monkeypatch, sqlite_url, catalog, template_db)


def stored(site: Site) -> dict:
    """What a refused hand-in must not have changed."""
    with session_scope() as session:
        return {
            "evidence": rows(session, "select count(*) from evidence")[0][0],
            "files": rows(session, "select count(*) from evidencefile")[0][0],
            "audit": rows(session, "select count(*) from audit where action like 'evidence.%'")[0][0],
            "review": rows(session, "select review from occurrence where id = :id", id=site.task)[0][0],
            "blobs": sorted(p.name for p in site.rt.settings.evidence_dir.rglob("*") if p.is_file())
            if site.rt.settings.evidence_dir.exists() else [],
        }


NOTHING = {"evidence": 0, "files": 0, "audit": 0, "review": "none", "blobs": []}


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, dict]:
    """A form body written by hand, so file names reach the server exactly as given."""
    boundary = f"pingan{uuid.uuid4().hex}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode() + name.encode()
                     + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def post(site: Site, files=(("纪要.pdf", PDF),), fields=None, csrf=None, client=None, path=None, kind="meeting_minutes"):
    client = client or site.client
    data = {"csrf": csrf if csrf is not None else site.csrf(client, path), "kind": kind, **(FIELDS if fields is None else fields)}
    body, headers = multipart(data, list(files))
    return client.post(path or site.path, content=body, headers=headers, follow_redirects=False)


def errors(page) -> list[str]:
    box = re.search(r'<div class="notice error".*?</div>', page.text, re.S)
    return re.findall(r"<li>(.*?)</li>", box[0]) if box else []


# --------------------------------------------------------------------------- the hand-in page

def test_the_reminder_link_opens_a_phone_page_with_what_the_person_must_hand_in(site):
    page = site.client.get(site.path)
    assert page.status_code == 200
    html = page.text
    assert '<html lang="zh-CN">' in html and 'name="viewport" content="width=device-width, initial-scale=1"' in html
    for text in ("学校安全形势分析会", "《测试清单》七（四）", "一小", "2026-11", "2026-11-30 17:30", "办理中",
                 "会议日期、参会人员、议题及研究决定的事项", "参会人员", "研究决定事项", 'type="date"', 'type="file"',
                 'accept=".jpg,.jpeg,.png,.webp,.pdf,.docx,.xlsx"', "提交材料"):
        assert text in html, text
    assert SECRET not in html
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    css = site.client.get("/static/style.css")
    assert css.status_code == 200 and "min-height: 48px" in css.text


def test_the_page_speaks_english_with_pingan_locale_en(site, monkeypatch):
    monkeypatch.setenv("PINGAN_LOCALE", "en")
    reset_settings()
    html = site.client.get(site.path).text
    assert '<html lang="en">' in html
    for text in ("School monthly safety meeting", "Attendees", "Hand in", "clause 七（四）", "open"):
        assert text in html, text
    response = post(site, fields={**FIELDS, "f_attendees": ""})
    assert errors(response) == ["“Attendees” is required"]


def test_a_hand_in_is_confirmed_and_the_task_shows_as_submitted(site):
    response = post(site, files=[("11月安全会议纪要.pdf", PDF), ("签到表.jpg", JPEG)])
    assert response.status_code == 303
    page = site.client.get(response.headers["location"])
    assert "提交成功：已收到第 1 版材料，等待审核。" in page.text
    assert 'data-state="submitted"' in page.text and "提交新版本" in page.text
    state = stored(site)
    assert (state["evidence"], state["files"], state["audit"], state["review"], len(state["blobs"])) == (1, 2, 1, "submitted", 2)
    with session_scope() as session:
        evidence = rows(session, "select person_id, version, kind, fields, submitted_at from evidence")[0]
    assert evidence.person_id == site.ids["s1-head"] and evidence.version == 1 and evidence.kind == "meeting_minutes"
    assert "2026-11-12" in str(evidence.submitted_at)
    second = post(site, files=[("纪要-修订.docx", DOCX)])
    page = site.client.get(second.headers["location"])
    assert "已收到第 2 版材料" in page.text and "第 1 版" in page.text and "第 2 版" in page.text
    assert stored(site)["evidence"] == 2


BAD_FILES = [
    # (files, status, message)
    ([("setup.exe", b"MZ" + bytes(100))], 415, "文件「setup.exe」的类型不允许"),
    ([("notes.txt", b"hello")], 415, "类型不允许"),
    ([("photo.jpg", b"<html><script>alert(1)</script></html>")], 415, "文件「photo.jpg」的内容不是 JPG 文件"),
    ([("scan.pdf", PNG)], 415, "的内容不是 PDF 文件"),
    ([("../../etc/passwd.pdf", PDF)], 400, "文件名「../../etc/passwd.pdf」不可用"),
    ([("sub/dir.pdf", PDF)], 400, "不能包含路径"),
    ([("..\\..\\win.pdf", PDF)], 400, "不能包含路径"),
    ([("bad\x01name.pdf", PDF)], 400, "文件名「bad?name.pdf」不可用"),
    ([("evil\u202egpj.pdf", PDF)], 400, "控制字符"),
    ([("empty.pdf", b"")], 400, "文件「empty.pdf」是空文件"),
    ([], 400, "请至少上传 1 个文件（会议纪要）"),
    ([(f"p{i}.jpg", JPEG) for i in range(11)], 413, "文件过多：一次最多上传 10 个"),
]


@pytest.mark.parametrize("files,status,message", BAD_FILES, ids=[m for _, _, m in BAD_FILES])
def test_bad_files_get_a_clear_message_and_nothing_is_stored(site, files, status, message):
    response = post(site, files=files)
    assert response.status_code == status
    assert any(message in e for e in errors(response)), errors(response)
    assert "冬季防火" in response.text  # what was typed is kept
    assert stored(site) == NOTHING


def test_bad_fields_and_empty_submissions_get_a_clear_message_and_nothing_is_stored(site):
    response = post(site, fields={**FIELDS, "f_attendees": " ", "f_date": "23/11/2026"})
    assert response.status_code == 400
    assert errors(response) == ["「会议日期」应为日期，如 2026-11-23", "「参会人员」为必填项"]
    response = post(site, files=[], fields={})
    assert response.status_code == 400 and errors(response) == ["没有提交任何内容：请填写表单并上传文件"]
    response = post(site, kind="drill_record")
    assert response.status_code == 400 and errors(response) == ["此任务不接受这类材料"]
    assert stored(site) == NOTHING


def test_what_people_send_is_shown_escaped(site):
    response = post(site, files=[("<img src=x onerror=alert(1)>.exe", JPEG)],
                    fields={**FIELDS, "f_topics": "<script>alert(1)</script>", "f_attendees": ""})
    assert response.status_code == 415
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<img src=x" not in response.text and "&lt;img src=x onerror=alert(1)&gt;.exe" in response.text
    assert stored(site) == NOTHING


def test_oversized_files_and_bodies_are_refused(site):
    small = site.app(evidence_max_file_mb=0.001)
    response = post(site, client=small, files=[("big.pdf", PDF + b"0" * 2000)])
    assert response.status_code == 413 and "文件「big.pdf」过大（2 KB，上限 1 KB）" in errors(response)[0]
    tiny = site.app(evidence_max_total_mb=0.001)  # the body may be 1 KB plus 2 MB for the form itself
    response = post(site, client=tiny, files=[("huge.pdf", PDF + b"0" * 2_100_000)])
    assert response.status_code == 413 and "提交的内容过大（上限 1 KB）" in errors(response)[0]
    assert stored(site) == NOTHING


def test_forms_without_a_valid_csrf_token_are_refused(site):
    for csrf in ("", "123.abc", f"{int(time.time())}.{'0' * 40}"):
        response = post(site, csrf=csrf)
        assert response.status_code == 403 and errors(response) == ["页面已过期，请检查内容并重新选择文件后再提交"]
    # a token taken from another person's page does not fit this link
    other = urlsplit(re.search(r"https?://\S+/e/\S+", next(b for u, b in site.sent if u.endswith("/s1-safe")))[0]).path
    response = post(site, csrf=site.csrf(path=other))
    assert response.status_code == 403
    assert stored(site) == NOTHING


def refused_links(site: Site) -> dict[str, str]:
    occ, person, expiry, sig = site.token.split(".")
    key = site.rt.settings.signing_key
    due = at("2026-12-30")
    return {
        "forged": f"/e/{occ}.{person}.{expiry}.{'A' * len(sig)}",
        "other task": f"/e/{int(occ) + 1}.{person}.{expiry}.{sig}",
        "other person": f"/e/{occ}.{site.ids['s1-safe']}.{expiry}.{sig}",
        "wrong key": "/e/" + sign(int(occ), int(person), due, b"another-key"),
        "malformed": "/e/not-a-token",
        "expired": "/e/" + sign(int(occ), int(person), at("2026-11-11"), key),
        # validly signed (as if the key had leaked) for someone who answers for another school
        "not responsible": "/e/" + sign(int(occ), site.ids["s2-head"], due, key),
        "no such task": "/e/" + sign(9999, int(person), due, key),
    }


def test_forged_expired_and_other_peoples_links_get_403_with_no_detail(site, caplog):
    caplog.set_level(logging.INFO, logger="pingan.web")
    denied = None
    for name, path in refused_links(site).items():
        for response in (site.client.get(path), post(site, path=path, csrf="x")):
            assert response.status_code == 403, name
            body = re.sub(r"\s+", " ", response.text)
            denied = denied or body
            assert body == denied, name  # one page whatever the reason
    assert "此链接无效或已过期" in denied and "signature" not in denied and "expired" not in denied
    assert stored(site) == NOTHING
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pingan"))
    assert "bad signature" in logged and "expired" in logged  # the reason is for the log …
    assert site.token.split(".")[3] not in logged and SECRET not in logged  # … never the token or the key


def test_an_accepted_task_takes_no_more_hand_ins(site):
    post(site)
    csrf = site.csrf()  # a page left open while the operator accepted
    with session_scope() as session:
        session.execute(sa.text("update occurrence set review = 'accepted'"))
    response = post(site, csrf=csrf)
    assert response.status_code == 409 and errors(response) == ["此任务的材料已审核通过，无需再提交"]
    page = site.client.get(site.path)
    assert "材料已审核通过，此任务已完成。" in page.text and 'id="hand-in"' not in page.text


# --------------------------------------------------------------------------- review

def login(site: Site, client: TestClient, password: str = PASSWORD, user: str = "safe-head", next_: str = "/review"):
    page = client.get("/login?" + urllib.parse.urlencode({"next": next_}))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    return client.post("/login", data={"csrf": csrf, "next": next_, "user": user, "password": password},
                       follow_redirects=False)


def review_csrf(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


def audit_rows(action_like: str) -> list:
    with session_scope() as session:
        return rows(session, "select actor, action, object_type, object_id, detail from audit where action like :a "
                             "order by id", a=action_like)


def test_the_review_page_is_behind_reviewers_own_accounts(site):
    response = site.client.get("/review/1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Freview%2F1"
    assert site.client.get("/review/files/1", follow_redirects=False).status_code == 303
    assert site.client.post("/review/1/accept", data={"csrf": "x"}, follow_redirects=False).status_code == 303
    bad = login(site, site.client, password="wrong")
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text
    assert login(site, site.client, user="root").status_code == 401  # no such account: the same answer
    # the shared operator account of old is gone
    assert login(site, site.client, user="operator", password="pingan-demo").status_code == 401
    # a person of the organisation without an account, and one who answers for nothing, cannot sign in
    assert login(site, site.client, user="s1-head", password=PASSWORD).status_code == 401
    page = site.client.get("/login")
    assert "<span>登录名</span>" in page.text and "<span>密码</span>" in page.text and "演示" not in page.text
    no_csrf = site.client.post("/login", data={"user": "safe-head", "password": PASSWORD}, follow_redirects=False)
    assert no_csrf.status_code == 403 and "pingan_session" not in no_csrf.headers.get("set-cookie", "")
    assert PASSWORD not in page.text and SECRET not in page.text
    forged = TestClient(site.client.app, cookies={"pingan_session": "A" * 43})
    assert forged.get("/review", follow_redirects=False).status_code == 303
    ok = login(site, site.client, user=" Safe-Head ")  # names are compared trimmed and in lower case
    assert ok.status_code == 303 and ok.headers["location"] == "/review"
    cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("pingan_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age" not in cookie
    listing = site.client.get("/review")
    assert listing.status_code == 200 and "安全科长 · 全部单位" in listing.text
    # an open redirect is not on offer
    page = TestClient(site.client.app).get("/login?next=https://evil.example/")
    assert 'name="next" value="/review"' in page.text
    # the server keeps the session: its cookie is a random token, the table holds only its hash
    token = site.client.cookies.get("pingan_session")
    with session_scope() as session:
        stored_ids = [r[0] for r in rows(session, "select id from web_session")]
    assert token not in stored_ids and accounts.token_id(token) in stored_ids


def test_a_reviewer_views_files_rejects_with_a_reason_and_the_person_is_told(site):
    post(site, files=[("签到表.jpg", JPEG), ("纪要.docx", DOCX)])
    site.clock.moment = at("2026-11-13")  # reviewed the next day
    login(site, site.client)
    listing = site.client.get("/review")
    assert "学校安全形势分析会" in listing.text and "一小" in listing.text and "2 个文件" in listing.text
    evidence_id = int(re.search(r'href="/review/(\d+)"', listing.text)[1])
    detail = site.client.get(f"/review/{evidence_id}")
    assert "冬季防火" in detail.text and "一小校长、一小安全主任、张老师" in detail.text and "签到表.jpg" in detail.text
    file_ids = re.findall(r'href="/review/files/(\d+)"', detail.text)
    for file_id, content, media in ((file_ids[0], JPEG, "image/jpeg"), (file_ids[1], DOCX, None)):
        response = site.client.get(f"/review/files/{file_id}")
        assert response.content == content
        # never rendered by the browser, whatever it is: a download, no scripts, no sniffing
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["content-security-policy"] == "default-src 'none'"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert media is None or response.headers["content-type"] == media
    word = site.client.get(f"/review/files/{file_ids[1]}")
    assert "%E7%BA%AA%E8%A6%81.docx" in word.headers["content-disposition"]
    assert site.client.get("/review/files/999").status_code == 404

    no_csrf = site.client.post(f"/review/{evidence_id}/reject", data={"reason": "不清晰"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    no_reason = site.client.post(f"/review/{evidence_id}/reject", data={"csrf": review_csrf(detail), "reason": " "},
                                 follow_redirects=False)
    assert no_reason.status_code == 400 and "退回必须填写理由" in no_reason.text
    assert stored(site)["review"] == "submitted"

    done = site.client.post(f"/review/{evidence_id}/reject", data={"csrf": review_csrf(detail), "reason": "缺少签到表照片"},
                            follow_redirects=False)
    assert done.status_code == 303
    assert f"材料 #{evidence_id} 已退回，已通知 2 人" in site.client.get(done.headers["location"]).text
    assert stored(site)["review"] == "rejected"
    again = site.client.post(f"/review/{evidence_id}/accept", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert again.status_code == 409 and "已审核" in again.text
    with session_scope() as session:
        notices = rows(session, "select person_id, kind, payload from notice where kind = 'review' order by person_id")
        reviewed_by = rows(session, "select reviewed_by from evidence where id = :id", id=evidence_id)[0][0]
    assert [n.person_id for n in notices] == sorted([site.ids["s1-head"], site.ids["s1-safe"]])
    payload = notices[0].payload if isinstance(notices[0].payload, dict) else json.loads(notices[0].payload)
    assert payload["reason"] == "缺少签到表照片"
    # the audit row names the person who reviewed, and so does the evidence
    audit = audit_rows("evidence.rejected")
    assert [(a.actor, a.action) for a in audit] == [("person:safe-head", "evidence.rejected")]
    assert reviewed_by == "安全科长（safe-head）"
    assert "安全科长（safe-head）" in site.client.get(f"/review/{evidence_id}").text
    # the person's link now shows why, and takes a new version
    page = site.client.get(site.path)
    assert "上次提交的材料被退回，理由：缺少签到表照片" in page.text and 'data-state="rejected"' in page.text
    post(site, files=[("签到表.jpg", JPEG)])
    detail = site.client.get(f"/review/{evidence_id + 1}")
    accepted = site.client.post(f"/review/{evidence_id + 1}/accept", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert accepted.status_code == 303 and stored(site)["review"] == "accepted"
    logout = site.client.post("/logout", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert logout.status_code == 303
    assert site.client.get("/review", follow_redirects=False).status_code == 303


def add_leader_of_k1(site: Site) -> None:
    """副局长丙, 包保 of the kindergarten only, with an account."""
    with session_scope() as session:
        session.execute(sa.text("insert into person (code, name, unit_id, active, created_at) "
                                "values ('dep-c', '副局长丙', :b, :t, :now)"), {"b": site.ids["B"], "t": True,
                                                                            "now": at("2026-11-01")})
        person = rows(session, "select id from person where code = 'dep-c'")[0][0]
        session.execute(sa.text("insert into role (person_id, unit_id, role) values (:p, :u, 'patron')"),
                        {"p": person, "u": site.ids["K1"]})
        session.flush()
        accounts.add_account(session, person_code="dep-c", password=LEADER_PASSWORD, actor="test", as_of=at("2026-11-01"))


def test_a_leader_sees_and_reviews_only_the_units_they_answer_for(site):
    add_leader_of_k1(site)
    post(site)  # 一小's minutes
    with session_scope() as session:
        evidence_id = rows(session, "select id from evidence")[0][0]
        file_id = rows(session, "select id from evidencefile")[0][0]
    # 副局长乙 answers for 一小 (包保): he sees it and may accept it
    leader = TestClient(site.client.app)
    assert login(site, leader, user="dep-b", password=LEADER_PASSWORD).status_code == 303
    listing = leader.get("/review")
    assert f'href="/review/{evidence_id}"' in listing.text and "副局长乙 · 负责的 3 个单位" in listing.text
    # 副局长丙 answers for the kindergarten only: 一小's evidence does not exist for him, by any URL
    other = TestClient(site.client.app)
    assert login(site, other, user="dep-c", password=LEADER_PASSWORD).status_code == 303
    assert f'href="/review/{evidence_id}"' not in other.get("/review?status=all").text
    assert other.get(f"/review/{evidence_id}").status_code == 404
    assert other.get(f"/review/files/{file_id}").status_code == 404
    csrf = review_csrf(other.get("/review"))
    refused = other.post(f"/review/{evidence_id}/accept", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 404 and stored(site)["review"] == "submitted"
    assert audit_rows("evidence.accepted") == []
    # the leader who answers for it accepts; the audit row names him
    detail = leader.get(f"/review/{evidence_id}")
    done = leader.post(f"/review/{evidence_id}/accept", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert done.status_code == 303 and stored(site)["review"] == "accepted"
    assert [a.actor for a in audit_rows("evidence.accepted")] == ["person:dep-b"]


def test_signing_out_and_changing_the_password_end_the_session_even_for_a_copied_cookie(site):
    assert login(site, site.client).status_code == 303
    cookie = site.client.cookies.get("pingan_session")
    copy = TestClient(site.client.app, cookies={"pingan_session": cookie})  # taken from the browser
    assert copy.get("/review", follow_redirects=False).status_code == 200
    page = site.client.get("/review")
    assert site.client.post("/logout", data={"csrf": review_csrf(page)}, follow_redirects=False).status_code == 303
    assert copy.get("/review", follow_redirects=False).status_code == 303  # revoked on the server
    assert [a.actor for a in audit_rows("login.signed_out")] == ["person:safe-head"]

    # a password change ends every other session and keeps this browser signed in
    assert login(site, site.client).status_code == 303
    other = TestClient(site.client.app)
    assert login(site, other).status_code == 303
    form = site.client.get("/account/password")
    weak = site.client.post("/account/password", data={"csrf": review_csrf(form), "current": PASSWORD,
                                                       "new": "password1234", "again": "password1234"})
    assert weak.status_code == 400 and "常见密码" in weak.text
    wrong = site.client.post("/account/password", data={"csrf": review_csrf(form), "current": "nope",
                                                        "new": "新的-secure-phrase-42", "again": "新的-secure-phrase-42"})
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    changed = site.client.post("/account/password", data={"csrf": review_csrf(form), "current": PASSWORD,
                                                          "new": "新的-secure-phrase-42", "again": "新的-secure-phrase-42"})
    assert changed.status_code == 200 and "密码已修改" in changed.text
    assert other.get("/review", follow_redirects=False).status_code == 303
    assert site.client.get("/review", follow_redirects=False).status_code == 200
    assert login(site, TestClient(site.client.app)).status_code == 401  # the old password is gone
    assert login(site, TestClient(site.client.app), password="新的-secure-phrase-42").status_code == 303


def test_a_session_ends_after_the_idle_timeout_and_after_its_hours(site):
    start = site.clock.moment
    assert login(site, site.client).status_code == 303
    # used every 20 minutes it lives on, up to PINGAN_SESSION_MAX_HOURS (12)
    for minutes in range(20, 12 * 60, 20):
        site.clock.moment = start + dt.timedelta(minutes=minutes)
        assert site.client.get("/review", follow_redirects=False).status_code == 200, minutes
    site.clock.moment = start + dt.timedelta(hours=12)
    assert site.client.get("/review", follow_redirects=False).status_code == 303
    # left alone for 30 minutes (PINGAN_SESSION_IDLE_MINUTES), it is over
    assert login(site, site.client).status_code == 303
    site.clock.moment += dt.timedelta(minutes=29)
    assert site.client.get("/review", follow_redirects=False).status_code == 200
    site.clock.moment += dt.timedelta(minutes=30)
    assert site.client.get("/review", follow_redirects=False).status_code == 303


def test_failed_sign_ins_are_throttled_per_account_audited_and_the_operator_can_unlock(site):
    attacker = TestClient(site.client.app)
    answers = Counter(login(site, attacker, password=f"guess-{i}").status_code for i in range(200))
    # five wrong passwords are heard; every later try within the lock gets 429 without being checked
    assert answers == {401: 5, 429: 195}
    right = login(site, attacker)
    assert right.status_code == 429 and "登录失败次数过多，请 1 分钟后再试" in right.text
    assert right.headers["retry-after"] == "60"
    # from another address too: the account itself is locked
    assert login(site, TestClient(site.client.app, client=("10.1.2.3", 5000))).status_code == 429
    # after the delay one more try is heard; failing it doubles the delay
    site.clock.moment += dt.timedelta(seconds=60)
    assert login(site, attacker, password="guess-200").status_code == 401
    locked = login(site, attacker)
    assert locked.status_code == 429 and locked.headers["retry-after"] == "120"
    failed = audit_rows("login.failed")
    assert len(failed) == 6 and {a.actor for a in failed} == {"person:safe-head"}
    assert [(a.object_type, a.object_id) for a in audit_rows("login.locked")] == [("account", "safe-head")] * 2
    assert [a.object_id for a in audit_rows("login.throttled")] == ["safe-head", "safe-head"]  # once per lock
    # the operator unlocks from the shell; the right password works at once
    result = CliRunner().invoke(cli_app, ["account", "unlock", "safe-head"])
    assert result.exit_code == 0 and "已清除 1 项登录失败记录及锁定" in result.output
    assert login(site, attacker).status_code == 303
    assert [a.action for a in audit_rows("login.unlocked")] == ["login.unlocked"]


def test_failed_sign_ins_are_throttled_per_client_address(site):
    sprayer = TestClient(site.client.app, client=("203.0.113.9", 40000))
    answers = [login(site, sprayer, user=f"user{i}", password="Spring2026!!").status_code for i in range(25)]
    assert answers == [401] * 20 + [429] * 5  # twenty names tried, then the address waits
    # the right password of a real account from that address waits too, and is not counted against
    # the account (a locked address cannot go on to lock the names it tries); from elsewhere it works
    assert login(site, sprayer).status_code == 429
    with session_scope() as session:
        assert rows(session, "select failures from login_throttle where kind = 'account' and key = 'safe-head'") == []
    assert login(site, TestClient(site.client.app, client=("198.51.100.7", 40000))).status_code == 303
    assert ("address", "203.0.113.9") in [(a.object_type, a.object_id) for a in audit_rows("login.locked")]
    result = CliRunner().invoke(cli_app, ["account", "unlock", "--address", "203.0.113.9"])
    assert result.exit_code == 0
    assert login(site, sprayer).status_code == 303


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_hand_in_and_review_round_trip(tmp_path, db_url, monkeypatch, catalog):
    site = open_site(tmp_path, monkeypatch, db_url, catalog)
    assert post(site).status_code == 303
    login(site, site.client)
    listing = site.client.get("/review")
    evidence_id = int(re.search(r'href="/review/(\d+)"', listing.text)[1])
    detail = site.client.get(f"/review/{evidence_id}")
    response = site.client.post(f"/review/{evidence_id}/accept", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert response.status_code == 303
    assert stored(site)["review"] == "accepted"
    assert "已通过" in site.client.get("/review?status=accepted").text


def test_no_secret_or_token_reaches_the_log(site, caplog):
    caplog.set_level(logging.DEBUG)
    post(site)
    post(site, files=[("x.exe", b"MZ")])
    login(site, site.client)
    cookie = site.client.cookies.get("pingan_session")
    login(site, site.client, password="wrong-" + PASSWORD)
    site.client.get("/review")
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))  # the test's client
    assert "POST /e/… 303" in text and "sign-in failed (password)" in text and "reviewer safe-head signed in" in text
    for secret in (SECRET, PASSWORD, site.token, site.token.split(".")[3], cookie):
        assert secret not in text


# --------------------------------------------------------------------------- files that are not what they say

@pytest.mark.parametrize("name", ["comment.jpg", "tail.pdf", "tail.docx"])
def test_a_polyglot_is_refused_and_nothing_is_stored(site, name):
    response = post(site, files=[(name, POLYGLOTS[name])])
    assert response.status_code == 415
    assert errors(response) == [f"文件「{name}」除 {name.rsplit('.', 1)[1].upper()} 内容外还夹带网页、脚本或宏，不能接受"]
    assert stored(site) == NOTHING


# --------------------------------------------------------------------------- failures people can live with

def test_a_storage_failure_shows_a_chinese_page_that_keeps_what_was_typed_and_writes_nothing(site):
    evidence_dir = site.rt.settings.evidence_dir
    evidence_dir.parent.mkdir(parents=True, exist_ok=True)
    evidence_dir.write_text("not a directory")  # the store cannot be written (even by root)
    response = post(site, files=[("纪要.pdf", PDF), ("签到表.jpg", JPEG)], fields={**FIELDS, "f_topics": "冬季防火与用电"})
    assert response.status_code == 503
    assert errors(response) == ["暂时无法保存：文件存储或数据库出现故障，本次没有保存任何内容。您填写的内容已保留，请稍后重新选择文件并提交。"]
    assert "冬季防火与用电" in response.text and "一小校长、一小安全主任，张老师" in response.text
    assert "Internal Server Error" not in response.text and 'id="hand-in"' in response.text
    with session_scope() as session:
        assert rows(session, "select count(*) from evidence")[0][0] == 0
        assert rows(session, "select count(*) from evidencefile")[0][0] == 0
        assert rows(session, "select count(*) from audit where action like 'evidence.%'")[0][0] == 0
        assert rows(session, "select review from occurrence where id = :id", id=site.task)[0][0] == "none"
    health = site.client.get("/healthz")
    assert health.status_code == 503 and health.text.startswith("evidence store: ")
    # once the store is back, the same form goes through
    evidence_dir.unlink()
    assert post(site).status_code == 303 and stored(site)["evidence"] == 1


def test_a_database_failure_keeps_what_was_typed_and_offers_to_send_it_again(site, tmp_path):
    csrf = site.csrf()
    web = site.client.app.state.web
    working = web.engine
    web.engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'gone.db'}")  # the database is down
    try:
        response = post(site, csrf=csrf, fields={**FIELDS, "f_topics": "寒假安全教育"})
        assert response.status_code == 503
        text = response.text
        assert "暂时无法保存" in text and "本次提交没有保存任何内容" in text and "寒假安全教育" in text
        assert "会议议题" in text and 'id="resend"' in text and f'action="{site.path}"' in text
        assert "Traceback" not in text and "OperationalError" not in text
        # any page that needs the database says so in Chinese, not "Internal Server Error"
        page = site.client.get(site.path)
        assert page.status_code == 503 and "数据库暂时无法使用" in page.text
        login_page = login(site, TestClient(site.client.app))
        assert login_page.status_code == 503 and "数据库暂时无法使用" in login_page.text
        health = site.client.get("/healthz")
        assert health.status_code == 503 and health.text == "database: OperationalError"
    finally:
        web.engine = working
    assert stored(site) == NOTHING
    # what the page kept is sent again as it stands (the files chosen again)
    resend = re.search(r'<form method="post" action="[^"]+" enctype="multipart/form-data" class="form" id="resend">'
                       r'(.*?)</form>', text, re.S)[1]
    again = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', resend))
    body, headers = multipart({k: html.unescape(v) for k, v in again.items()}, [("纪要.pdf", PDF)])
    assert site.client.post(site.path, content=body, headers=headers, follow_redirects=False).status_code == 303
    with session_scope() as session:
        fields = rows(session, "select fields from evidence")[0][0]
    assert (json.loads(fields) if isinstance(fields, str) else fields)["topics"] == "寒假安全教育"


def test_healthz_answers_ok_only_when_the_database_and_the_store_work(site):
    health = site.client.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok")


@pytest.mark.parametrize("path,status", [
    ("/review/abc", 404), ("/review/99999999999", 404), ("/review/-1", 404), ("/review/files/%00", 404),
    ("/review/1/accept", 405), ("/review?id=abc", 400), ("/review?n=1e9", 400), ("/review?status=" + "x" * 50, 400),
])
def test_bad_url_parameters_get_the_404_or_400_page_never_json(site, path, status):
    login(site, site.client)
    response = site.client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text and "detail" not in response.text and "abc" not in response.text


@pytest.mark.parametrize("query", ["?done=abc", "?done=-5", "?kind=" + "k" * 100])
def test_bad_hand_in_parameters_get_the_400_page(site, query):
    response = site.client.get(site.path + query)
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert "请求有误" in response.text and "abc" not in response.text


# --------------------------------------------------------------------------- the signing key

WEAK = [("", "未设置"), ("x", "不是十六进制或 base64"), ("changeme", "是占位符"), ("pingan-demo-secret", "是占位符"),
        ("0123456789abcdef" * 2, "只有 16 字节"), ("ab" * 32, "不是随机的"), ("demo-" + SECRET, "是演示密钥"),
        (f"{SECRET},short", "第 2 个")]


@pytest.mark.parametrize("key,why", WEAK, ids=[w for _, w in WEAK])
def test_it_refuses_a_weak_or_demo_signing_key_outside_demo_mode_in_one_line(catalog, key, why):
    rt = build_runtime(Settings(catalog_dir=catalog[0]), catalog[1])
    settings = rt.settings.model_copy(update={"demo": False, "secret_key": key})
    with pytest.raises(ValueError) as refused:
        create_app(runtime=build_runtime(settings, rt.catalog))
    message = str(refused.value)
    assert message.startswith("PINGAN_SECRET_KEY") and why in message and "\n" not in message
    assert len(key) < 8 or key.split(",")[-1] not in message  # never the key itself


def test_demo_mode_uses_a_random_key_of_its_own_that_never_verifies_outside_demo(catalog, tmp_path, pingan_home):
    rt = build_runtime(Settings(catalog_dir=catalog[0]), catalog[1])
    demo = rt.settings.model_copy(update={"demo": True, "secret_key": "pingan-demo-secret"})  # the old published key
    key = demo.signing_key
    assert key != b"pingan-demo-secret" and key.startswith(b"demo-") and len(key) == 5 + 64
    key_file = pingan_home / "demo-secret.key"
    assert key_file.read_text().strip().encode() == key and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert demo.model_copy().signing_key == key  # the same for every process of this home
    grant = sign(1, 2, at("2026-12-30"), key)
    from pingan.core.links import LinkError, verify

    assert verify(grant, demo.signing_keys, at("2026-11-12")).person_id == 2
    real = demo.model_copy(update={"demo": False, "secret_key": SECRET})
    with pytest.raises(LinkError):
        verify(grant, real.signing_keys, at("2026-11-12"))
    with pytest.raises(ValueError, match="是演示密钥"):
        demo.model_copy(update={"demo": False, "secret_key": key.decode()}).signing_keys


def test_signing_keys_rotate_the_first_signs_and_every_one_verifies(site):
    old = site.path
    new_key = "Zm9vYmFyLXJvdGF0ZWQta2V5LTIwMjYtMTEtc3VwZXItcmFuZG9tLXh5eg"  # base64, 43+ characters
    rotated = site.app(secret_key=f"{new_key},{SECRET}")
    assert rotated.get(old).status_code == 200  # a link sent before the rotation still opens
    assert rotated.app.state.web.settings.signing_key == new_key.encode()
    dropped = site.app(secret_key=new_key)
    assert dropped.get(old).status_code == 403  # dropped with the old key


# --------------------------------------------------------------------------- standalone

def test_python_m_pingan_web_serves_standalone_and_logs_its_url_not_its_key(tmp_path, sqlite_url, template_db):
    shutil.copy(template_db, tmp_path / "pingan.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_") or k.startswith("PINGAN_TEST_")}
    env.update(PINGAN_HOME=str(tmp_path / "home"), PINGAN_DATABASE_URL=sqlite_url, PINGAN_SECRET_KEY=SECRET,
               PYTHONUNBUFFERED="1")
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pingan.web", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.read() == b"ok"
                    break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/e/1.2.3.forged", timeout=5)
        assert refused.value.code == 403
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert f"evidence page serving on http://127.0.0.1:{port}" in text and "GET /e/… 403" in text
    assert SECRET not in text

    for key, why in (("", "PINGAN_SECRET_KEY 未设置"), ("x", "PINGAN_SECRET_KEY 不是十六进制或 base64")):
        env["PINGAN_SECRET_KEY"] = key
        refused = subprocess.run([sys.executable, "-m", "pingan.web", "--port", str(port)], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and why in refused.stderr and "Traceback" not in refused.stderr


def test_pingan_up_waits_on_healthz_and_names_what_is_down():
    """The main job's wait reads /healthz: 200 is ready, anything else is reported as answered."""
    import http.server
    import threading

    from pingan.cli.supervisor import health

    answers = [(503, b"database: OperationalError"), (200, b"ok")]

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, body = answers[0]
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/healthz"
        assert health(url) == "HTTP 503 database: OperationalError"
        answers.pop(0)
        assert health(url) is None
    finally:
        server.shutdown()
        server.server_close()
    assert health(url) is not None  # nobody listens any more
