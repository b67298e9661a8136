"""The evidence page through FastAPI's TestClient: the hand-in link from a real reminder, every bad
input (a clear message, nothing stored), refused links (403, no detail), CSRF, the operator's
review, and ``python -m pingan.web`` standalone.

SQLite unless a test says otherwise; one end-to-end test also runs on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from factories import at, make_catalog_dir, make_org, rows
from fastapi.testclient import TestClient
from test_evidence import DOCX, JPEG, MINUTES, PDF, PNG

from models import Occurrence
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
from pingan.web.auth import hash_password
from pingan.cli.supervisor import free_port

SECRET = "web-test-signing-key-5b1f0c9a"
PASSWORD = "审核-correct-horse-battery"
FIELDS = {f"f_{k}": v for k, v in MINUTES.items()}


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
    monkeypatch.setenv("PINGAN_OPERATOR_PASSWORD", hash_password(PASSWORD, iterations=1000))
    monkeypatch.delenv("PINGAN_DEMO")
    reset_settings()
    dispose_engines()
    sent: list = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    rt = build_runtime(Settings(catalog_dir=catalog[0], send_backoff=0), catalog[1])
    with session_scope() as session:
        ids = make_org(session)
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
                 'accept=".jpg,.jpeg,.png,.webp,.heic,.pdf,.doc,.docx,.xls,.xlsx"', "提交材料"):
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

def login(site: Site, client: TestClient, password: str = PASSWORD, user: str = "operator"):
    page = client.get("/login?next=/review")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    return client.post("/login", data={"csrf": csrf, "next": "/review", "user": user, "password": password},
                       follow_redirects=False)


def review_csrf(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


def test_the_review_page_is_behind_the_operator_login(site):
    response = site.client.get("/review/1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Freview%2F1"
    assert site.client.get("/review/files/1", follow_redirects=False).status_code == 303
    assert site.client.post("/review/1/accept", data={"csrf": "x"}, follow_redirects=False).status_code == 303
    bad = login(site, site.client, password="wrong")
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text
    assert login(site, site.client, user="root").status_code == 401
    page = site.client.get("/login")
    no_csrf = site.client.post("/login", data={"user": "operator", "password": PASSWORD}, follow_redirects=False)
    assert no_csrf.status_code == 403 and "pingan_operator" not in no_csrf.headers.get("set-cookie", "")
    assert PASSWORD not in page.text and SECRET not in page.text
    forged = TestClient(site.client.app, cookies={"pingan_operator": "b3BlcmF0b3I.9999999999." + "0" * 40})
    assert forged.get("/review", follow_redirects=False).status_code == 303
    ok = login(site, site.client)
    assert ok.status_code == 303 and ok.headers["location"] == "/review"
    assert "HttpOnly" in ok.headers["set-cookie"] and "SameSite=strict" in ok.headers["set-cookie"]
    assert site.client.get("/review").status_code == 200
    # an open redirect is not on offer
    page = site.client.get("/login?next=https://evil.example/")
    assert 'name="next" value="/review"' in page.text


def test_the_operator_views_files_rejects_with_a_reason_and_the_person_is_told(site):
    post(site, files=[("签到表.jpg", JPEG), ("纪要.docx", DOCX)])
    login(site, site.client)
    listing = site.client.get("/review")
    assert "学校安全形势分析会" in listing.text and "一小" in listing.text and "2 个文件" in listing.text
    evidence_id = int(re.search(r'href="/review/(\d+)"', listing.text)[1])
    detail = site.client.get(f"/review/{evidence_id}")
    assert "冬季防火" in detail.text and "一小校长、一小安全主任、张老师" in detail.text and "签到表.jpg" in detail.text
    file_ids = re.findall(r'href="/review/files/(\d+)"', detail.text)
    image = site.client.get(f"/review/files/{file_ids[0]}")
    assert image.content == JPEG and image.headers["content-type"] == "image/jpeg"
    assert image.headers["content-disposition"].startswith("inline;") and image.headers["x-content-type-options"] == "nosniff"
    word = site.client.get(f"/review/files/{file_ids[1]}")
    assert word.content == DOCX and word.headers["content-disposition"].startswith("attachment;")
    assert "%E7%BA%AA%E8%A6%81.docx" in word.headers["content-disposition"]
    assert site.client.get("/review/files/999").status_code == 404

    no_csrf = site.client.post(f"/review/{evidence_id}/reject", data={"reason": "不清晰"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    no_reason = site.client.post(f"/review/{evidence_id}/reject", data={"csrf": review_csrf(detail), "reason": " "},
                                 follow_redirects=False)
    assert no_reason.status_code == 400 and "退回必须填写理由" in no_reason.text
    assert stored(site)["review"] == "submitted"

    site.clock.moment = at("2026-11-13")
    done = site.client.post(f"/review/{evidence_id}/reject", data={"csrf": review_csrf(detail), "reason": "缺少签到表照片"},
                            follow_redirects=False)
    assert done.status_code == 303
    assert f"材料 #{evidence_id} 已退回，已通知 2 人" in site.client.get(done.headers["location"]).text
    assert stored(site)["review"] == "rejected"
    again = site.client.post(f"/review/{evidence_id}/accept", data={"csrf": review_csrf(detail)}, follow_redirects=False)
    assert again.status_code == 409 and "已审核" in again.text
    with session_scope() as session:
        notices = rows(session, "select person_id, kind, payload from notice where kind = 'review' order by person_id")
        audit = rows(session, "select actor, action from audit where action = 'evidence.rejected'")
    assert [n.person_id for n in notices] == sorted([site.ids["s1-head"], site.ids["s1-safe"]])
    payload = notices[0].payload if isinstance(notices[0].payload, dict) else json.loads(notices[0].payload)
    assert payload["reason"] == "缺少签到表照片" and audit == [("operator:operator", "evidence.rejected")]
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
    login(site, site.client, password="wrong-" + PASSWORD)
    site.client.get("/review")
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))  # the test's client
    assert "POST /e/… 303" in text and "operator login failed" in text
    for secret in (SECRET, PASSWORD, site.token, site.token.split(".")[3]):
        assert secret not in text


# --------------------------------------------------------------------------- refusing to start

def test_it_refuses_placeholder_secrets_outside_demo_mode(catalog):
    rt = build_runtime(Settings(catalog_dir=catalog[0]), catalog[1])
    for secret, password, needle in (("", "a-real-password", "PINGAN_SECRET_KEY"),
                                     ("changeme", "a-real-password", "PINGAN_SECRET_KEY"),
                                     ("a-real-key", "", "PINGAN_OPERATOR_PASSWORD"),
                                     ("a-real-key", "pingan-demo", "PINGAN_OPERATOR_PASSWORD")):
        settings = rt.settings.model_copy(update={"demo": False, "secret_key": secret, "operator_password": password})
        with pytest.raises(ValueError, match=needle):
            create_app(runtime=build_runtime(settings, rt.catalog))
    demo = rt.settings.model_copy(update={"demo": True, "secret_key": "", "operator_password": ""})
    assert create_app(runtime=build_runtime(demo, rt.catalog)) is not None




def test_python_m_pingan_web_serves_standalone_and_logs_its_url_not_its_key(tmp_path, sqlite_url, template_db):
    shutil.copy(template_db, tmp_path / "pingan.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_") or k.startswith("PINGAN_TEST_")}
    env.update(PINGAN_HOME=str(tmp_path / "home"), PINGAN_DATABASE_URL=sqlite_url, PINGAN_SECRET_KEY=SECRET,
               PINGAN_OPERATOR_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
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
    assert SECRET not in text and PASSWORD not in text

    env.pop("PINGAN_SECRET_KEY")
    refused = subprocess.run([sys.executable, "-m", "pingan.web", "--port", str(port)], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "PINGAN_SECRET_KEY is unset or a placeholder" in refused.stderr
