"""Evidence without the web: checking a hand-in, immutable storage, versions, review and what it
does to the next duty cycle — on SQLite and PostgreSQL — and ``pingan evidence …``.

The sample files below (one of each accepted type, and impostors) are shared with test_web and
test_browser.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import pytest
import sqlalchemy as sa
from factories import at, image, make_org, make_runtime, rows
from typer.testing import CliRunner

from models import Occurrence
from pingan.delivery.workflow import dispatch
from pingan.duties.workflow import cycle
from pingan.evidence import service as ev
from pingan.evidence import files as evfiles
from pingan.delivery import transports
from pingan.cli import app
from pingan.core.db import session_scope
from pingan.duties.runtime import reset_runtime
from pingan.core.settings import reset_settings
from pingan.delivery.transports import Outcome

# --------------------------------------------------------------------------- sample files

def _pdf(*, js: bool = False, password: str | None = None, pages: int = 1) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(200, 200)
    if js:
        from pypdf.actions import JavaScript

        writer.add_open_action(JavaScript("app.alert('hello');"))
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _zip(names: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in names.items():
            z.writestr(name, text)
    return buffer.getvalue()


CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 '<Default Extension="xml" ContentType="application/xml"/>'
                 '<Override PartName="/word/document.xml" ContentType="{main}"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
        ' Target="word/document.xml"/></Relationships>')
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def _docx(main: str = WORD_MAIN, **extra) -> bytes:
    return _zip({"[Content_Types].xml": CONTENT_TYPES.format(main=main), "_rels/.rels": RELS,
                 "word/document.xml": '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                                      "<w:body><w:p><w:r><w:t>会议纪要</w:t></w:r></w:p></w:body></w:document>", **extra})


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import zlib

    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["签到", "一小校长"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# Real files of every accepted type, as a phone or an office program writes them.
JPEG = image("JPEG", quality=85)
PNG = image("PNG")
WEBP = image("WEBP")
PDF = _pdf()
DOCX = _docx()
XLSX = _xlsx()
GOOD = {"a.jpg": JPEG, "b.jpeg": JPEG, "c.png": PNG, "d.webp": WEBP, "f.pdf": PDF, "i.docx": DOCX, "j.xlsx": XLSX}
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
IMPOSTORS = {  # the name promises one type, the content is another (or is not whole)
    "photo.jpg": b"MZ\x90\x00" + bytes(200),  # a Windows program
    "magic.jpg": b"\xff\xd8\xff\xe0" + bytes(300),  # JPEG's first bytes, nothing behind them
    "half.jpg": JPEG[: len(JPEG) // 2],  # a photo cut short
    "scan.pdf": HTML,
    "junk.pdf": b"%PDF-1.4\n" + bytes(500) + b"\n%%EOF\n",  # a PDF header and nothing a reader can parse
    "late.pdf": HTML[:100] + PDF,  # %PDF- in the first kilobyte, but not at its start
    "minutes.docx": XLSX,  # a workbook is not a Word file
    "sheet.xlsx": _zip({"evil.sh": "rm -rf /"}),  # a zip, but not Office
    "types.docx": _zip({"[Content_Types].xml": CONTENT_TYPES.format(main=WORD_MAIN), "_rels/.rels": RELS}),  # no main part
    "macro.docx": _docx("application/vnd.ms-word.document.macroEnabled.main+xml"),  # a .docm renamed
    "picture.png": JPEG,
    "drawing.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
}
POLYGLOTS = {  # really the type their name says, and a web page or a script besides
    "comment.jpg": JPEG[:2] + b"\xff\xfe" + (len(HTML) + 2).to_bytes(2, "big") + HTML + JPEG[2:],  # HTML in a JPEG comment
    "tail.jpg": JPEG + HTML,  # HTML after the end of the image
    "text.png": PNG[:33] + _png_chunk(b"tEXt", b"Comment\x00" + HTML) + PNG[33:],  # HTML in a PNG text chunk
    "script.pdf": _pdf(js=True),  # JavaScript that runs when the PDF opens
    "tail.pdf": PDF + HTML,
    "vba.docx": _docx(**{"word/vbaProject.bin": b"\xd0\xcf\x11\xe0 macros"}),
    "tail.docx": DOCX + HTML,
}
MINUTES = {"date": "2026-11-11", "attendees": "一小校长、一小安全主任，张老师", "topics": "冬季防火", "decisions": "安全主任负责，11月20日前完成检查"}


# --------------------------------------------------------------------------- pure checks

@pytest.fixture
def rt(tmp_path):
    return make_runtime(tmp_path)


@pytest.fixture
def limits(rt):
    return evfiles.Limits.of(rt.settings)


def check(rt, limits, files=(), fields=MINUTES, note=None, kind="meeting_minutes", duty="school-meeting"):
    uploads = [evfiles.Upload.of(name, data) for name, data in files]
    return ev.check_hand_in(rt.catalog.duty(duty), rt.catalog.evidence_kinds, kind, fields, note, uploads, limits)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_it_accepts_each_allowed_type_by_its_content(rt, limits, name):
    checked = check(rt, limits, [(name, GOOD[name])])
    assert checked.files[0].content_type == evfiles.TYPES[name.rsplit(".", 1)[1]][1]


@pytest.mark.parametrize("name", sorted(IMPOSTORS))
def test_it_refuses_a_file_whose_content_is_not_what_its_name_says(rt, limits, name):
    with pytest.raises(evfiles.EvidenceError) as exc:
        check(rt, limits, [(name, IMPOSTORS[name])])
    ext = name.rsplit(".", 1)[1].upper()
    assert exc.value.status == 415 and exc.value.messages == [f"文件「{name}」的内容不是 {ext} 文件"]


@pytest.mark.parametrize("name", sorted(POLYGLOTS))
def test_it_refuses_a_real_file_that_carries_a_web_page_or_a_script_besides(rt, limits, name):
    ext = name.rsplit(".", 1)[1]
    # the polyglot is still a file of its type: decoded, parsed or opened like the good one ...
    if ext in ("jpg", "png"):
        from PIL import Image

        with Image.open(io.BytesIO(POLYGLOTS[name])) as image:
            image.load()
            assert image.size == (48, 32)
    with pytest.raises(evfiles.EvidenceError) as exc:
        check(rt, limits, [(name, POLYGLOTS[name])])
    # ... and refused for what it carries besides
    assert exc.value.status == 415
    assert exc.value.messages == [f"文件「{name}」除 {ext.upper()} 内容外还夹带网页、脚本或宏，不能接受"]


def test_it_refuses_a_password_protected_pdf(rt, limits):
    with pytest.raises(evfiles.EvidenceError, match="设有密码") as exc:
        check(rt, limits, [("locked.pdf", _pdf(password="1234"))])
    assert exc.value.status == 415


def test_it_accepts_a_multi_page_pdf_a_progressive_jpeg_and_a_photo_with_exif(rt, limits):
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "HUAWEI"  # Make
    exif[0x0110] = "ELS-AN00 <phone>"  # Model: angle brackets alone are no markup
    files = {"long.pdf": _pdf(pages=30), "progressive.jpg": image("JPEG", progressive=True, quality=90),
             "exif.jpg": image("JPEG", exif=exif)}
    checked = check(rt, limits, list(files.items()))
    assert [f.content_type for f in checked.files] == ["application/pdf", "image/jpeg", "image/jpeg"]
    exif[0x0110] = '<script src="//evil.example/x.js"></script>'  # metadata is where polyglots hide markup
    with pytest.raises(evfiles.EvidenceError, match="夹带网页"):
        check(rt, limits, [("exif-script.jpg", image("JPEG", exif=exif))])


@pytest.mark.parametrize("name", ["setup.exe", "notes.txt", "page.html", "README", "photo.gif", "photo.heic",
                                  "old.doc", "old.xls", "macro.docm", "drawing.svg"])
def test_it_refuses_types_not_allowed(rt, limits, name):
    with pytest.raises(evfiles.EvidenceError, match="不允许") as exc:
        check(rt, limits, [(name, JPEG)])
    assert exc.value.status == 415


@pytest.mark.parametrize("name", ["../纪要.pdf", "a/b.pdf", "C:\\Users\\x\\纪要.pdf", "..", "纪要\x00.pdf", "纪要\n.pdf",
                                  "\u202efdp.exe", "bad\x7f.pdf", ""])
def test_it_refuses_file_names_with_path_parts_or_control_characters(name):
    with pytest.raises(evfiles.EvidenceError, match="文件名"):
        evfiles.check_filename(name)


def test_it_keeps_ordinary_chinese_file_names():
    assert evfiles.check_filename(" 11月 安全会议纪要（定稿）.pdf ") == "11月 安全会议纪要（定稿）.pdf"


def test_it_names_every_missing_or_malformed_field_at_once(rt, limits):
    fields = {"date": "2026-13-45", "attendees": "", "topics": "x" * 6000, "decisions": "ok"}
    with pytest.raises(evfiles.EvidenceError) as exc:
        check(rt, limits, [("a.pdf", PDF)], fields)
    assert exc.value.messages == ["「会议日期」应为日期，如 2026-11-23", "「参会人员」为必填项", "「会议议题」过长（最多 5000 字）"]


def test_it_cleans_typed_fields(rt, limits):
    fields = {"theme": " 消防疏散 ", "date": "2026-11-11", "participants": "860", "duration": "12", "evaluation": "良好"}
    checked = check(rt, limits, [("a.jpg", JPEG)], fields, kind="drill_record", duty="kindergarten-drill")
    assert checked.fields == {"theme": "消防疏散", "date": "2026-11-11", "participants": 860, "duration": 12, "evaluation": "良好"}
    assert check(rt, limits, [("a.pdf", PDF)]).fields["attendees"] == ["一小校长", "一小安全主任", "张老师"]
    for bad in ("-3", "abc", "0"):
        with pytest.raises(evfiles.EvidenceError, match="用时"):
            check(rt, limits, [("a.jpg", JPEG)], {**fields, "duration": bad}, kind="drill_record", duty="kindergarten-drill")


def test_it_refuses_empty_submissions_missing_files_and_foreign_kinds(rt, limits):
    with pytest.raises(evfiles.EvidenceError, match="没有提交任何内容"):
        check(rt, limits, [], {k: " " for k in MINUTES}, note="  ")
    with pytest.raises(evfiles.EvidenceError, match="请至少上传 1 个文件"):
        check(rt, limits, [])
    with pytest.raises(evfiles.EvidenceError, match="是空文件"):
        check(rt, limits, [("a.pdf", b"")])
    with pytest.raises(evfiles.EvidenceError, match="不接受这类材料"):
        check(rt, limits, [("a.pdf", PDF)], kind="drill_record")
    # a file input left empty sends a nameless, empty part: it is no file, not an error
    assert len(check(rt, limits, [("", b""), ("a.pdf", PDF)]).files) == 1


def test_it_enforces_the_size_and_count_limits(rt):
    n = len(PDF)
    limits = evfiles.Limits(max_file=n + 1000, max_total=2 * n + 1500, max_files=3, types=("pdf",))
    big = PDF + b"0" * 1001
    with pytest.raises(evfiles.EvidenceError, match="过大") as exc:
        check(rt, limits, [("big.pdf", big)])
    assert exc.value.status == 413
    assert len(check(rt, limits, [("a.pdf", PDF + b"1" * 700), ("b.pdf", PDF + b"2" * 700)]).files) == 2
    with pytest.raises(evfiles.EvidenceError, match="合计过大"):
        check(rt, limits, [("a.pdf", PDF + b"1" * 800), ("b.pdf", PDF + b"2" * 800)])
    with pytest.raises(evfiles.EvidenceError, match="文件过多"):
        check(rt, limits, [(f"{i}.pdf", PDF) for i in range(4)])


def test_limits_come_from_settings(tmp_path):
    rt = make_runtime(tmp_path, evidence_max_file_mb=0.5, evidence_max_files=2, evidence_types=("PDF", ".jpg", "exe"))
    assert evfiles.Limits.of(rt.settings) == evfiles.Limits(max_file=500_000, max_total=60_000_000, max_files=2, types=("pdf", "jpg"))


def test_it_stores_files_by_content_read_only_and_never_overwrites(tmp_path, rt, limits):
    first = check(rt, limits, [("a.pdf", PDF), ("again.pdf", PDF), ("c.png", PNG)]).files
    paths = [evfiles.store_file(tmp_path / "evidence", f) for f in first]
    assert paths[0] == paths[1] == tmp_path / "evidence" / first[0].sha256[:2] / first[0].sha256
    assert paths[0].read_bytes() == PDF and evfiles.file_digest(paths[2]) == first[2].sha256
    assert not os.stat(paths[0]).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    before = os.stat(paths[0]).st_mtime_ns
    evfiles.store_file(tmp_path / "evidence", first[0])
    assert os.stat(paths[0]).st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "evidence").rglob("*") if p.is_file()) == sorted({f.sha256 for f in first})


# --------------------------------------------------------------------------- with a database

@pytest.fixture
def db(tmp_path, migrated_db, monkeypatch):
    """The test organisation, the school meeting planned and reminded on 10 November."""
    sent = []
    monkeypatch.setattr(transports, "deliver", lambda url, title, body, *, timeout: sent.append((url, body)) or Outcome(ok=True))
    rt = make_runtime(tmp_path, send_backoff=0)
    with session_scope() as session:
        ids = make_org(session)
    cycle(rt, "school-meeting", at("2026-11-10"))
    dispatch(rt, at("2026-11-10"))
    with session_scope() as session:
        task = session.scalar(sa.select(Occurrence.id).where(Occurrence.unit_id == ids["S1"], Occurrence.duty_key == "school-meeting"))
    sent.clear()
    return rt, ids, task, sent


def submit(rt, task_id, person_id, files=(("纪要.pdf", PDF),), fields=MINUTES, as_of=None):
    limits = evfiles.Limits.of(rt.settings)
    with session_scope() as session:
        task = ev.load_task(session, rt, task_id)
        person = ev.may_hand_in(session, rt, task, person_id)
        checked = ev.check_hand_in(task.duty, rt.catalog.evidence_kinds, "meeting_minutes", fields, "见附件",
                                   [evfiles.Upload.of(n, d) for n, d in files], limits)
        return ev.hand_in(session, rt, task=task, person=person, checked=checked, as_of=as_of or at("2026-11-12")).id


def decide(rt, evidence_id, accept, reason=None, as_of=None):
    with session_scope() as session:
        return ev.review(session, rt, evidence_id=evidence_id, accept=accept, reason=reason, actor="operator:王科长",
                         as_of=as_of or at("2026-11-13"))


def review_state(task_id):
    with session_scope() as session:
        return rows(session, "select review, closed_at from occurrence where id = :id", id=task_id)[0]


def test_only_people_reminded_of_or_responsible_for_a_task_may_hand_it_in(db):
    rt, ids, task, _ = db
    with session_scope() as session:
        t = ev.load_task(session, rt, task)
        assert ev.may_hand_in(session, rt, t, ids["s1-head"]).code == "s1-head"
        assert ev.may_hand_in(session, rt, t, ids["s1-safe"]).code == "s1-safe"
        assert ev.may_hand_in(session, rt, t, ids["s2-head"]) is None  # another school's principal
        assert ev.may_hand_in(session, rt, t, 9999) is None
        session.execute(sa.text("update person set active = :f where code = 's1-safe'"), {"f": False})
        assert ev.may_hand_in(session, rt, t, ids["s1-safe"]) is None
        assert ev.load_task(session, rt, 9999) is None


def test_a_second_hand_in_is_a_new_version_and_every_hand_in_is_audited(db):
    rt, ids, task, _ = db
    first = submit(rt, task, ids["s1-head"])
    second = submit(rt, task, ids["s1-safe"], files=[("照片.jpg", JPEG), ("纪要.pdf", PDF)], as_of=at("2026-11-12", "11:00"))
    with session_scope() as session:
        versions = rows(session, "select id, version, person_id, status from evidence order by version")
        files = rows(session, "select evidence_id, filename, sha256, size from evidencefile order by id")
        audit = rows(session, "select actor, action, object_id from audit where action like 'evidence.%' order by id")
    assert versions == [(first, 1, ids["s1-head"], "submitted"), (second, 2, ids["s1-safe"], "submitted")]
    assert [(f.evidence_id, f.filename) for f in files] == [(first, "纪要.pdf"), (second, "照片.jpg"), (second, "纪要.pdf")]
    assert files[0].sha256 == files[2].sha256  # same content, one stored file
    assert len({p for p in (rt.settings.evidence_dir).rglob("*") if p.is_file()}) == 2
    assert audit == [("person:s1-head", "evidence.submitted", str(first)), ("person:s1-safe", "evidence.submitted", str(second))]
    assert review_state(task).review == "submitted"
    with session_scope() as session:
        listed = ev.list_evidence(session, rt)
        detail = ev.evidence_detail(session, rt, second)
    assert [r.id for r in listed] == [second]  # the superseded version is not up for review
    assert [v.version for v in detail.versions] == [2, 1]
    assert ("参会人员", "一小校长、一小安全主任、张老师") in detail.fields and detail.note == "见附件"
    with pytest.raises(evfiles.EvidenceError, match="已被第 2 版"):
        decide(rt, first, True)


def test_accepting_closes_the_task_so_the_cycle_stops_reminding_and_escalating(db):
    rt, ids, task, sent = db
    evidence_id = submit(rt, task, ids["s1-head"])
    outcome = decide(rt, evidence_id, True)
    assert outcome.status == "accepted" and outcome.notified == []
    state = review_state(task)
    assert state.review == "accepted" and state.closed_at is not None
    for day in ("2026-11-23", "2026-11-30", "2026-12-02", "2026-12-07", "2026-12-21"):
        cycle(rt, "school-meeting", at(day))
        dispatch(rt, at(day))
    with session_scope() as session:
        escalations = rows(session, "select count(*) from escalation where occurrence_id = :id", id=task)[0][0]
        reminders = rows(session, "select step from notice where occurrence_id = :id order by id", id=task)
        audit = rows(session, "select actor, detail from audit where action = 'evidence.accepted'")
    assert escalations == 0 and [r.step for r in reminders] == ["open", "open"]
    assert not any("一小 · 2026-11" in body for _, body in sent)  # (December's task has its own reminders)
    assert audit[0].actor == "operator:王科长"
    with pytest.raises(evfiles.EvidenceError, match="已审核通过"):
        submit(rt, task, ids["s1-head"])
    with pytest.raises(evfiles.EvidenceError, match="已审核"):
        decide(rt, evidence_id, False, "again")


def test_rejecting_tells_the_people_why_and_escalation_goes_on_until_a_new_version(db):
    rt, ids, task, sent = db
    evidence_id = submit(rt, task, ids["s1-head"])
    with pytest.raises(evfiles.EvidenceError, match="退回必须填写理由"):
        decide(rt, evidence_id, False, "  ")
    outcome = decide(rt, evidence_id, False, "缺少参会人员签到表")
    assert outcome.status == "rejected" and sorted(outcome.notified) == sorted([ids["s1-head"], ids["s1-safe"]])
    assert review_state(task).review == "rejected"
    report = dispatch(rt, at("2026-11-13"))
    assert report.sent == 2
    body = next(b for url, b in sent if url.endswith("/s1-head"))
    assert "【材料退回】" in body and "缺少参会人员签到表" in body and "/e/" in body
    # past due + grace and 3 days more: level 1 (the principal is the assignee) and level 2 (包保 副局长乙)
    cycle(rt, "school-meeting", at("2026-12-07"))
    with session_scope() as session:
        fired = rows(session, "select level, reason, recipients from escalation where occurrence_id = :id order by level", id=task)
    assert [(f.level, f.reason) for f in fired] == [(1, "rejected"), (2, "rejected")]
    recipients = fired[1].recipients
    assert (json.loads(recipients) if isinstance(recipients, str) else recipients) == [ids["dep-b"]]
    # a new version stops the clock again
    second = submit(rt, task, ids["s1-head"], as_of=at("2026-12-07", "11:00"))
    cycle(rt, "school-meeting", at("2026-12-21"))
    with session_scope() as session:
        assert rows(session, "select count(*) from escalation where occurrence_id = :id", id=task)[0][0] == 2
    decide(rt, second, True, as_of=at("2026-12-08"))
    assert review_state(task).review == "accepted"


def test_review_errors_name_the_problem(db):
    rt, ids, task, _ = db
    with pytest.raises(evfiles.EvidenceError, match="没有编号为 404 的材料"):
        decide(rt, 404, True)
    evidence_id = submit(rt, task, ids["s1-head"])
    with pytest.raises(evfiles.EvidenceError, match="过长"):
        decide(rt, evidence_id, False, "长" * 3000)
    assert review_state(task).review == "submitted"


# --------------------------------------------------------------------------- the CLI

runner = CliRunner()


@pytest.fixture
def cli_db(db, monkeypatch):
    rt, ids, task, sent = db
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(rt.settings.catalog_dir))  # the CLI builds its own runtime
    reset_settings()
    reset_runtime()
    return db


def test_cli_lists_shows_accepts_and_rejects(cli_db):
    rt, ids, task, sent = cli_db
    first = submit(rt, task, ids["s1-head"])
    result = runner.invoke(app, ["evidence", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(r["id"], r["unit"], r["status"], r["files"]) for r in listed] == [(first, "一小", "submitted", 1)]

    result = runner.invoke(app, ["evidence", "show", str(first), "--json"])
    shown = json.loads(result.output)
    assert shown["fields"]["会议日期"] == "2026-11-11" and shown["files"][0]["name"] == "纪要.pdf"
    assert os.path.isfile(shown["files"][0]["path"])

    result = runner.invoke(app, ["evidence", "reject", str(first), "--as-of", "2026-11-13T10:00"])
    assert result.exit_code == 2 and "--reason" in result.output
    result = runner.invoke(app, ["evidence", "reject", str(first), "--reason", "照片不清晰", "--as-of", "2026-11-13T10:00"])
    assert result.exit_code == 0, result.output
    assert "已退回" in result.output and "已通知 2 人" in result.output and "发送 2" in result.output
    assert any("照片不清晰" in body for _, body in sent)

    second = submit(rt, task, ids["s1-safe"], as_of=at("2026-11-14"))
    result = runner.invoke(app, ["evidence", "accept", str(second), "--by", "李四", "--as-of", "2026-11-16T09:00"])
    assert result.exit_code == 0 and "已通过" in result.output
    result = runner.invoke(app, ["evidence", "accept", str(second)])
    assert result.exit_code == 2 and "已审核" in result.output
    result = runner.invoke(app, ["evidence", "show", "999"])
    assert result.exit_code == 2 and "没有编号为 999 的材料" in result.output
    result = runner.invoke(app, ["evidence", "list", "--status", "all"])
    assert result.exit_code == 0 and "一小" in result.output
    result = runner.invoke(app, ["evidence", "list", "--status", "maybe"])
    assert result.exit_code == 2
    with session_scope() as session:
        assert rows(session, "select actor from audit where action = 'evidence.accepted'") == [("operator:李四",)]
