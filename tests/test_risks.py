"""The risk-point register (XLSX in and out, the template) and its checks; and two months of the
hazard watch replayed day by day against counts worked out here.

The replay's expectations are derived from the rules in a different form than the engine uses
(as tests/test_replay.py does for the duty cycle): a reminder step is sent iff some run in
working time falls between its time and the next step's, while the thing is still open; an
escalation level fires iff some working-time run falls after its time while it is open; a
repeat fires iff some working-time run falls before the next repeat.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import openpyxl
import pytest
import sqlalchemy as sa
from factories import at, make_org, photo

import models
from pingan.duties.workflow import cycle
from pingan.hazards import service as hazards
from pingan.hazards import sheets, workflow
from pingan.delivery.workflow import dispatch
from pingan.delivery import transports
from pingan.core.db import session_scope
from pingan.evidence.files import Upload
from pingan.hazards.rules import HazardError, hazard_config
from pingan.core.periods import days, periods_between, timing
from pingan.core.clock import TZ
from pingan.org.snapshot import load_org
from pingan.hazards.sheets import COLUMNS, RiskImportError
from pingan.duties.rules import escalation_schedule, is_working_time, step_time, TaskView
from pingan.duties.runtime import get_runtime
from pingan.delivery.transports import Outcome

HEADERS = [c.header for c in COLUMNS]
RP, RC = models.RiskPoint.__table__, models.RiskCheck.__table__


def act(rt, work, as_of):
    """An action, then the dispatcher at ``as_of`` (as the CLI and the page do)."""
    out = hazards.act(rt, work)
    dispatch(rt, as_of)
    return out


@pytest.fixture
def rt(migrated_db, monkeypatch):
    monkeypatch.setattr(transports, "deliver", lambda *a, **k: Outcome(ok=True))
    return get_runtime()


@pytest.fixture
def ids(migrated_db):
    with session_scope() as session:
        return make_org(session)


def workbook(path, rows, *, headers=HEADERS, sheet="风险点"):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(headers)
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


IMPORTED = at("2026-09-01", "08:00")


def watch(rt, as_of):
    """The daily hazard watch in this process: its steps (each its own transaction), then the dispatcher."""
    workflow.WATCH.run(rt, as_of=as_of)
    dispatch(rt, as_of)


def do_import(rt, path, as_of=IMPORTED, **kw):
    return hazards.act(rt, lambda s, org: hazards.import_points(s, rt, org, path, actor="operator:test", as_of=as_of, **kw))


def points(session) -> list[tuple]:
    return [tuple(r) for r in session.execute(
        sa.select(models.Unit.code, RP.c.code, RP.c.category, RP.c.level, RP.c.owner_id, RP.c.active)
        .join(models.Unit, models.Unit.id == RP.c.unit_id).order_by(models.Unit.code, RP.c.code))]


GOOD = [
    ("S1", "R1", "物", "食堂燃气管道", "燃气泄漏", "报警器；每日关阀", "重大", "s1-safe", "是"),
    ("S1", "R2", "管", "学校大门", "外来人员闯入", "登记；值守", "一般", None, None),
    ("S2", "R1", "人", "上下学路段", "交通事故", "护学岗", "较大", "s2-safe", None),
    ("K1", "R1", "环", "园区（地震）", "房屋损毁", "疏散演练", "低", None, None),
]


# =========================================================================== import and export

def test_it_imports_exports_and_imports_again_without_change(rt, ids, tmp_path):
    result = do_import(rt, workbook(tmp_path / "风险点.xlsx", GOOD))
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (4, 0, 0, 0)
    with session_scope() as session:
        assert points(session) == [("K1", "R1", "environment", "low", None, True), ("S1", "R1", "things", "major", ids["s1-safe"], True),
                                   ("S1", "R2", "management", "general", None, True), ("S2", "R1", "people", "high", ids["s2-safe"], True)]
        sheets.export_points(session, rt, tmp_path / "导出.xlsx")
    again = do_import(rt, tmp_path / "导出.xlsx")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4) and not again.changed
    # Red/orange/yellow/blue and English level names are understood too; an edit is an update.
    changed = [GOOD[0][:6] + ("red",) + GOOD[0][7:], GOOD[1][:6] + ("橙",) + GOOD[1][7:]]
    result = do_import(rt, workbook(tmp_path / "改.xlsx", changed), replace=True)
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (0, 1, 1, 0)
    with session_scope() as session:
        assert points(session)[2] == ("S1", "R2", "management", "high", None, True)
    # --replace deactivates the points of the file's units that the file leaves out (S1/R2 here).
    result = do_import(rt, workbook(tmp_path / "S1.xlsx", [GOOD[0]]), replace=True)
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (0, 0, 1, 1)
    with session_scope() as session:
        assert [p[:2] for p in points(session) if not p[5]] == [("S1", "R2")]


def test_a_bad_file_is_refused_row_by_row_and_nothing_is_written(rt, ids, tmp_path):
    do_import(rt, workbook(tmp_path / "ok.xlsx", GOOD[:1]))
    with session_scope() as session:
        before = points(session)
        audits = session.scalar(sa.select(sa.func.count()).select_from(models.Audit))
    bad = [
        ("S1", "R3", "物", "实验室", "危化品", "双人双锁", "很高", None, None),  # row 2: level
        ("S9", "R1", "物", "x", "x", "x", "一般", None, None),  # row 3: unit
        ("S1", "R4", "天", "x", "x", "x", "一般", None, None),  # row 4: category
        ("S1", "R5", "物", None, "x", "x", "一般", None, None),  # row 5: place missing
        ("S1", "R6", "物", "x", "x", "x", "一般", "s2-safe", None),  # row 6: owner of another unit
        ("S1", "R7", "物", "x", "x", "x", "一般", "nobody", "也许"),  # row 7: owner unknown, bad active
        ("S1", "R1", "物", "x", "x", "x", "一般", None, None),  # row 8: fine (an update) …
        ("S1", "R1", "物", "y", "y", "y", "低", None, None),  # row 9: … but R1 twice
        ("S1", "R 8", "物", "x", "x", "x", "一般", None, None),  # row 10: code with a space
    ]
    with pytest.raises(RiskImportError) as err:
        do_import(rt, workbook(tmp_path / "坏.xlsx", bad))
    assert err.value.errors == [
        "坏.xlsx [风险点]：第 2 行 G 列「风险等级」/ row 2, column G (风险等级)：'很高' 不是风险等级（重大 / 较大 / 一般 / 低，或 红 / 橙 / 黄 / 蓝）",
        "坏.xlsx [风险点]：第 3 行 A 列「单位编码」/ row 3, column A (单位编码)：没有在用单位 'S9'",
        "坏.xlsx [风险点]：第 4 行 C 列「类别」/ row 4, column C (类别)：'天' 不是风险类别（人 / 物 / 管 / 环）",
        "坏.xlsx [风险点]：第 5 行 D 列「场所/部位」/ row 5, column D (场所/部位)：必填",
        "坏.xlsx [风险点]：第 6 行 H 列「责任人编码」/ row 6, column H (责任人编码)：责任人 's2-safe' 不属于单位 S1",
        "坏.xlsx [风险点]：第 7 行 H 列「责任人编码」/ row 7, column H (责任人编码)：没有在职人员 'nobody'",
        "坏.xlsx [风险点]：第 7 行 I 列「启用」/ row 7, column I (启用)：'也许' 应为 是 或 否",
        "坏.xlsx [风险点]：第 9 行 B 列「风险点编号」/ row 9, column B (风险点编号)：风险点 S1/R1 在第 8 行已出现",
        "坏.xlsx [风险点]：第 10 行 B 列「风险点编号」/ row 10, column B (风险点编号)：编号 'R 8' 不能含空格或 / ; ,",
    ]
    assert str(err.value).startswith("文件有 9 处错误，未导入任何内容：\n")
    with session_scope() as session:
        assert points(session) == before
        assert session.scalar(sa.select(sa.func.count()).select_from(models.Audit)) == audits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_names_the_file_the_sheet_and_the_missing_column(rt, ids, tmp_path):
    path = workbook(tmp_path / "缺列.xlsx", [("S1", "R1", "物", "x", "x", "x")], headers=HEADERS[:6], sheet="风险点清单")
    with pytest.raises(RiskImportError, match=re.escape("缺列.xlsx [风险点清单]：第 1 行「风险等级」列 / row 1, column 风险等级：缺少必需的列")):
        do_import(rt, path)
    (tmp_path / "not.xlsx").write_bytes(b"this is no workbook")
    with pytest.raises(RiskImportError, match=re.escape("not.xlsx：无法读取（BadZipFile）；请使用 .xlsx 工作簿")):
        do_import(rt, tmp_path / "not.xlsx")
    with pytest.raises(RiskImportError, match=re.escape("空.xlsx [风险点]：没有数据行")):
        do_import(rt, workbook(tmp_path / "空.xlsx", []))
    with pytest.raises(RiskImportError, match=re.escape("本次只导入单位 S1 的风险点，此行为 'S2'")):
        do_import(rt, workbook(tmp_path / "别校.xlsx", GOOD[2:3]), unit_code="S1")
    with session_scope() as session:
        assert points(session) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_template_is_marked_as_such_and_imports_for_a_school(rt, ids, tmp_path):
    n = sheets.write_template(rt, tmp_path / "模板.xlsx")
    cfg = hazard_config(rt)
    assert n == len(cfg.data.risk_template) >= 30
    wb = openpyxl.load_workbook(tmp_path / "模板.xlsx")
    assert wb.sheetnames == ["说明", "风险点"]
    assert wb["说明"]["A1"].value.startswith("模板（TEMPLATE）")
    ws = wb["风险点"]
    assert [c.value for c in ws[1]] == [*HEADERS, "备注"]
    assert all(row[9].value == "模板示例：请按本校实际修改或删除" for row in ws.iter_rows(min_row=2))
    assert Counter(row[2].value for row in ws.iter_rows(min_row=2)) .keys() == {"人", "物", "管", "环"}
    result = do_import(rt, tmp_path / "模板.xlsx", unit_code="S1")
    assert result.created == n
    with session_scope() as session:
        levels = Counter(r.level for r in session.execute(sa.select(RP.c.level)))
    assert levels == Counter(p.level.value for p in cfg.data.risk_template)


def test_exported_text_never_becomes_a_formula(rt, ids, tmp_path):
    path = workbook(tmp_path / "f.xlsx", [("S1", "R1", "物", "placeholder", "-1", "+x", "一般", None, None)])
    wb = openpyxl.load_workbook(path)
    cell = wb["风险点"]["D2"]
    cell.value, cell.data_type = '=HYPERLINK("http://x")', "s"  # typed as text in Excel ('=…)
    wb.save(path)
    do_import(rt, path)
    with session_scope() as session:
        sheets.export_points(session, rt, tmp_path / "out.xlsx")
    cell = openpyxl.load_workbook(tmp_path / "out.xlsx")["风险点"]["D2"]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_command_line_imports_lists_exports_and_writes_the_template(rt, ids, tmp_path):
    from typer.testing import CliRunner

    from pingan.cli import app

    cli = CliRunner()
    out = cli.invoke(app, ["risk", "template", str(tmp_path / "模板.xlsx"), "--unit", "S2"])
    assert out.exit_code == 0 and "已生成风险点模板（31 个典型风险点，须按本校实际修改）" in out.output, out.output
    out = cli.invoke(app, ["risk", "import", str(tmp_path / "模板.xlsx"), "--dry-run"])
    assert out.exit_code == 0 and "新增 31" in out.output and "未写入" in out.output
    out = cli.invoke(app, ["risk", "import", str(tmp_path / "模板.xlsx")])
    assert out.exit_code == 0 and "新增 31，更新 0，未变 0，停用 0" in out.output
    out = cli.invoke(app, ["risk", "list", "--unit", "S2", "--level", "红", "--json"])
    assert out.exit_code == 0 and out.output.count('"level": "major"') == 4
    out = cli.invoke(app, ["risk", "export", str(tmp_path / "out.xlsx"), "--unit", "S2"])
    assert out.exit_code == 0 and "已导出 31 个风险点" in out.output
    workbook(tmp_path / "bad.xlsx", [("S2", "R-T01", "物", "x", "x", "x", "极高", None, None)])
    out = cli.invoke(app, ["risk", "import", str(tmp_path / "bad.xlsx")])
    assert out.exit_code == 2
    assert "bad.xlsx [风险点]：第 2 行 G 列「风险等级」/ row 2, column G (风险等级)：'极高' 不是风险等级" in out.output
    with session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RP).where(RP.c.level == "major")) == 4
    out = cli.invoke(app, ["risk", "check", "S2/R-T01", "--by", "s2-safe", "--as-of", "2026-09-01T10:00"])
    assert out.exit_code == 2 and "当前没有待完成的检查" in out.output  # nothing planned yet
    with session_scope() as session:  # the shell imported them today; replay as if registered in August
        session.execute(sa.update(RP).values(created_at=at("2026-08-01")))
    watch(rt, at("2026-09-01", "09:00"))
    out = cli.invoke(app, ["risk", "check", "S2/R-T01", "--by", "s2-safe", "--result", "hazard", "--description", "软管老化",
                           "--level", "一般", "--rectifier", "s2-safe", "--as-of", "2026-09-01T10:00"])
    assert out.exit_code == 0 and "隐患 #1" in out.output, out.output


# =========================================================================== checks

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_level_plans_its_checks_at_its_own_frequency(rt, ids, tmp_path):
    do_import(rt, workbook(tmp_path / "p.xlsx", GOOD))
    with session_scope() as session:
        created = workflow.plan_checks(session, rt, load_org(session), at("2026-09-02", "09:00"))
        again = workflow.plan_checks(session, rt, load_org(session), at("2026-09-02", "09:00"))
        found = session.execute(sa.select(RC.c.level, RC.c.period_key, RC.c.due_at, RC.c.escalate_at).order_by(RC.c.id)).all()
    assert (created, again) == (4, 0)
    assert {r.level: (r.period_key, r.due_at, r.escalate_at) for r in found} == {
        "major": ("2026-W36", at("2026-09-04", "17:30"), at("2026-09-04", "19:30")),  # Monday to Friday; fast: 2 h grace
        "high": ("2026-09-H1", at("2026-09-15", "17:30"), at("2026-09-15", "19:30")),
        "general": ("2026-09", at("2026-09-30", "17:30"), at("2026-10-01", "17:30")),  # standard: 1 day grace
        "low": ("2026-autumn", at("2027-01-15", "17:30"), at("2027-01-16", "17:30")),
    }


def rc_notices(since: int = 0) -> list[tuple[str, str]]:
    with session_scope() as session:
        found = session.execute(sa.select(models.Notice.dedupe_key, models.Person.code)
                                .join(models.Person, models.Person.id == models.Notice.person_id)
                                .where(models.Notice.dedupe_key.like("rc:%"), models.Notice.id > since)
                                .order_by(models.Notice.id)).all()
    return [(k.split(":", 2)[2], c) for k, c in found]


def test_a_missed_check_climbs_the_chain_and_a_check_stops_it(rt, ids, tmp_path):
    do_import(rt, workbook(tmp_path / "p.xlsx", GOOD[:2]))  # S1: red (owner 安全主任), yellow (no owner)
    for day in ("2026-09-01", "2026-09-04", "2026-09-07", "2026-09-08", "2026-09-09"):
        watch(rt, at(day, "09:00"))
    # The red check of W36 (due Fri 4 Sep 17:30) reminds its owner when it opens and that morning;
    # escalation starts 2 h after the deadline: level 1 (the principal) and level 2 (the patron,
    # 1 day later) on Monday the 7th, when W37's check opens; level 3 (bureau principal and safety
    # section, 3 days later) on the 8th. The yellow point has no owner: the safety officer and the
    # principal are reminded.
    assert rc_notices() == [
        ("open", "s1-safe"), ("open", "s1-safe"), ("open", "s1-head"),
        ("due-9h", "s1-safe"),
        ("open", "s1-safe"), ("e1.0", "s1-head"), ("e2.0", "dep-b"),
        ("e3.0", "chief"), ("e3.0", "safe-head"),
    ]
    # Checking now does the overdue week and this week at once; reminders and escalation stop.
    with session_scope() as session:
        point = hazards.find_point(session, load_org(session), "S1/R1")
        last = session.scalar(sa.select(sa.func.max(models.Notice.id)))
    done = act(rt, lambda s, org: hazards.record_check(
        s, rt, org, risk_point_id=point.id, person_id=ids["s1-safe"], result="ok", actor="person:s1-safe",
        as_of=at("2026-09-09", "10:00"), note="正常"), at("2026-09-09", "10:00"))
    assert len(done.checks) == 2 and done.hazard_id is None
    with pytest.raises(HazardError, match=re.escape(f"风险点 #{point.id} R1 当前没有待完成的检查")):
        act(rt, lambda s, org: hazards.record_check(
            s, rt, org, risk_point_id=point.id, person_id=ids["s1-safe"], result="ok", actor="x",
            as_of=at("2026-09-09", "11:00")), at("2026-09-09", "11:00"))
    for day in ("2026-09-11", "2026-09-14"):
        watch(rt, at(day, "09:00"))
    # No repeat of level 3 (it was due 10 Sep 19:30), no reminder for W37: only W38 opening.
    assert rc_notices(last) == [("open", "s1-safe")]


def test_a_check_that_finds_a_hazard_puts_it_into_the_loop(rt, ids, tmp_path):
    do_import(rt, workbook(tmp_path / "p.xlsx", GOOD[:1]))
    watch(rt, at("2026-09-01", "09:00"))
    with session_scope() as session:
        point = hazards.find_point(session, load_org(session), "S1/R1")
    with pytest.raises(HazardError, match="发现隐患时须填写隐患描述、等级和整改责任人"):
        act(rt, lambda s, org: hazards.record_check(
            s, rt, org, risk_point_id=point.id, person_id=ids["s1-safe"], result="hazard", actor="x",
            as_of=at("2026-09-02")), at("2026-09-02"))
    done = act(rt, lambda s, org: hazards.record_check(
        s, rt, org, risk_point_id=point.id, person_id=ids["s1-safe"], result="hazard", actor="person:s1-safe",
        as_of=at("2026-09-02"), hazard={"description": "报警器失灵", "level": "重大", "rectifier_id": ids["s1-head"]},
        photos=[Upload.of("报警器.jpg", photo("报警器"))]), at("2026-09-02"))
    with session_scope() as session:
        hz = hazards.load(session, done.hazard_id)
        check = session.execute(sa.select(RC.c.result, RC.c.hazard_id, RC.c.checked_at).where(RC.c.id == done.checks[0])).one()
    assert (hz.source, hz.risk_point_id, hz.place, hz.level, hz.state) == ("risk_check", point.id, "食堂燃气管道", "major", "reported")
    assert tuple(check) == ("hazard", done.hazard_id, at("2026-09-02"))


# =========================================================================== two months, day by day

START, END = dt.date(2026, 9, 1), dt.date(2026, 10, 31)
HALF_MONTHLY = "school-half-monthly-hazard-check"


def t(day: str, hm: str = "10:00") -> dt.datetime:
    return at(day, hm)


# Scripted people's actions, each at 10:00 (after the 09:00 watch) unless timed otherwise.
HAZARDS = {  # name: (unit, level, rectifier, reporter, reported at)
    "H1": ("S1", "general", "s1-safe", "s1-head", t("2026-09-07")),
    "H2": ("S2", "major", "s2-safe", "s2-head", t("2026-09-01")),
    "H3": ("K1", "general", "k1-head", "k1-head", t("2026-09-28")),
}
STEPS = [  # (when, hazard, action, person, passed)
    (t("2026-09-10"), "H1", "rectify", "s1-safe", None),
    (t("2026-09-11"), "H1", "verify", "s1-head", False),
    (t("2026-09-16"), "H1", "rectify", "s1-safe", None),
    (t("2026-09-17"), "H1", "verify", "s1-head", True),
    (t("2026-09-17", "11:00"), "H1", "close", "safe-head", None),
    (t("2026-10-20"), "H3", "rectify", "k1-head", None),
    (t("2026-10-21"), "H3", "verify", "dep-a", True),
]
# Open intervals and deadlines per round, worked out by hand from the 2026 calendar:
ROUNDS = {
    # 5 working days from Mon 7 Sep: 8, 9, 10, 11, 14. Re-opened on the 11th: 3 working days (14, 15, 16) → 16 Sep.
    "H1": [(t("2026-09-07"), t("2026-09-10"), t("2026-09-14", "17:30")), (t("2026-09-11"), t("2026-09-16"), t("2026-09-16", "17:30"))],
    # 30 days from 1 Sep is 1 Oct (National Day) → 8 Oct.
    "H2": [(t("2026-09-01"), None, t("2026-10-08", "17:30"))],
    # 5 working days from 28 Sep: 29, 30 Sep, 8, 9 Oct and Saturday 10 Oct (a make-up working day).
    "H3": [(t("2026-09-28"), t("2026-10-20"), t("2026-10-10", "17:30"))],
    # found by the yellow check of 27 Oct: 28, 29, 30 Oct, 2, 3 Nov.
    "H4": [(t("2026-10-27"), None, t("2026-11-03", "17:30"))],
}
POINT_CHECKS = {  # point: the moments it is checked
    ("S1", "R1"): [t("2026-09-02"), t("2026-09-09"), t("2026-10-14")],
    ("S2", "R1"): [t("2026-09-10")],
    ("S1", "R2"): [t("2026-09-29"), t("2026-10-27")],  # the second one finds H4
    ("K1", "R1"): [],
}
UPLOADS = {("S1", "2026-09-H1"): t("2026-09-14"), ("S2", "2026-09-H1"): t("2026-09-18"), ("S1", "2026-09-H2"): t("2026-10-09")}


def run_script(rt, ids, day: dt.date, point_ids: dict, hazard_ids: dict, tasks: dict) -> None:
    def act_at(when, work):
        return act(rt, work, when)

    events = []
    for name, (unit, level, rectifier, reporter, when) in HAZARDS.items():
        events.append((when, "report", name))
    for step in STEPS:
        events.append((step[0], "step", step))
    for point, moments in POINT_CHECKS.items():
        events += [(m, "check", (point, m)) for m in moments]
    for (unit, period), when in UPLOADS.items():
        events.append((when, "upload", (unit, period)))
    for when, kind, what in sorted(events, key=lambda e: e[0]):
        if when.date() != day:
            continue
        if kind == "report":
            unit, level, rectifier, reporter, _ = HAZARDS[what]
            hazard_ids[what] = act_at(when, lambda s, org: hazards.report(
                s, rt, org, unit_id=ids[unit], place="现场", description=f"隐患 {what}", level=level,
                rectifier_id=ids[rectifier], reporter_id=ids[reporter], actor=f"person:{reporter}", as_of=when)).hazard_id
        elif kind == "step":
            _, name, action, person, passed = what
            h, pid = hazard_ids[name], ids[person]
            if action == "rectify":
                act_at(when, lambda s, org: hazards.rectify(s, rt, org, h, person_id=pid, note="已整改",
                                                         files=[Upload.of("x.jpg", photo(name))],
                                                         actor=f"person:{person}", as_of=when))
            elif action == "verify":
                act_at(when, lambda s, org: hazards.verify(s, rt, org, h, person_id=pid, passed=passed,
                                                        note=None if passed else "未整改到位", actor=f"person:{person}", as_of=when))
            else:
                act_at(when, lambda s, org: hazards.close(s, rt, org, h, person_id=pid, actor=f"person:{person}", as_of=when))
        elif kind == "check":
            (unit, code), moment = what
            finds = (unit, code) == ("S1", "R2") and moment.date() == dt.date(2026, 10, 27)
            checker = "s1-head" if unit == "S1" and code == "R2" else f"{unit.lower()}-safe"
            done = act_at(when, lambda s, org: hazards.record_check(
                s, rt, org, risk_point_id=point_ids[(unit, code)], person_id=ids[checker],
                result="hazard" if finds else "ok", actor=f"person:{checker}", as_of=when,
                hazard={"description": "隐患 H4", "level": "general", "rectifier_id": ids["s1-safe"]} if finds else None))
            if finds:
                hazard_ids["H4"] = done.hazard_id
        else:
            unit, period = what
            act_at(when, lambda s, org: hazards.record_upload(s, rt, occurrence_id=tasks[(unit, period)], reference=f"JG-{unit}-{period}",
                                                           uploaded_on=when.date(), actor="operator:test", as_of=when))


def fires(schedule, working, until=None) -> list:
    """The events of an escalation schedule that fire, given the working-time runs while open."""
    out = []
    for i, event in enumerate(schedule):
        if event.seq == 0:
            hit = any(w >= event.at for w in working)
        else:
            nxt = schedule[i + 1].at if i + 1 < len(schedule) else dt.datetime.max.replace(tzinfo=TZ)
            hit = any(event.at <= w < nxt for w in working)
        if hit:
            out.append(event)
    return out


def steps_sent(times: list[dt.datetime], working: list[dt.datetime]) -> int:
    bounds = times[1:] + [dt.datetime.max.replace(tzinfo=TZ)]
    return sum(1 for a, b in zip(times, bounds) if any(a <= w < b for w in working))


def expected(rt, ids) -> dict[str, int]:
    cfg = hazard_config(rt)
    s = rt.settings
    runs = [dt.datetime.combine(d, dt.time(9, 0), tzinfo=TZ) for d in days(START, END)]
    work = [r for r in runs if is_working_time(r, rt.calendar, s.work_start, s.work_end)]
    end = dt.datetime.combine(END, dt.time(23, 59), tzinfo=TZ)
    with session_scope() as session:
        org = load_org(session)
    out = Counter()

    # -- risk checks
    levels = {("S1", "R1"): "major", ("S1", "R2"): "general", ("S2", "R1"): "high", ("K1", "R1"): "low"}
    owners = {("S1", "R1"): "s1-safe", ("S2", "R1"): "s2-safe"}
    for point, level in levels.items():
        duty = cfg.check_duties[models.hazard.RiskLevel(level)]
        unit = ids[point[0]]
        people = [ids[owners[point]]] if point in owners else (org.holders(unit, *cfg.data.check_roles) or org.holders(unit, models.RoleKind.principal))
        for period in periods_between(duty.cadence, START - dt.timedelta(days=40), END + dt.timedelta(days=40), rt.terms,
                                      dict(rt.catalog.key_dates), rt.calendar):
            tm = timing(period, duty.window, rt.calendar)
            escalate_at = tm.due_at + duty.escalation.grace
            if not any(tm.opens_at <= r <= escalate_at for r in runs) or tm.due_at < IMPORTED:
                continue
            out[f"checks:{level}"] += 1
            checked = min((m for m in POINT_CHECKS[point] if m >= tm.opens_at), default=None)
            open_work = [w for w in work if w >= tm.opens_at and (checked is None or w < checked)]
            view = TaskView(0, duty.key, unit, None, period.key, tm.opens_at, tm.due_at, escalate_at, "none")
            times = sorted(step_time(st, view) for st in duty.reminders)
            out["check_reminders"] += steps_sent(times, [w for w in open_work if w < escalate_at]) * len(people)
            schedule = [e for e in _until(escalation_schedule(duty.escalation, escalate_at), end)]
            for event in fires(schedule, open_work):
                out["check_escalations"] += 1
                out["check_escalation_notices"] += len([p for p in org.escalation_targets(event.targets, unit) if p not in people])

    # -- hazards
    for name, rounds in ROUNDS.items():
        unit_code, level, rectifier = (HAZARDS[name][:3] if name in HAZARDS else ("S1", "general", "s1-safe"))
        spec = cfg.hazard_levels[models.hazard.HazardLevel(level)]
        unit, rect = ids[unit_code], ids[rectifier]
        found = rounds[0][0]
        out["reported"] += 1
        for k, (start, until, deadline) in enumerate(rounds, start=1):
            open_runs = [r for r in runs if r >= start and (until is None or r < until)]
            open_work = [w for w in open_runs if w in work]
            escalate_at = deadline + spec.escalation.grace
            view = TaskView(0, "hazard", unit, rect, f"r{k}", found, deadline, escalate_at, "none")
            times = sorted(step_time(st, view) for st in spec.reminders)
            out["hazard_reminders"] += steps_sent(times, [w for w in open_work if w < escalate_at])
            out["overdue"] += any(r > deadline for r in open_runs)
            schedule = list(_until(escalation_schedule(spec.escalation, escalate_at), end))
            for event in fires(schedule, open_work):
                out["hazard_escalations"] += 1
                out["hazard_escalation_notices"] += len([p for p in org.escalation_targets(event.targets, unit) if p != rect])
        if spec.notify_at_once:
            out["major_notices"] += len(org.escalation_targets(spec.notify_at_once, unit))

    # -- platform uploads of the half-monthly checks
    duty = rt.catalog.duty(HALF_MONTHLY)
    spec = cfg.data.half_monthly_checks
    for unit_code in ("S1", "S2", "K1"):
        unit = ids[unit_code]
        people = org.assignees(duty.carrier, unit, None)
        for period in periods_between(duty.cadence, START, END, rt.terms, {}, rt.calendar):
            tm = timing(period, duty.window, rt.calendar)
            uploaded = UPLOADS.get((unit_code, period.key))
            stop = tm.due_at + spec.stop_after
            open_work = [w for w in work if w < stop and (uploaded is None or w < uploaded)]
            times = sorted(tm.due_at + st.offset for st in spec.reminders)
            out["upload_reminders"] += steps_sent(times, open_work) * len(people)
    return dict(out)


def _until(schedule, end):
    for event in schedule:
        if event.at > end:
            return
        yield event


def replay(rt, ids, point_ids, hazard_ids, tasks) -> None:
    for day in days(START, END):
        moment = dt.datetime.combine(day, dt.time(9, 0), tzinfo=TZ)
        cycle(rt, HALF_MONTHLY, moment)
        watch(rt, moment)
        with session_scope() as session:
            for tid, code, period in session.execute(
                    sa.select(models.Occurrence.id, models.Unit.code, models.Occurrence.period_key)
                    .join(models.Unit, models.Unit.id == models.Occurrence.unit_id)
                    .where(models.Occurrence.duty_key == HALF_MONTHLY)):
                tasks[(code, period)] = tid
        run_script(rt, ids, day, point_ids, hazard_ids, tasks)


def got(session) -> dict[str, int]:
    N, HE, A = models.Notice.__table__, models.HazardEvent.__table__, models.Audit.__table__

    def count(table, *where):
        return session.scalar(sa.select(sa.func.count()).select_from(table).where(*where))

    out = {f"checks:{lvl}": n for lvl, n in session.execute(sa.select(RC.c.level, sa.func.count()).group_by(RC.c.level))}
    out.update({
        "check_reminders": count(N, N.c.dedupe_key.like("rc:%"), N.c.kind == "reminder"),
        "check_escalations": count(A, A.c.action == "risk_check.escalated"),
        "check_escalation_notices": count(N, N.c.dedupe_key.like("rc:%"), N.c.kind == "escalation"),
        "reported": count(HE, HE.c.action == "reported"),
        "hazard_reminders": count(HE, HE.c.action == "reminded"),
        "overdue": count(HE, HE.c.action == "overdue"),
        "hazard_escalations": count(HE, HE.c.action == "escalated"),
        "hazard_escalation_notices": count(N, N.c.dedupe_key.like("hz:%"), N.c.kind == "escalation"),
        "major_notices": count(N, N.c.kind == "announcement", N.c.dedupe_key.like("hz:%")),
        "upload_reminders": count(N, N.c.dedupe_key.like("u:%")),
    })
    return out


def test_it_replays_two_months_to_the_expected_counts(rt, ids, tmp_path):
    do_import(rt, workbook(tmp_path / "p.xlsx", GOOD))
    with session_scope() as session:
        point_ids = {(u, c): i for i, u, c in session.execute(
            sa.select(RP.c.id, models.Unit.code, RP.c.code).join(models.Unit, models.Unit.id == RP.c.unit_id))}
    hazard_ids, tasks = {}, {}
    replay(rt, ids, point_ids, hazard_ids, tasks)
    want = expected(rt, ids)
    with session_scope() as session:
        have = got(session)
        hazard_notices = Counter(k.split(":")[-1] for (k,) in session.execute(
            sa.select(models.Notice.dedupe_key).where(models.Notice.dedupe_key.like("hz:%"), models.Notice.kind == "reminder")))
        states = dict(session.execute(sa.select(models.Hazard.description, models.Hazard.state)).all())
        messages = Counter(dict(session.execute(sa.select(models.Message.status, sa.func.count()).group_by(models.Message.status)).all()))
        events = Counter(a for (a,) in session.execute(sa.select(models.HazardEvent.action)))
    assert {k: have.get(k, 0) for k in want} == want
    # The figures behind the rules, spelled out: weeks 36–44; 4 half-months; September and October
    # (August was due on the 31st, before the points were registered); the autumn term.
    assert (want["checks:major"], want["checks:high"], want["checks:general"], want["checks:low"]) == (9, 4, 2, 1)
    assert want["reported"] == 4 and want["major_notices"] == 2  # H2 at 二中: 安全科长 and 副局长乙
    assert states == {"隐患 H1": "closed", "隐患 H2": "reported", "隐患 H3": "verified", "隐患 H4": "reported"}
    # assigned ×4, verify (H1 twice; H3's only verifier is its own rectifier), reopened (H1), plus the steps
    assert hazard_notices["assigned"] == 4 and hazard_notices["verify"] == 2 and hazard_notices["reopened"] == 1
    assert sum(v for k, v in hazard_notices.items() if k not in ("assigned", "verify", "reopened")) == want["hazard_reminders"]
    assert (events["rectified"], events["verification_failed"], events["verified"], events["closed"], events["started"]) == (3, 1, 2, 1, 2)
    assert messages["failed"] == 0 and messages["pending"] == 0 and messages["sent"] > 0

    # The same two months again: nothing new.
    with session_scope() as session:
        before = {tname: session.scalar(sa.text(f"select count(*) from {tname}"))
                  for tname in ("risk_check", "hazard", "hazard_event", "notice", "message", "platform_upload")}
    for day in days(START, END):
        moment = dt.datetime.combine(day, dt.time(9, 0), tzinfo=TZ)
        cycle(rt, HALF_MONTHLY, moment)
        watch(rt, moment)
    with session_scope() as session:
        after = {tname: session.scalar(sa.text(f"select count(*) from {tname}")) for tname in before}
    assert after == before
