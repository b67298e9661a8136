"""The shipped duty catalog: it loads, it quotes its documents faithfully, it covers the duties
the documents impose, and a malformed catalog fails with a message naming file, duty and field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from models.org import KINDERGARTEN_KINDS, UnitKind
from pingan.duties.catalog import Catalog, CatalogError, load_catalog

REPO = Path(__file__).resolve().parents[1]
CATALOG_DIR = REPO / "catalog"
SEEDS_DIR = Path(__file__).resolve().parents[1] / "catalog" / "sources"
DEHUI = "000_835012ae156b196b.txt"
ERDAO = "002_8ab6cc7abff1c59e.txt"

SCHOOLS_AND_KINDERGARTENS = {
    UnitKind.primary, UnitKind.junior, UnitKind.nine_year, UnitKind.senior, UnitKind.vocational,
    UnitKind.kindergarten, UnitKind.private_kindergarten,
}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def seeds() -> Path:
    if not (SEEDS_DIR / DEHUI).is_file() or not (SEEDS_DIR / ERDAO).is_file():
        pytest.skip(f"source documents not found in {SEEDS_DIR}: cannot check the catalog's wording")
    return SEEDS_DIR


@pytest.fixture(scope="module")
def catalog(seeds: Path) -> Catalog:
    return load_catalog(CATALOG_DIR, seeds=seeds)


@pytest.fixture(scope="module")
def documents(seeds: Path) -> dict[str, str]:
    return {name: (seeds / name).read_text(encoding="utf-8") for name in (DEHUI, ERDAO)}


# --------------------------------------------------------------------------- clause markers

_SPACE = re.compile(r"\s+")
_DIGITS = "一二三四五六七八九"
_CLAUSE = re.compile(r"^(?P<part>[一二三四五六七八九十]+)?(?:（(?P<item>[一二三四五六七八九十]+)）)?(?P<point>\d+)?$")


def chinese_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 14 → 十四, 20 → 二十 (enough for the documents' numbering)."""
    if not 1 <= n <= 99:
        raise ValueError(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens - 1] + "十")
    return head + ("" if ones == 0 else _DIGITS[ones - 1])


def chinese_value(numeral: str) -> int:
    for n in range(1, 100):
        if chinese_numeral(n) == numeral:
            return n
    raise ValueError(numeral)


def _point(n: int) -> re.Pattern[str]:
    # "5." but not "“5.12”" nor "15." nor "2021."
    return re.compile(rf"(?<![\d.]){n}\.(?!\d)")


def clause_section(document: str, clause: str) -> str:
    """The text of ``clause`` in ``document``, whitespace removed; ``AssertionError`` if absent.

    ``七（四）`` is part 七 (from "七、" to "八、"), item （四） in it (from "（四）" to "（五）");
    ``六（二）4`` is point "4." of that item; ``5`` is point "5." of the whole document.
    Parts and items are found in order, so a "二、" inside part 一 cannot be taken for part 二.
    """
    text = _SPACE.sub("", document)
    match = _CLAUSE.match(clause)
    assert match and any(match.groupdict().values()), f"clause {clause!r} is not like 七（四）, 六（二）4 or 5"
    start, end = 0, len(text)

    def locate(markers: list[str], what: str) -> None:
        nonlocal start, end
        pos = start
        for marker in markers[:-1]:
            found = text.find(marker, pos, end)
            assert found >= 0, f"clause {clause!r}: {what} marker {marker!r} not found in order"
            pos = found + len(marker)
        nxt = text.find(markers[-1], pos, end)
        start, end = pos - len(markers[-2]), (nxt if nxt >= 0 else end)

    if match["part"]:
        n = chinese_value(match["part"])
        locate([f"{chinese_numeral(i)}、" for i in range(1, n + 2)], "part")
    if match["item"]:
        n = chinese_value(match["item"])
        locate([f"（{chinese_numeral(i)}）" for i in range(1, n + 2)], "item")
    if match["point"]:
        n = int(match["point"])
        here = _point(n).search(text, start, end)
        assert here, f"clause {clause!r}: point marker '{n}.' not found"
        after = _point(n + 1).search(text, here.end(), end)
        start, end = here.start(), (after.start() if after else end)
    return text[start:end]


def test_it_locates_clause_markers(documents: dict[str, str]) -> None:
    dehui, erdao = documents[DEHUI], documents[ERDAO]
    assert clause_section(dehui, "七（四）").startswith("（四）每月至少召开1次安全稳定工作形势分析会议")
    assert clause_section(dehui, "二（三）").startswith("（三）把学校安全工作纳入")
    assert clause_section(dehui, "六（二）4").startswith("4.负责新入职人员")
    assert clause_section(dehui, "七（十五）").startswith("（十五）建立完善本单位安全考核评价体系")
    assert clause_section(erdao, "5").startswith("5.完善隐患排查治理常态化机制")
    assert clause_section(erdao, "14").startswith("14.积极开展安全教育活动")  # mid-line in the file
    assert "“5.12”" in clause_section(erdao, "14")
    with pytest.raises(AssertionError):
        clause_section(dehui, "八（一）")
    with pytest.raises(AssertionError):
        clause_section(erdao, "18")


# --------------------------------------------------------------------------- the shipped catalog

def test_it_loads_the_shipped_catalog_and_its_wording(catalog: Catalog) -> None:
    assert set(catalog.documents) == {DEHUI, ERDAO}
    assert catalog.documents[DEHUI] == "德惠市教育局党政领导干部安全生产权利责任清单"
    assert catalog.documents[ERDAO] == "二道区教育系统 2021 年中小学（幼儿园）安全工作要点"
    per_document = {doc: sum(d.source.document == doc for d in catalog.duties.values()) for doc in catalog.documents}
    assert per_document[DEHUI] >= 25 and per_document[ERDAO] >= 18, per_document
    # The only shipped local file switches off Erdao twins of Dehui duties, nothing else (since issue
    # 14 also the section's yearly training, the twin of 五（十三）; erdao-school-self-check is off in
    # its own file, as the twin of 二道 5's half-monthly check).
    assert [p.name for p in (CATALOG_DIR / "local").glob("*.yaml")] == ["combined.yaml"]
    switched_off = {d.key for d in catalog.duties.values() if not d.enabled}
    assert switched_off and all(key.startswith("erdao-") for key in switched_off)
    assert "erdao-annual-staff-training" in switched_off and "safety-section-annual-post-training" not in switched_off


def test_it_finds_every_entry_in_its_clause(catalog: Catalog, documents: dict[str, str]) -> None:
    for duty in catalog.duties.values():
        section = clause_section(documents[duty.source.document], duty.source.clause)
        assert _SPACE.sub("", duty.text) in section, f"{duty.key}: text is not in clause {duty.source.clause}"


def test_it_explains_every_default_it_chose(catalog: Catalog) -> None:
    vague = ("定期", "常态化")
    for duty in catalog.duties.values():
        if any(word in duty.text for word in vague):
            assert duty.default_note, f"{duty.key}: the text says {vague} but no default_note explains the cadence"


def test_it_uses_only_known_evidence_kinds_and_names(catalog: Catalog) -> None:
    for duty in catalog.duties.values():
        assert duty.name and duty.name_en and duty.evidence
        if duty.sensitive:
            assert duty.flow == "cycle", f"{duty.key}: only planned duties are tightened"
    assert catalog.evidence_kinds["hazard_check_report"].fields
    reference = [f for f in catalog.evidence_kinds["hazard_check_report"].fields if f.type == "reference"]
    assert reference and reference[0].required, "the platform upload reference is required"
    assert {"upload_date"} <= {f.key for f in catalog.evidence_kinds["hazard_check_report"].fields}


def _kinds(duty) -> set[UnitKind]:
    return set(duty.carrier.unit_kinds)


def test_it_covers_the_leadership_meetings_and_inspections(catalog: Catalog) -> None:
    meeting = catalog.duty("bureau-quarterly-safety-meeting")
    assert (meeting.source.clause, meeting.cadence.every) == ("一（二）", "quarterly")
    assert meeting.carrier.scope == "unit" and _kinds(meeting) == {UnitKind.bureau}
    # the principal carries it: nobody above him in the bureau (issue 14 finding 5; was "leadership")
    assert meeting.escalation.key == "principal-own" and meeting.evidence == ("meeting_minutes",)

    principal = catalog.duty("bureau-principal-quarterly-inspection")
    assert principal.cadence.every == "quarterly" and principal.sensitive.every == "weekly"
    assert principal.carrier.roles == ("principal",) and _kinds(principal) == {UnitKind.bureau}

    leaders = catalog.duty("bureau-leader-quarterly-inspection")
    assert leaders.carrier.scope == "person" and leaders.carrier.roles == ("leader",)
    assert leaders.cadence.every == "quarterly" and leaders.sensitive.every == "weekly"
    assert leaders.evidence == ("inspection_record",)

    lead = catalog.duty("safety-lead-quarterly-inspection")
    assert lead.carrier.roles == ("safety_lead",) and lead.sensitive.every == "weekly"

    assert catalog.duty("bureau-principal-half-yearly-supervision").cadence.every == "half_yearly"
    assert catalog.duty("bureau-principal-quarterly-party-meeting").cadence.every == "quarterly"
    assert catalog.duty("leader-quarterly-safety-meeting").carrier.scope == "person"


def test_it_covers_the_school_cycle(catalog: Catalog) -> None:
    meeting = catalog.duty("school-monthly-safety-meeting")
    assert (meeting.source.clause, meeting.cadence.every) == ("七（四）", "monthly")
    assert _kinds(meeting) == SCHOOLS_AND_KINDERGARTENS
    assert set(meeting.carrier.roles) == {"principal", "safety_officer"}

    patrol = catalog.duty("school-daily-patrol")
    assert patrol.cadence.every == "daily" and patrol.cadence.workdays_only and patrol.cadence.in_term_only
    assert patrol.escalation.key == "fast" and [s.key for s in patrol.reminders] == ["due-3h"]
    assert patrol.evidence == ("patrol_log",)

    for key in ("school-half-monthly-hazard-check", "erdao-school-half-monthly-hazard-check"):
        hazard = catalog.duty(key)
        assert hazard.cadence.every == "half_monthly" and hazard.flow == "cycle"
        assert hazard.evidence == ("hazard_check_report",) and hazard.escalation.key == "fast"
        assert hazard.sensitive.every == "weekly"

    # Issue 14 finding 6: 二道 2 "每月组织实施 2 次…自查" was monthly × 2, both due at the month's end;
    # it is one check per half month, and the same obligation as 二道 5's half-monthly self-check.
    self_check = catalog.duty("erdao-school-self-check")
    assert (self_check.cadence.every, self_check.cadence.times) == ("half_monthly", 1)
    assert not self_check.enabled


def test_a_school_is_asked_for_two_self_checks_a_month_spread_through_it(catalog: Catalog) -> None:
    import datetime as dt

    from pingan.core.calendar import WorkCalendar
    from pingan.core.periods import Terms, periods_between, timing

    checks = [d for d in catalog.planned if {"self-check", "hazard"} & set(d.tags)
              and UnitKind.primary in d.carrier.unit_kinds]
    dues = sorted(
        timing(p, d.window, WorkCalendar()).due_at.date()
        for d in checks
        for p in periods_between(d.cadence, dt.date(2026, 11, 1), dt.date(2026, 11, 30), Terms(), {})
    )
    # November 2026: Sunday the 15th moves to Monday the 16th; the 30th is a Monday
    assert dues == [dt.date(2026, 11, 16), dt.date(2026, 11, 30)]


def test_it_covers_the_drills(catalog: Catalog) -> None:
    for schools, kindergartens in (("school-monthly-drill", "kindergarten-quarterly-drill"),
                                   ("erdao-school-monthly-drill", "erdao-kindergarten-quarterly-drill")):
        school, kg = catalog.duty(schools), catalog.duty(kindergartens)
        assert school.cadence.every == "monthly" and kg.cadence.every == "quarterly"
        assert not _kinds(school) & KINDERGARTEN_KINDS and _kinds(school)
        assert _kinds(kg) == set(KINDERGARTEN_KINDS)
        assert school.evidence == kg.evidence == ("drill_record",)
    assert catalog.duty("school-monthly-drill").source.clause == "七（七）"

    fire = catalog.duty("erdao-semester-fire-drill")
    assert (fire.source.clause, fire.cadence.every, fire.evidence) == ("8", "semester", ("drill_record",))
    assert catalog.duty("erdao-semester-fire-training").evidence == ("training_record",)
    bus = catalog.duty("erdao-school-bus-evacuation-drill")
    assert bus.cadence.every == "semester" and bus.carrier.require == {"has_school_bus": True}


def test_it_covers_the_yearly_duties(catalog: Catalog) -> None:
    letters = catalog.duty("bureau-annual-responsibility-letters")
    assert (letters.source.clause, letters.cadence.every) == ("二（八）", "yearly")
    assert letters.evidence == ("responsibility_letter",) and letters.reminders[0].key == "open"
    assert catalog.duty("erdao-responsibility-letters").cadence.every == "yearly"
    assert catalog.duty("school-bus-responsibility-letter").carrier.require == {"has_school_bus": True}
    assert catalog.duty("school-annual-safety-work-plan").evidence == ("work_plan",)
    assert catalog.duty("bureau-annual-safety-assessment").evidence == ("assessment_record",)
    assert catalog.duty("erdao-annual-staff-training").evidence == ("training_record",)
    assert catalog.duty("erdao-emergency-plan-review").evidence == ("plan_review",)
    twice = catalog.duty("erdao-concentrated-governance-actions")
    assert (twice.cadence.every, twice.cadence.times) == ("yearly", 2)


def test_it_covers_the_key_dates(catalog: Catalog) -> None:
    school = catalog.duty("school-key-date-education")
    assert school.cadence.every == "key_date"
    assert set(school.cadence.key_dates) == {"safety_education_day", "disaster_prevention_day", "fire_safety_day"}
    assert school.window.opens_before.days == 14 and school.window.due_after.days == 3
    assert "term_start" in catalog.duty("erdao-key-date-education").cadence.key_dates
    assert catalog.duty("erdao-drowning-prevention-education").cadence.key_dates == ("summer_break",)


def test_it_covers_incidents_and_holidays(catalog: Catalog) -> None:
    incident = catalog.duty("school-incident-report")
    assert (incident.source.clause, incident.cadence.every, incident.flow) == ("七（十）", "event", "incident")
    assert incident.escalation.key == "immediate" and incident.reminders == ()
    assert "30 分钟内电话口头报告" in incident.text and "2 小时内简要书面报告" in incident.text
    assert not incident.planned

    roster = catalog.duty("erdao-holiday-duty-roster")
    zero = catalog.duty("erdao-holiday-zero-report")
    for duty in (roster, zero):
        assert (duty.source.clause, duty.cadence.every, duty.flow) == ("7", "holiday", "holiday")
        assert _kinds(duty) == SCHOOLS_AND_KINDERGARTENS
    assert roster.evidence == ("roster",) and zero.evidence == ("zero_report",)
    assert [s.key for s in zero.reminders] == ["due-3h"]


def test_it_loads_the_example_override(tmp_path: Path, seeds: Path) -> None:
    directory = copy_catalog(tmp_path)
    shutil.copy(directory / "local" / "example.yaml.disabled", directory / "local" / "example.yaml")
    catalog = load_catalog(directory, seeds=seeds)
    kg = catalog.duty("kindergarten-quarterly-drill")
    assert kg.cadence.every == "monthly" and kg.cadence.in_term_only  # merged, not replaced
    assert kg.text == load_catalog(CATALOG_DIR).duty("kindergarten-quarterly-drill").text
    hazard = catalog.duty("school-half-monthly-hazard-check")
    assert hazard.window.due_after.days == 2 and hazard.window.due_time.hour == 18
    assert catalog.duty("local-dormitory-weekly-check").carrier.require == {"has_dormitory": True}


# --------------------------------------------------------------------------- bad catalogs

def copy_catalog(tmp_path: Path) -> Path:
    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, directory)
    return directory


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def edit_duty(path: Path, key: str, change) -> None:
    def apply(data):
        (entry,) = [e for e in data["duties"] if e["key"] == key]
        change(entry)

    edit(path, apply)


def load_error(directory: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    return str(caught.value)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} missing from: {message}"


KEY = "school-monthly-safety-meeting"


def test_it_rejects_an_unknown_cadence(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "dehui-bureau.yaml", KEY, lambda e: e["cadence"].update(every="fortnightly"))
    assert_names(load_error(directory), "dehui-bureau.yaml", f"'{KEY}'", "field cadence.every")


def test_it_rejects_a_bad_duration(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "dehui-bureau.yaml", KEY, lambda e: e.update(window={"opens_before": "7x"}))
    assert_names(load_error(directory), "dehui-bureau.yaml", f"'{KEY}'", "field window.opens_before", "'7x'")


def test_it_rejects_an_unknown_evidence_kind(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "dehui-bureau.yaml", KEY, lambda e: e.update(evidence=["meeting_minutes", "selfie"]))
    assert_names(load_error(directory), "dehui-bureau.yaml", f"'{KEY}'", "field evidence", "'selfie'")


def test_it_rejects_an_unknown_escalation_policy(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "erdao-2021.yaml", "erdao-semester-fire-drill", lambda e: e.update(escalation="urgent"))
    assert_names(load_error(directory), "erdao-2021.yaml", "'erdao-semester-fire-drill'", "field escalation", "'urgent'")


def test_it_rejects_a_duplicate_key(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)

    def duplicate(data):
        twin = dict(data["duties"][0], key=KEY)
        data["duties"].append(twin)

    edit(directory / "erdao-2021.yaml", duplicate)
    assert_names(load_error(directory), "erdao-2021.yaml", f"'{KEY}'", "key already defined in dehui-bureau.yaml")


def test_it_rejects_a_wrong_source_document(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "dehui-bureau.yaml", KEY, lambda e: e["source"].update(document=ERDAO))
    assert_names(load_error(directory), "dehui-bureau.yaml", f"'{KEY}'", "field source.document", DEHUI)


def test_it_rejects_an_override_of_an_unknown_duty(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    (directory / "local" / "10-county.yaml").write_text(
        "overrides:\n  school-weekly-tea-party:\n    cadence: {every: monthly}\n", encoding="utf-8"
    )
    assert_names(load_error(directory), "10-county.yaml", "overrides", "'school-weekly-tea-party'")


def test_it_rejects_a_local_override_that_breaks_an_entry(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    # Moving a key-date duty to a monthly cadence without clearing key_dates is invalid.
    (directory / "local" / "10-county.yaml").write_text(
        "overrides:\n  school-key-date-education:\n    cadence: {every: monthly}\n", encoding="utf-8"
    )
    message = load_error(directory)
    assert_names(message, "local/10-county.yaml", "'school-key-date-education'", "field cadence", "key_dates")


def test_it_rejects_a_local_override_with_a_bad_value(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    (directory / "local" / "10-county.yaml").write_text(
        "overrides:\n  school-daily-patrol:\n    window: {due_after: 2 days}\n", encoding="utf-8"
    )
    assert_names(load_error(directory), "10-county.yaml", "'school-daily-patrol'", "field window.due_after")


def test_it_rejects_invalid_yaml(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    path = directory / "erdao-2021.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  - key: [unclosed\n", encoding="utf-8")
    assert_names(load_error(directory), "erdao-2021.yaml", "not valid YAML")


def test_it_rejects_a_holiday_duty_on_the_cycle_flow(tmp_path: Path) -> None:
    directory = copy_catalog(tmp_path)
    edit_duty(directory / "erdao-2021.yaml", "erdao-holiday-zero-report", lambda e: e.update(flow="cycle"))
    assert_names(load_error(directory), "erdao-2021.yaml", "'erdao-holiday-zero-report'", "special flow")


def test_four_seasons_five_checks_follow_the_campaigns_the_point_names(catalog: Catalog) -> None:
    # Issue 14 finding 7: 二道 5 names 冬春防火、夏季攻坚、秋冬会战; calendar quarters were not them.
    import datetime as dt

    from pingan.core.calendar import WorkCalendar
    from pingan.core.periods import Terms, periods_between, timing

    text = "持续实施冬春防火、夏季攻坚、秋冬会战等立体式校园安全“四季五查”"
    seasonal = [d for d in catalog.planned if d.source.clause == "5" and "四季五查" in d.name]
    assert "erdao-seasonal-inspection" not in catalog.duties
    spans = {}
    for d in seasonal:
        campaign = next(c for c in ("冬春防火", "夏季攻坚", "秋冬会战") if c in d.name)
        assert campaign in text
        (period,) = periods_between(d.cadence, dt.date(2027, 1, 1), dt.date(2027, 12, 31), Terms(), dict(catalog.key_dates))
        t = timing(period, d.window, WorkCalendar())
        spans[campaign] = (t.opens_at.date(), t.due_at.date())
    # winter-spring before the summer, the summer, autumn-winter to the year's end: the year covered once
    assert spans == {
        "冬春防火": (dt.date(2027, 1, 1), dt.date(2027, 4, 30)),
        "夏季攻坚": (dt.date(2027, 5, 1), dt.date(2027, 8, 31)),
        "秋冬会战": (dt.date(2027, 9, 1), dt.date(2027, 12, 31)),
    }


_CADENCE_WORDS = {  # the words of a document that give each cadence its number
    "daily": ("每天", "每日"), "weekly": ("每周",), "half_monthly": ("每半月",), "monthly": ("每月",),
    "quarterly": ("每季度",), "half_yearly": ("每半年", "每年召开两次"), "semester": ("每学期",),
    "yearly": ("年度", "每年", "全年"),
}


def test_every_number_the_documents_do_not_give_is_marked_a_local_default(catalog: Catalog) -> None:
    # Issue 14 finding 9: a cadence the text does not state (定期, 常态化, no number), any due window
    # and any tightening in a sensitive period are the installation's, and are marked as such.
    for d in catalog.duties.values():
        words = _CADENCE_WORDS.get(d.cadence.every)
        if words is not None and not any(w in d.text for w in words):
            assert "cadence" in d.local_defaults, f"{d.key}: {d.cadence.every} is not in its text"
        if d.window.due_after or d.window.due_within or d.window.opens_before:
            assert "window" in d.local_defaults, d.key
        if d.sensitive is not None:
            assert "sensitive" in d.local_defaults, d.key
    routine = catalog.duty("inspection-office-routine-supervision")  # 常态化督导: monthly is ours
    assert "常态化" in routine.text and "cadence" in routine.local_defaults


def test_catalog_list_shows_the_local_defaults_to_the_operator() -> None:
    from typer.testing import CliRunner

    from pingan.cli import app

    out = CliRunner().invoke(app, ["catalog", "list"], terminal_width=240)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "责任督学学校安全常态化督导" in line)
    assert "※" in row and "频次" in row
    assert "隐患整改时限（※ 本地默认值）" in out.output
    shown = CliRunner().invoke(app, ["catalog", "show", "school-half-monthly-hazard-check"], terminal_width=240)
    assert shown.exit_code == 0 and "敏感时期加密频次 ※" in shown.output
    missing = CliRunner().invoke(app, ["catalog", "show", "no-such-duty"])
    assert missing.exit_code == 2 and "no-such-duty" in missing.output


def test_the_duties_the_reading_found_missing_are_there(catalog: Catalog) -> None:
    # Issue 14 finding 3: 五（五） 负责所属学校大型活动的安全稳定审查和备案; 二道 11 各校要加强防踩踏安全教育
    # 及应急演练; and, by a full reading: 五（十三） 岗位安全培训, 六（六）6 幼儿园大型活动的审查和备案,
    # 六（八）10 职业学校大型社会实践活动审查和备案, 七（十二） 预防校园欺凌和暴力专题教育,
    # 七（十五） 安全考核评价体系…严格考核奖惩, 二道 14 家访、家长会和致家长一封信.
    by_clause: dict[tuple[str, str], list] = {}
    for d in catalog.duties.values():
        by_clause.setdefault((d.source.document[:3], d.source.clause), []).append(d)
    for doc, clause, words in [("000", "五（五）", "大型活动"), ("002", "11", "防踩踏"), ("000", "五（十三）", "岗位安全培训"),
                               ("000", "六（六）6", "大型活动"), ("000", "六（八）10", "社会实践活动"),
                               ("000", "七（十二）", "欺凌"), ("000", "七（十五）", "考核"), ("002", "14", "家长")]:
        found = [d for d in by_clause.get((doc, clause), []) if words in d.text and d.planned]
        assert found, f"{clause}: no planned duty for {words}"
    stampede = next(d for d in by_clause[("002", "11")])
    assert {"education_activity", "drill_record"} <= set(stampede.evidence)
    assert UnitKind.primary in stampede.carrier.unit_kinds


def test_the_letter_to_parents_comes_before_both_breaks(catalog: Catalog) -> None:
    import datetime as dt

    from pingan.core.periods import Terms, periods_between

    d = catalog.duty("erdao-parent-safety-letter")
    days = [p.start for p in periods_between(d.cadence, dt.date(2026, 1, 1), dt.date(2026, 12, 31), Terms(), dict(catalog.key_dates))]
    # the default terms end on 15 January (autumn term of 2025) and 15 July (spring term of 2026)
    assert days == [dt.date(2026, 1, 15), dt.date(2026, 7, 15)]
