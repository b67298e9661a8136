"""The hazard closed loop (排查 → 整改 → 核验 → 销号), its data file, deadlines, escalation,
platform uploads, the CLI, the deployment and the daily watch replayed over two months.

Transports are replaced by a recorder; the tests patch only ``pingan.delivery.transports.deliver``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import yaml
from factories import Recorder, at, make_org, rows
from test_evidence import JPEG, PNG  # real photos: every file is decoded before it is taken

import models
from models import Evidence, Occurrence
from pingan.duties.workflow import cycle
from pingan.hazards import rules, views
from pingan.hazards import service as hazards
from pingan.delivery import transports
from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import load_catalog
from pingan.core.db import session_scope
from pingan.evidence.files import Upload
from pingan.hazards.rules import Deadline, HazardCatalogError, HazardError, deadline_after, load_hazard_config
from pingan.hazards.workflow import WATCH
from pingan.delivery.workflow import dispatch
from pingan.core.clock import TZ
from pingan.duties.runtime import get_runtime
from pingan.core.settings import REPO_ROOT

CATALOG = REPO_ROOT / "catalog"
SEEDS = REPO_ROOT / "catalog" / "sources"
HALF_MONTHLY = "school-half-monthly-hazard-check"


@pytest.fixture
def sent(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(transports, "deliver", recorder)
    return recorder


@pytest.fixture
def rt(migrated_db, sent):
    return get_runtime()


@pytest.fixture
def ids(migrated_db):
    with session_scope() as session:
        return make_org(session)


def codes(ids: dict[str, int], person_ids) -> list[str]:
    back = {v: k for k, v in ids.items() if not k.isupper()}
    return sorted(back[p] for p in person_ids)


def act(rt, work, as_of):
    """An action, then the dispatcher at ``as_of`` (as the CLI and the page do)."""
    out = hazards.act(rt, work)
    dispatch(rt, as_of)
    return out


def watch(rt, as_of):
    """The daily hazard watch in this process: its steps (each its own transaction), then the dispatcher."""
    steps = WATCH.run(rt, as_of=as_of)
    report = dispatch(rt, as_of)
    return SimpleNamespace(**{**steps["advance"], **steps["remind"], **steps["escalate"], "sent": report.sent,
                              "failed": report.failed})


def report(rt, ids, *, unit="S1", level="general", rectifier="s1-safe", by="s1-head", as_of=at("2026-09-07"), **kw):
    return act(rt, lambda s, org: hazards.report(
        s, rt, org, unit_id=ids[unit], place=kw.pop("place", "教学楼三楼东侧"), description=kw.pop("description", "消防通道堆放杂物"),
        level=level, rectifier_id=ids[rectifier], reporter_id=ids[by], actor=f"person:{by}", as_of=as_of, **kw), as_of)


def hazard_row(hazard_id: int):
    with session_scope() as session:
        return hazards.load(session, hazard_id)


def table_counts(session) -> dict[str, int]:
    return {t: session.scalar(sa.text(f"select count(*) from {t}"))
            for t in ("hazard", "hazard_event", "hazard_file", "notice", "audit", "platform_upload", "risk_check")}


# =========================================================================== the data file

def test_it_quotes_its_sources_verbatim_and_cites_the_checks_as_the_catalog_does():
    catalog = load_catalog(CATALOG)
    cfg = load_hazard_config(CATALOG / "hazards.yaml", catalog)
    for key, quote in cfg.data.sources.items():
        document = re.sub(r"\s+", "", (SEEDS / quote.document).read_text(encoding="utf-8"))
        assert re.sub(r"\s+", "", quote.text) in document, key
    assert cfg.data.sources["risk_register"].clause == "4" and "290" in cfg.data.sources["risk_register"].text
    assert "销号" in cfg.data.sources["closed_loop"].text
    refs = {r.duty: (r.document, r.clause) for r in cfg.data.half_monthly_checks.duties}
    assert refs == {HALF_MONTHLY: ("000_835012ae156b196b.txt", "七（四）"),
                    "erdao-school-half-monthly-hazard-check": ("002_8ab6cc7abff1c59e.txt", "5")}
    for key, (document, clause) in refs.items():
        assert (catalog.duty(key).source.document, catalog.duty(key).source.clause) == (document, clause)
    # The enabled twin first: it is the one that has tasks in the shipped installation.
    assert cfg.upload_duties[0] == HALF_MONTHLY
    # Red weekly … blue each semester; the risk-check duties are never planned by the duty cycle.
    assert {lvl.value: d.cadence.every for lvl, d in cfg.check_duties.items()} == {
        "major": "weekly", "high": "half_monthly", "general": "monthly", "low": "semester"}
    assert {s.color for s in cfg.risk_levels.values()} == {"red", "orange", "yellow", "blue"}
    assert not any(d.planned for d in cfg.check_duties.values())
    assert len(cfg.data.risk_template) >= 30 and {p.category for p in cfg.data.risk_template} == set(cfg.data.categories)


def test_the_duty_catalog_does_not_read_the_hazard_data_as_a_document():
    catalog = load_catalog(CATALOG)
    assert not any(key.startswith("risk-check") for key in catalog.duties)
    assert len(catalog.documents) == 2


BAD_FILES = [
    (lambda d: d["risk_levels"]["major"]["check"].update(every="fortnightly"),
     r"hazards\.yaml: risk_levels 'major' \(line \d+\): field check\.every: Input should be 'daily'"),
    (lambda d: d["hazard_levels"]["major"].update(escalation="nope"),
     r"hazards\.yaml: hazard_levels 'major' \(line \d+\): field escalation: unknown escalation policy 'nope'"),
    (lambda d: d["hazard_levels"]["general"]["deadline"].update(time=1050),
     r"hazards\.yaml: hazard_levels 'general' \(line \d+\): field deadline\.time: write the time in quotes"),
    (lambda d: d["half_monthly_checks"]["duties"][0].update(clause="七（五）"),
     r"half_monthly_checks\.duties entry 1: field clause: the catalog cites 'school-half-monthly-hazard-check' as "
     r"000_835012ae156b196b\.txt 七（四）"),
    (lambda d: d["half_monthly_checks"]["duties"][1].update(duty="no-such-duty"),
     r"half_monthly_checks\.duties entry 2: field duty: no duty 'no-such-duty'"),
    (lambda d: d["risk_template"][4].update(level="purple"),
     r"hazards\.yaml: risk_template entry 5 \(line \d+\): field level: Input should be 'major'"),
    (lambda d: d["hazard_levels"]["general"].update(reminders=[{"before_due": "2d"}, {"before_due": "48h"}]),
     r"hazard_levels 'general' \(line \d+\): field reminders: reminders repeat a step: \['due-2d', 'due-2d'\]"),
    (lambda d: d["hazard_levels"].pop("major"), r"hazards\.yaml: hazard_levels must define major"),
]


@pytest.mark.parametrize("change,message", BAD_FILES)
def test_it_names_file_entry_and_field_of_a_bad_hazard_file(tmp_path, change, message):
    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG, directory)
    path = directory / "hazards.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(HazardCatalogError, match=message):
        load_hazard_config(path, load_catalog(directory))


# =========================================================================== deadlines by level

CAL = WorkCalendar()  # chinese-calendar: 2026 has 20 Sep and 10 Oct as make-up working days


@pytest.mark.parametrize("level,found,deadline", [
    # 5 working days: 8, 9, 10 (Saturday, a make-up working day), 12 and 13 October.
    ("general", "2026-09-30T16:00", "2026-10-13T17:30"),
    # 20 Sep (Sunday) is a working day; 25 Sep (Mid-autumn) is not.
    ("general", "2026-09-18T10:00", "2026-09-24T17:30"),
    ("general", "2026-09-22T10:00", "2026-09-30T17:30"),
    # 30 calendar days, moved off the National Day holiday to the next working day.
    ("major", "2026-09-01T10:00", "2026-10-08T17:30"),
    ("major", "2026-09-30T10:00", "2026-10-30T17:30"),
    ("major", "2026-10-03T10:00", "2026-11-02T17:30"),  # 2 Nov is a Monday
])
def test_it_sets_the_deadline_by_level_on_the_work_calendar(level, found, deadline):
    cfg = load_hazard_config(CATALOG / "hazards.yaml", load_catalog(CATALOG))
    rule = cfg.hazard_levels[models.hazard.HazardLevel(level)].deadline
    start = dt.datetime.fromisoformat(found).replace(tzinfo=TZ)
    assert deadline_after(start, rule, CAL) == dt.datetime.fromisoformat(deadline).replace(tzinfo=TZ)


def test_it_counts_calendar_days_when_the_data_says_so_and_follows_a_local_holiday_file(tmp_path):
    start = dt.datetime(2027, 2, 1, 10, tzinfo=TZ)
    local = tmp_path / "holidays.yaml"
    local.write_text("years: [2027]\nholidays:\n  - {name: 春节, from: 2027-02-06, to: 2027-02-12}\nworkdays: [2027-02-14]\n",
                     encoding="utf-8")
    cal = WorkCalendar.from_file(local)
    # working days: 2, 3, 4, 5 Feb, then the make-up Sunday 14 Feb (holiday 6–12 and the 13th off)
    assert deadline_after(start, Deadline(days=5, count="working_days"), cal) == dt.datetime(2027, 2, 14, 17, 30, tzinfo=TZ)
    assert deadline_after(start, Deadline(days=6, count="calendar_days", time="12:00"), cal) == dt.datetime(2027, 2, 14, 12, 0, tzinfo=TZ)
    assert deadline_after(start, Deadline(days=0, count="working_days"), cal) == dt.datetime(2027, 2, 1, 17, 30, tzinfo=TZ)


def test_a_state_may_only_move_along_the_loop():
    assert rules.next_state(1, "reported", "rectify") == "rectified"
    assert rules.next_state(1, "rectified", "fail") == "rectifying"
    assert rules.next_state(1, "closed", "reopen") == "rectifying"
    with pytest.raises(HazardError, match="隐患 #1 当前为「整改中」，不能销号"):
        rules.next_state(1, "rectifying", "close")
    with pytest.raises(HazardError, match="不能核验"):
        rules.next_state(1, "reported", "fail")


# =========================================================================== the loop

def test_it_runs_the_whole_loop_with_a_failed_verification(rt, ids, sent):
    r = report(rt, ids, as_of=at("2026-09-30", "16:00"), photos=[Upload.of("通道.jpg", JPEG)])
    assert r.created and r.deadline == at("2026-10-13", "17:30") and r.notified == ()
    h = r.hazard_id
    assert act(rt, lambda s, org: hazards.start(s, rt, org, h, person_id=ids["s1-safe"], actor="person:s1-safe",
                                                 as_of=at("2026-10-08")), at("2026-10-08")) == "rectifying"
    assert act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="杂物已清理",
                                                   files=[Upload.of("整改后.png", PNG)], actor="person:s1-safe",
                                                   as_of=at("2026-10-09")), at("2026-10-09")) == "rectified"
    # The principal finds it not done: a new round, a new deadline (3 working days: 10, 12, 13 Oct).
    assert act(rt, lambda s, org: hazards.verify(s, rt, org, h, person_id=ids["s1-head"], passed=False, note="仍有纸箱",
                                                  actor="person:s1-head", as_of=at("2026-10-09", "15:00")),
               at("2026-10-09", "15:00")) == "rectifying"
    hz = hazard_row(h)
    assert (hz.state, hz.round, hz.deadline, hz.rectified_at) == ("rectifying", 2, at("2026-10-13", "17:30"), None)
    assert act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="纸箱已清走",
                                                   files=[Upload.of("再次整改.jpg", JPEG + b"2")], actor="person:s1-safe",
                                                   as_of=at("2026-10-12")), at("2026-10-12")) == "rectified"
    assert act(rt, lambda s, org: hazards.verify(s, rt, org, h, person_id=ids["s1-head"], passed=True, note=None,
                                                  actor="person:s1-head", as_of=at("2026-10-12", "14:00")),
               at("2026-10-12", "14:00")) == "verified"
    assert act(rt, lambda s, org: hazards.close(s, rt, org, h, person_id=ids["safe-head"], actor="person:safe-head",
                                                 as_of=at("2026-10-13")), at("2026-10-13")) == "closed"

    with session_scope() as session:
        events = views.history(session, h)
        notices = rows(session, "select n.dedupe_key, p.code from notice n join person p on p.id = n.person_id order by n.id")
        files = rows(session, "select role, filename, sha256 from hazard_file where hazard_id = :h order by id", h=h)
        audit = [r[0] for r in rows(session, "select action from audit where object_type = 'hazard' order by id")]
    assert [(e["action"], e["from"], e["to"], e["round"]) for e in events] == [
        ("reported", None, "reported", 1), ("started", "reported", "rectifying", 1), ("rectified", "rectifying", "rectified", 1),
        ("verification_failed", "rectified", "rectifying", 2), ("rectified", "rectifying", "rectified", 2),
        ("verified", "rectified", "verified", 2), ("closed", "verified", "closed", 2),
    ]
    assert events[3]["note"] == "仍有纸箱" and events[3]["detail"]["deadline"] == "2026-10-13T17:30:00+08:00"
    final = hazard_row(h)
    assert (final.state, final.round, final.closed_by, final.verified_by_id) == ("closed", 2, "person:safe-head", ids["s1-head"])
    assert [(k, c) for k, c in notices] == [
        (f"hz:{h}:r1:assigned", "s1-safe"), (f"hz:{h}:r1:verify", "s1-head"), (f"hz:{h}:r2:reopened", "s1-safe"),
        (f"hz:{h}:r2:verify", "s1-head"),
    ]
    assert sent.to() == Counter({"s1-safe": 2, "s1-head": 2})
    assert [(role, name) for role, name, _ in files] == [("photo", "通道.jpg"), ("rectification", "整改后.png"),
                                                         ("rectification", "再次整改.jpg")]
    for _, _, sha in files:  # content-addressed, like the evidence page's files
        assert (rt.settings.evidence_dir / sha[:2] / sha).is_file()
    assert audit == ["hazard.reported", "hazard.rectified", "hazard.verification_failed", "hazard.rectified",
                     "hazard.verified", "hazard.closed"]

    # A closed hazard found again is re-opened for a third round.
    assert act(rt, lambda s, org: hazards.reopen(s, rt, org, h, person_id=ids["dep-b"], reason="复查发现又有堆放",
                                                  actor="person:dep-b", as_of=at("2026-10-20")), at("2026-10-20")) == "rectifying"
    again = hazard_row(h)  # 3 working days from 20 Oct: 21, 22, 23
    assert (again.state, again.round, again.deadline, again.closed_at) == ("rectifying", 3, at("2026-10-23", "17:30"), None)


def test_the_rectifier_may_not_verify_and_nothing_changes(rt, ids, sent):
    h = report(rt, ids, as_of=at("2026-09-07")).hazard_id
    act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s2-safe"], note="代为整改", files=[Upload.of("a.jpg", JPEG)],
                                           actor="person:s2-safe", as_of=at("2026-09-08")), at("2026-09-08"))
    with session_scope() as session:
        before = table_counts(session)
        state = session.scalar(sa.text("select state from hazard"))
    for who, name in (("s2-safe", "二中安全主任"), ("s1-safe", "一小安全主任")):  # who did the work, who answers for it
        with pytest.raises(HazardError) as err:
            act(rt, lambda s, org: hazards.verify(s, rt, org, h, person_id=ids[who], passed=True, note="好了",
                                                  actor=f"person:{who}", as_of=at("2026-09-09")), at("2026-09-09"))
        assert str(err.value) == f"核验人不能是整改人（{name}）：隐患 #{h} 须由整改人以外的人员核验"
    with session_scope() as session:
        assert table_counts(session) == before
        assert session.scalar(sa.text("select state from hazard")) == state == "rectified"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_refuses_bad_requests_with_one_clear_line_and_changes_nothing(rt, ids, sent):
    h = report(rt, ids).hazard_id
    with session_scope() as session:
        before = table_counts(session)
    attempts = [
        (lambda s, org: hazards.close(s, rt, org, h, person_id=None, actor="x", as_of=at("2026-09-08")),
         f"隐患 #{h} 当前为「已上报」，不能销号"),
        (lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="好了", files=[], actor="x",
                                        as_of=at("2026-09-08")), "整改完成须上传至少 1 个整改材料"),
        (lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="好了",
                                        files=[Upload.of("a.exe", b"MZ..")], actor="x", as_of=at("2026-09-08")),
         "文件「a.exe」的类型不允许"),
        (lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="好了",
                                        files=[Upload.of("fake.jpg", b"not a jpeg")], actor="x", as_of=at("2026-09-08")),
         "文件「fake.jpg」的内容不是 JPG 文件"),
        (lambda s, org: hazards.verify(s, rt, org, h, person_id=ids["s1-head"], passed=True, note=None, actor="x",
                                       as_of=at("2026-09-08")), "不能核验"),
        (lambda s, org: hazards.report(s, rt, org, unit_id=ids["S1"], place="", description="x", level="一般",
                                       rectifier_id=ids["s1-safe"], actor="x", as_of=at("2026-09-08")), "隐患部位不能为空"),
        (lambda s, org: hazards.report(s, rt, org, unit_id=ids["S1"], place="p", description="x", level="很大",
                                       rectifier_id=ids["s1-safe"], actor="x", as_of=at("2026-09-08")),
         "隐患等级 '很大' 应为 一般隐患(general) / 重大隐患(major)"),
        (lambda s, org: hazards.report(s, rt, org, unit_id=ids["S1"], place="p", description="x", level="一般",
                                       rectifier_id=ids["s1-safe"], actor="x", as_of=at("2026-09-08"),
                                       deadline=at("2026-09-01")), "整改期限 2026-09-01 10:00 不能早于发现时间"),
        (lambda s, org: hazards.reopen(s, rt, org, h, person_id=None, reason="x", actor="x", as_of=at("2026-09-08")),
         "不能重新打开"),
        (lambda s, org: hazards.start(s, rt, org, 999, person_id=None, actor="x", as_of=at("2026-09-08")), "没有编号为 999 的隐患"),
    ]
    for work, message in attempts:
        with pytest.raises(HazardError, match=re.escape(message)):
            act(rt, work, at("2026-09-08"))
    with session_scope() as session:
        assert table_counts(session) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_speaks_english_when_asked(rt, ids, sent, monkeypatch):
    from pingan.core.settings import reset_settings

    h = report(rt, ids).hazard_id
    act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="done", files=[Upload.of("a.jpg", JPEG)],
                                           actor="x", as_of=at("2026-09-08")), at("2026-09-08"))
    monkeypatch.setenv("PINGAN_LOCALE", "en")
    reset_settings()
    with pytest.raises(HazardError, match=re.escape(
            f"the verifier must not be the rectifier (一小安全主任): hazard #{h} must be verified by someone else")):
        act(rt, lambda s, org: hazards.verify(s, rt, org, h, person_id=ids["s1-safe"], passed=True, note=None, actor="x",
                                              as_of=at("2026-09-09")), at("2026-09-09"))
    with pytest.raises(HazardError, match=re.escape(f"hazard #{h} is rectified: cannot close")):
        act(rt, lambda s, org: hazards.close(s, rt, org, h, person_id=None, actor="x", as_of=at("2026-09-09")), at("2026-09-09"))


def test_a_repeated_report_with_the_same_key_is_one_hazard(rt, ids, sent):
    first = report(rt, ids, client_key="form-7f3a")
    again = report(rt, ids, client_key="form-7f3a", description="重复提交")
    assert first.created and not again.created and again.hazard_id == first.hazard_id
    with session_scope() as session:
        assert session.scalar(sa.text("select count(*) from hazard")) == 1


# =========================================================================== major hazards and escalation

def test_a_major_hazard_tells_the_safety_section_and_the_patron_at_once(rt, ids, sent):
    s1 = report(rt, ids, level="重大", as_of=at("2026-09-05", "20:00"))  # a Saturday evening: sent at once anyway
    k1 = report(rt, ids, unit="K1", level="major", rectifier="k1-head", by="k1-head", as_of=at("2026-09-05", "20:00"))
    assert codes(ids, s1.notified) == ["dep-b", "safe-head"]  # 安全科长 and 包保 副局长乙
    assert codes(ids, k1.notified) == ["dep-a", "safe-head"]  # the kindergarten's patron is 副局长甲
    with session_scope() as session:
        urgent = rows(session, "select p.code, n.urgent, n.kind from notice n join person p on p.id = n.person_id "
                               "where n.dedupe_key like :p order by p.code", p="%:major")
    assert [tuple(r) for r in urgent] == [("dep-a", True, "announcement"), ("dep-b", True, "announcement"),
                                          ("safe-head", True, "announcement"), ("safe-head", True, "announcement")]
    assert sent.to()["safe-head"] >= 1 and sent.to()["dep-b"] == 1 and sent.to()["dep-a"] == 1
    body = next(b for url, _, b in sent.calls if url.endswith("/dep-b"))
    assert "【重大隐患】一小 报告重大隐患" in body and "整改期限：2026-10-08 17:30" in body


def escalations(session) -> list[tuple[str, str]]:
    found = rows(session, "select n.dedupe_key, p.code from notice n join person p on p.id = n.person_id "
                          "where n.kind = 'escalation' order by n.id, p.code")
    return sorted((k.split(":", 2)[2], c) for k, c in found)


def test_an_overdue_major_hazard_climbs_the_chain_to_the_exact_leaders(rt, ids, sent):
    h = report(rt, ids, level="major", rectifier="s1-safe", as_of=at("2026-09-01")).hazard_id  # due 8 Oct 17:30
    for day in ("2026-10-08", "2026-10-09"):
        watch(rt, at(day, "09:00"))
    with session_scope() as session:
        assert escalations(session) == [("r1:e1.0", "dep-b"), ("r1:e1.0", "s1-head"), ("r1:e1.0", "safe-head")]
    # 10 Oct is a Saturday but a make-up working day: level 2 (1 day after) goes out.
    watch(rt, at("2026-10-10", "09:00"))
    watch(rt, at("2026-10-11", "09:00"))  # Sunday: nothing is sent
    watch(rt, at("2026-10-13", "09:00"))  # repeat 3 days after level 2 (12 Oct 17:30)
    with session_scope() as session:
        got = escalations(session)
        HE = models.HazardEvent.__table__
        events = session.execute(sa.select(HE.c.step, HE.c.detail).where(HE.c.hazard_id == h, HE.c.action == "escalated")
                                 .order_by(HE.c.id)).all()
    assert got == [("r1:e1.0", "dep-b"), ("r1:e1.0", "s1-head"), ("r1:e1.0", "safe-head"),
                   ("r1:e2.0", "chief"), ("r1:e2.0", "dep-a"), ("r1:e2.1", "chief"), ("r1:e2.1", "dep-a")]
    assert [step for step, _ in events] == ["r1:e1.0", "r1:e2.0", "r1:e2.1"]
    assert [codes(ids, d["recipients"]) for _, d in events] == [["dep-b", "s1-head", "safe-head"], ["chief", "dep-a"], ["chief", "dep-a"]]
    body = next(b for url, _, b in sent.calls if url.endswith("/chief"))
    assert "【督办·第2级】一小（一小安全主任）「重大隐患整改：消防通道堆放杂物」（#1）已逾期（截止 2026-10-08 17:30），逾期未完成整改。" in body


def test_the_rectifier_is_not_told_of_his_own_escalation(rt, ids, sent):
    report(rt, ids, level="major", rectifier="s1-head", by="s1-safe", as_of=at("2026-09-01"))
    watch(rt, at("2026-10-09", "09:00"))
    with session_scope() as session:
        assert escalations(session) == [("r1:e1.0", "dep-b"), ("r1:e1.0", "safe-head")]


def test_reminders_come_before_the_deadline_once_per_step_and_round(rt, ids, sent):
    # general, found Wed 9 Sep: 5 working days are 10, 11, 14, 15 and 16 Sep.
    h = report(rt, ids, as_of=at("2026-09-09")).hazard_id
    assert hazard_row(h).deadline == at("2026-09-16", "17:30")

    def keys(hazard_id=h):
        with session_scope() as session:
            return [k.split(":", 2)[2] for (k,) in rows(
                session, "select dedupe_key from notice where dedupe_key like :p order by id", p=f"hz:{hazard_id}:%")]

    for day in ("2026-09-10", "2026-09-11", "2026-09-14", "2026-09-15", "2026-09-16", "2026-09-17", "2026-09-18"):
        for moment in ("10:00", "16:00"):
            watch(rt, at(day, moment))
    # 2 days before (Mon 14 Sep 17:30: sent on the 15th), the morning of the deadline, then
    # escalation from 17 Sep 17:30 (the standard policy's 1-day grace).
    assert keys() == ["r1:assigned", "r1:due-2d", "r1:due-9h", "r1:e1.0"]
    # A failed verification opens round 2 with its own deadline (3 working days: Sunday 20 Sep is a
    # make-up working day, then 21 and 22) and its own reminders and escalation.
    act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s1-safe"], note="好了", files=[Upload.of("a.jpg", JPEG)],
                                           actor="x", as_of=at("2026-09-18", "11:00")), at("2026-09-18", "11:00"))
    act(rt, lambda s, org: hazards.verify(s, rt, org, h, person_id=ids["s1-head"], passed=False, note="没好",
                                          actor="x", as_of=at("2026-09-18", "12:00")), at("2026-09-18", "12:00"))
    assert hazard_row(h).deadline == at("2026-09-22", "17:30")
    for day in ("2026-09-19", "2026-09-20", "2026-09-21", "2026-09-22", "2026-09-23", "2026-09-24"):
        watch(rt, at(day, "10:00"))
    assert keys()[4:] == ["r1:verify", "r2:reopened", "r2:due-2d", "r2:due-9h", "r2:e1.0"]

    # A run that missed earlier steps sends only the latest (one reminder, not a burst): found Mon
    # 14 Sep, due Sunday 20 Sep (a make-up working day); nothing runs between Fri 18 Sep 17:30 and
    # the morning of the 20th.
    h2 = report(rt, ids, unit="S2", rectifier="s2-safe", by="s2-head", as_of=at("2026-09-14")).hazard_id
    assert hazard_row(h2).deadline == at("2026-09-20", "17:30")
    watch(rt, at("2026-09-20", "09:00"))
    assert keys(h2) == ["r1:assigned", "r1:due-9h"]


def test_watch_runs_converge_whatever_the_repeats(rt, ids, sent):
    report(rt, ids, level="major", as_of=at("2026-09-01"))
    report(rt, ids, unit="S2", rectifier="s2-safe", by="s2-head", as_of=at("2026-09-20"))
    for _ in range(3):
        watch(rt, at("2026-10-20", "09:00"))
    with session_scope() as session:
        first = table_counts(session) | {"message": session.scalar(sa.text("select count(*) from message"))}
    for _ in range(2):
        again = watch(rt, at("2026-10-20", "09:00"))
    with session_scope() as session:
        second = table_counts(session) | {"message": session.scalar(sa.text("select count(*) from message"))}
    assert first == second and again.hazard_escalations == again.hazard_reminders == again.overdue_marked == again.sent == 0


# =========================================================================== the supervision platform

def test_half_monthly_checks_record_their_upload_and_a_missing_one_is_reminded(rt, ids, sent):
    cycle(rt, HALF_MONTHLY, at("2026-09-01", "09:00"))
    with session_scope() as session:
        tasks = {code: tid for tid, code in rows(session, "select o.id, u.code from occurrence o join unit u on u.id = o.unit_id "
                                                          "where o.duty_key = :d and o.period_key = '2026-09-H1'", d=HALF_MONTHLY)}
    assert set(tasks) == {"S1", "S2", "K1"}
    # S1 records it from the shell; S2 hands in its check report with the reference through the evidence page.
    assert act(rt, lambda s, org: hazards.record_upload(s, rt, occurrence_id=tasks["S1"], reference="JG-2026-0915-001",
                                                        uploaded_on=dt.date(2026, 9, 14), actor="operator:cli",
                                                        as_of=at("2026-09-14")), at("2026-09-14"))
    with session_scope() as session:
        session.add(Evidence(occurrence_id=tasks["S2"], person_id=ids["s2-safe"], kind="hazard_check_report",
                             fields={"platform_reference": "JG-0915-S2", "upload_date": "2026-09-15"},
                             submitted_at=at("2026-09-15", "16:00")))
    for day in ("2026-09-15", "2026-09-16", "2026-09-17", "2026-09-18", "2026-09-19", "2026-09-21"):
        watch(rt, at(day, "09:00"))
    with session_scope() as session:
        P, O, U = models.PlatformUpload.__table__, Occurrence.__table__, models.Unit.__table__
        uploads = session.execute(sa.select(U.c.code, P.c.reference, P.c.uploaded_on, P.c.source)
                                  .join(O, O.c.id == P.c.occurrence_id).join(U, U.c.id == O.c.unit_id).order_by(U.c.code)).all()
        reminded = rows(session, "select n.step, pe.code from notice n join person pe on pe.id = n.person_id "
                                 "where n.dedupe_key like 'u:%' order by n.id")
    assert [tuple(u) for u in uploads] == [("S1", "JG-2026-0915-001", dt.date(2026, 9, 14), "cli"),
                                          ("S2", "JG-0915-S2", dt.date(2026, 9, 15), "evidence")]
    # K1 never uploaded: due 15 Sep 17:30, reminded on the 16th and 3 days after due (the 18th at 17:30 → 19th is a Saturday → 21st).
    assert [tuple(r) for r in reminded] == [("upload@due", "k1-head"), ("upload@due+3d", "k1-head")]
    body = next(b for url, _, b in sent.calls if url.endswith("/k1-head") and "尚未录入" in b)
    assert "【学校每半月集中安全检查和隐患排查治理并上传监管平台】幼儿园 · 2026-09-H1" in body
    assert "截止时间：2026-09-15 17:30（已逾期 1 天；尚未录入上传监管平台的编号，请上传并登记）" in body
    assert "七（四）" in body and "/e/" in body  # the clause, and a hand-in link to add the reference
    with pytest.raises(HazardError, match="不是半月隐患排查任务"):
        act(rt, lambda s, org: hazards.record_upload(s, rt, occurrence_id=999, reference="x", uploaded_on=dt.date(2026, 9, 1),
                                                     actor="x", as_of=at("2026-09-21")), at("2026-09-21"))
    with pytest.raises(HazardError, match="上传日期 2026-09-30 晚于今天"):
        act(rt, lambda s, org: hazards.record_upload(s, rt, occurrence_id=tasks["K1"], reference="x",
                                                     uploaded_on=dt.date(2026, 9, 30), actor="x", as_of=at("2026-09-21")),
            at("2026-09-21"))
    # A correction replaces the reference; the audit keeps the old one.
    assert act(rt, lambda s, org: hazards.record_upload(s, rt, occurrence_id=tasks["S1"], reference="JG-2026-0915-002",
                                                        uploaded_on=dt.date(2026, 9, 14), actor="operator:cli",
                                                        as_of=at("2026-09-21")), at("2026-09-21"))
    with session_scope() as session:
        A = models.Audit.__table__
        audit = session.execute(sa.select(A.c.detail).where(A.c.action == "upload.recorded").order_by(A.c.id)).all()
    assert [d["previous"] for (d,) in audit] == [None, "JG-2026-0915-001"]


# =========================================================================== artifacts

def test_open_hazards_are_tallied_per_unit_by_level_and_age(rt, ids, sent):
    report(rt, ids, level="major", as_of=at("2026-09-01"))
    report(rt, ids, as_of=at("2026-10-15"))
    h = report(rt, ids, unit="S2", rectifier="s2-safe", by="s2-head", as_of=at("2026-10-19")).hazard_id
    act(rt, lambda s, org: hazards.rectify(s, rt, org, h, person_id=ids["s2-safe"], note="好了", files=[Upload.of("a.jpg", JPEG)],
                                           actor="x", as_of=at("2026-10-20")), at("2026-10-20"))
    with session_scope() as session:
        table = views.by_unit(views.hazard_rows(session, at("2026-10-20"), open_only=True))
    assert table == [
        {"单位 unit": "一小", "一般隐患 general": 1, "重大隐患 major": 1, "逾期 overdue": 1, "待核验 to verify": 0,
         "待销号 to close": 0, "≤7天 age": 1, "8–30天 age": 0, ">30天 age": 1, "最久(天) oldest days": 49},
        {"单位 unit": "二中", "一般隐患 general": 1, "重大隐患 major": 0, "逾期 overdue": 0, "待核验 to verify": 1,
         "待销号 to close": 0, "≤7天 age": 1, "8–30天 age": 0, ">30天 age": 0, "最久(天) oldest days": 1},
    ]


# =========================================================================== CLI

def test_the_command_line_runs_the_loop(rt, ids, sent, tmp_path):
    from typer.testing import CliRunner

    from pingan.cli import app

    photo = tmp_path / "现场.jpg"
    photo.write_bytes(JPEG)
    cli = CliRunner()

    def run(*args):
        return cli.invoke(app, list(args))

    out = run("hazard", "report", "--unit", "S1", "--place", "食堂", "--description", "燃气软管老化", "--level", "重大",
              "--rectifier", "s1-safe", "--by", "s1-head", "--photo", str(photo), "--as-of", "2026-09-01T10:00")
    assert out.exit_code == 0, out.output
    assert "隐患 #1 已上报：重大隐患，整改责任人 一小安全主任，整改期限 2026-10-08 17:30" in out.output
    assert "已即时通知：安全科长、副局长乙" in out.output
    out = run("hazard", "rectify", "1", "--by", "s1-safe", "--note", "已更换", "--file", str(photo), "--as-of", "2026-09-02")
    assert out.exit_code == 0 and "隐患 #1：待核验" in out.output, out.output
    out = run("hazard", "verify", "1", "--by", "s1-safe", "--pass", "--as-of", "2026-09-03")
    assert out.exit_code == 2 and "核验人不能是整改人（一小安全主任）" in out.output
    out = run("hazard", "verify", "1", "--by", "safe-head", "--fail", "--note", "未加装报警器", "--as-of", "2026-09-03")
    assert out.exit_code == 0 and "隐患 #1：整改中" in out.output, out.output
    out = run("hazard", "rectify", "1", "--by", "s1-safe", "--note", "已加装", "--file", str(photo), "--as-of", "2026-09-04")
    out = run("hazard", "verify", "1", "--by", "safe-head", "--pass", "--as-of", "2026-09-04T15:00")
    out = run("hazard", "close", "1", "--by", "safe-head", "--as-of", "2026-09-04T16:00")
    assert out.exit_code == 0 and "隐患 #1：已销号" in out.output, out.output
    out = run("hazard", "list", "--all", "--json", "--as-of", "2026-09-05")
    assert out.exit_code == 0 and '"state": "closed"' in out.output and '"round": 2' in out.output
    out = run("hazard", "show", "1", "--as-of", "2026-09-05")
    assert out.exit_code == 0 and "燃气软管老化" in out.output and "已销号" in out.output
    out = run("hazard", "show", "1", "--json", "--as-of", "2026-09-05")
    assert out.exit_code == 0 and '"action": "verification_failed"' in out.output and "未加装报警器" in out.output
    out = run("hazard", "reopen", "1", "--by", "dep-b", "--reason", "复查又漏气", "--as-of", "2026-09-10")
    assert out.exit_code == 0 and "隐患 #1：整改中" in out.output
    out = run("hazard", "list", "--state", "rectifying", "--as-of", "2026-09-10")
    assert out.exit_code == 0 and "1 项" in out.output
    out = run("hazard", "close", "1", "--by", "safe-head")
    assert out.exit_code == 2 and "不能销号" in out.output
    out = run("hazard", "report", "--unit", "S9", "--place", "x", "--description", "x", "--level", "一般",
              "--rectifier", "s1-safe", "--by", "s1-head")
    assert out.exit_code == 2 and "--unit：没有在用单位 'S9'" in out.output
    out = run("hazard", "watch", "--as-of", "2026-10-09T09:00", "--local")
    assert out.exit_code == 0 and "督办" in out.output


# =========================================================================== deployment and flow

def test_it_has_its_own_daily_deployment():
    from deployments.hazards import specs

    (spec,) = specs()
    assert spec.flow_name == "hazard-watch" and spec.entrypoint == "flows/hazards.py:hazard_watch"
    assert [(s.cron, s.timezone) for s in spec.schedules] == [("5 9 * * *", "Asia/Shanghai")]
    assert "pingan" in spec.tags  # the failure automation watches this tag
    assert "七（四）" in spec.description and "一（十一）" in spec.description


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_flow_runs_its_steps_and_publishes(rt, ids, sent, prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.hazards import hazard_watch

    report(rt, ids, level="major", as_of=at("2026-09-01"))
    first = hazard_watch(as_of=at("2026-10-09", "09:05"))
    again = hazard_watch(as_of=at("2026-10-09", "09:05"))
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert (first["escalations"], first["overdue"], first["open_hazards"], first["overdue_hazards"]) == (1, 1, 1, 1)
    assert (again["escalations"], again["overdue"]) == (0, 0)
    # A major hazard's escalation is urgent: released at once for the dispatcher (the flow sends
    # nothing itself); the second run queued nothing more.
    with session_scope() as session:
        urgent = rows(session, "select count(*) from notice where urgent and message_id is null")[0][0]
    assert first["released_now"] == again["released_now"] == urgent > 0
    assert {"hazards-open-by-unit", "hazards-open", "hazards-risk-checks", "hazards-risk-warnings",
            "hazards-platform-uploads", "hazards-summary"} <= keys
