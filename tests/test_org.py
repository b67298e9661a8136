"""The organisation from the shell: ``pingan init``, ``import``, ``export`` and ``org``.

Commands run in-process through Typer's CliRunner against a migrated database (SQLite, and
PostgreSQL where the database matters). Files are the bureau's: a workbook with the sheets
单位 and 人员, or a directory holding units.csv and persons.csv.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from factories import make_catalog_dir
from typer.testing import CliRunner

from pingan.cli import app
from pingan.cli.app import console
from pingan.core.db import dispose_engines, get_engine, session_scope
from pingan.core.sheets import letter
from pingan.org.data import ChannelRow, OrgData, PersonRow, RoleRow, UnitRow
from pingan.org.demo import demo_organisation
from pingan.org.service import store_org
from pingan.duties.runtime import get_runtime, reset_runtime
from pingan.core.settings import reset_settings
from models import RoleKind, UnitKind

# Channel URLs holding secrets: none of these strings may ever reach a screen or an export.
WECOM_KEY, MAIL_PASSWORD, HEADER_TOKEN = "k3yWeCom0123456789abcdef", "S3cr3tPa55", "T0kenHeader987"
SECRETS = (WECOM_KEY, MAIL_PASSWORD, HEADER_TOKEN)
CHIEF_URL = f"wecombot://{WECOM_KEY}"
DEPUTY_URL = f"mailto://ops:{MAIL_PASSWORD}@example.com"
HOOK_URL = f"json://hooks.example.com/notify?+X-Token={HEADER_TOKEN}"
TABLES = {"unit": "id", "person": "id", "role": "id", "channel": "id", "audit": "id", "duty": "key"}
SHEETS = {"units": "单位", "persons": "人员"}


def base_org() -> OrgData:
    """A bureau with its safety section, a primary school and a kindergarten."""
    data = OrgData(source="test", tables={"units", "persons"})
    data.units += [
        UnitRow("B", "测试市教育局", UnitKind.bureau),
        UnitRow("SAFE", "学校安全科", UnitKind.department, "B", function="safety"),
        UnitRow("S1", "测试市第一小学", UnitKind.primary, "B", has_canteen=True),
        UnitRow("K1", "测试市实验幼儿园", UnitKind.kindergarten, "B"),
    ]
    data.persons += [
        PersonRow("chief", "王局长", "B", "局长", "13900000001"),
        PersonRow("deputy", "李副局长", "B", "副局长（分管安全工作）", "13900000002", "deputy@example.com"),
        PersonRow("safe-head", "张科长", "SAFE", "学校安全科科长"),
        PersonRow("s1-head", "赵校长", "S1", "校长"),
        PersonRow("s1-safe", "钱主任", "S1", "安全主任"),
        PersonRow("k1-head", "孙园长", "K1", "园长"),
    ]
    data.roles += [
        RoleRow("chief", "B", RoleKind.principal), RoleRow("deputy", "B", RoleKind.safety_lead),
        RoleRow("deputy", "B", RoleKind.leader), RoleRow("deputy", "S1", RoleKind.patron),
        RoleRow("deputy", "K1", RoleKind.patron), RoleRow("deputy", "SAFE", RoleKind.in_charge),
        RoleRow("safe-head", "SAFE", RoleKind.principal), RoleRow("s1-head", "S1", RoleKind.principal),
        RoleRow("s1-safe", "S1", RoleKind.safety_officer), RoleRow("k1-head", "K1", RoleKind.principal),
    ]
    data.channels += [
        ChannelRow("chief", 1, CHIEF_URL), ChannelRow("deputy", 1, DEPUTY_URL), ChannelRow("deputy", 2, HOOK_URL),
        *(ChannelRow(code, 1, f"pingan://local/{code}") for code in ("safe-head", "s1-head", "s1-safe", "k1-head")),
    ]
    return data


# --------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps at 80 columns off a terminal; messages are asserted whole."""
    monkeypatch.setattr(console, "width", 400)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of the organisation, audit and duty tables: equal snapshots mean nothing was written."""
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY {order}"))]
                for name, order in TABLES.items()}


def query(engine: sa.Engine, sql: str, **params) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def audit_details(engine: sa.Engine) -> list[dict]:
    """The detail of every org.load audit row, oldest first."""
    rows = query(engine, "SELECT detail FROM audit WHERE action = 'org.load' ORDER BY id")
    return [d if isinstance(d, dict) else json.loads(d) for d, in rows]


def read_tables(path: Path) -> dict[str, list[list]]:
    """The sheets (or CSV files) of an import file as rows of cells, header first."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        return {kind: [["" if v is None else v for v in row] for row in wb[sheet].iter_rows(values_only=True)]
                for kind, sheet in SHEETS.items() if sheet in wb.sheetnames}
    out = {}
    for kind in SHEETS:
        if (path / f"{kind}.csv").exists():
            with open(path / f"{kind}.csv", encoding="utf-8-sig", newline="") as fh:
                out[kind] = list(csv.reader(fh))
    return out


def write_tables(path: Path, tables: dict[str, list[list]]) -> Path:
    if path.suffix == ".xlsx":
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for kind, rows in tables.items():
            ws = wb.create_sheet(SHEETS[kind])
            for row in rows:
                ws.append(row)
        wb.save(path)
        return path
    for kind in SHEETS:
        (path / f"{kind}.csv").unlink(missing_ok=True)
    for kind, rows in tables.items():
        with open(path / f"{kind}.csv", "w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return path


def cell_text(tables: dict[str, list[list]]) -> str:
    return "\n".join(str(v) for rows in tables.values() for row in rows for v in row)


def new_row(rows: list[list], **cells) -> list:
    """A row for this table's header: cells by header name, the rest empty."""
    header = rows[0]
    assert set(cells) <= set(header), set(cells) - set(header)
    return [cells.get(h, "") for h in header]


def set_cell(rows: list[list], code: str, column: str, value) -> int:
    """Set a cell of the row whose first cell (the code) is ``code``; return its row number."""
    i = next(i for i, row in enumerate(rows) if row[0] == code)
    rows[i][rows[0].index(column)] = value
    return i + 1


def drop_rows(rows: list[list], *codes: str) -> None:
    rows[:] = [row for row in rows if row[0] not in codes]


@pytest.fixture
def org(migrated_db) -> sa.Engine:
    """The migrated database holding ``base_org()``."""
    with session_scope(migrated_db) as session:
        store_org(session, base_org(), actor="test")
    return migrated_db


def no_formulas(path: Path) -> bool:
    """No cell of the workbook holds a formula, read from the file's XML itself."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        return bool(sheets) and not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)


def export(tmp_path: Path, fmt: str, *options: str) -> Path:
    path = tmp_path / ("org.xlsx" if fmt == "xlsx" else "org")
    result = cli("export", path, *options)
    assert result.exit_code == 0, result.output
    return path


# --------------------------------------------------------------------------- pingan init

@pytest.fixture
def pingan_db(db_url, monkeypatch) -> str:
    """``db_url`` made pingan's database, not migrated."""
    monkeypatch.setenv("PINGAN_DATABASE_URL", db_url)
    reset_settings()
    reset_runtime()
    dispose_engines()
    return db_url


def test_it_initialises_the_database_catalog_and_demo_once(pingan_db):
    first = cli("init", "--demo")
    assert first.exit_code == 0, first.output
    assert "数据库已升级到" in first.stdout
    engine = get_engine(pingan_db)
    demo = demo_organisation().counts()
    assert query(engine, "SELECT count(*) FROM unit")[0][0] == demo["units"]
    assert query(engine, "SELECT count(*) FROM person")[0][0] == demo["persons"]
    assert query(engine, "SELECT count(*) FROM role")[0][0] == demo["roles"]
    assert query(engine, "SELECT count(*) FROM channel")[0][0] == demo["channels"]
    assert {key for key, in query(engine, "SELECT key FROM duty WHERE active")} == set(get_runtime().catalog.duties)
    assert query(engine, "SELECT actor FROM audit WHERE action = 'org.load'")[0][0].startswith("operator:")
    before = snapshot(engine)

    second = cli("init", "--demo")

    assert second.exit_code == 0, second.output
    assert "数据库结构已是最新" in second.stdout
    assert "无变化：数据库和职责目录已是最新，示例组织已载入" in second.stdout
    assert snapshot(engine) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_keeps_an_operators_edits_to_the_demo(pingan_db, tmp_path):
    assert cli("init", "--demo").exit_code == 0
    path = export(tmp_path, "csv", "--with-secrets")
    tables = read_tables(path)
    set_cell(tables["persons"], "DH-L01", "通知渠道1", CHIEF_URL)
    set_cell(tables["units"], "DH-S040", "启用", "否")
    drop_rows(tables["persons"], *[row[0] for row in tables["persons"][2:]])  # DH-L01 alone
    drop_rows(tables["units"], *[row[0] for row in tables["units"][1:] if row[0] != "DH-S040"])
    write_tables(path, tables)
    assert cli("import", path).exit_code == 0

    again = cli("init", "--demo")

    assert "无变化" in again.stdout
    engine = get_engine(pingan_db)
    assert query(engine, "SELECT c.url FROM channel c JOIN person p ON p.id = c.person_id "
                         "WHERE p.code = 'DH-L01'") == [(CHIEF_URL,)]
    assert query(engine, "SELECT active FROM unit WHERE code = 'DH-S040'") == [(False,)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_syncs_the_catalog_with_its_local_overrides(pingan_db, tmp_path, monkeypatch):
    catalog = make_catalog_dir(tmp_path)
    (catalog / "local").mkdir()
    override = catalog / "local" / "ours.yaml"
    override.write_text("overrides:\n  school-meeting: {name: 本地学校安全会}\n", encoding="utf-8")
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(catalog))
    reset_settings()
    reset_runtime()
    engine = get_engine(pingan_db)

    assert cli("init").exit_code == 0
    assert query(engine, "SELECT name FROM duty WHERE key = 'school-meeting'") == [("本地学校安全会",)]
    assert query(engine, "SELECT count(*) FROM unit") == [(0,)]  # no --demo, no organisation

    override.write_text("overrides:\n  school-meeting: {name: 本地学校安全会（改）}\n", encoding="utf-8")
    reset_runtime()
    again = cli("init")
    assert again.exit_code == 0, again.output
    assert re.search(r"职责\s*│\s*0\s*│\s*1\s*│\s*0\s*│\s*4\s*│", again.stdout)  # new, updated, removed, total
    assert query(engine, "SELECT name FROM duty WHERE key = 'school-meeting'") == [("本地学校安全会（改）",)]
    assert cli("init").stdout.endswith("无变化：数据库和职责目录都已是最新\n")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_refuses_a_broken_catalog_before_touching_the_database(pingan_db, tmp_path, monkeypatch):
    catalog = make_catalog_dir(tmp_path)
    (catalog / "test.yaml").write_text("document: test.txt\nduties: [{key: x}]\n", encoding="utf-8")
    monkeypatch.setenv("PINGAN_CATALOG_DIR", str(catalog))
    reset_settings()
    reset_runtime()
    assert "test.yaml" in one_line_error(cli("init", "--demo"))
    assert not Path(sa.make_url(pingan_db).database).exists()


@pytest.mark.parametrize("command", [["org"], ["export", "x.xlsx"], ["import", "x.xlsx"]])
def test_it_asks_for_init_before_using_an_empty_database(command):
    assert "pingan init" in one_line_error(cli(*command))


@pytest.mark.parametrize("command", [["export", "org.csv"], ["import", "--template", "org.csv"]])
def test_it_writes_a_workbook_or_a_directory_only(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ".xlsx" in one_line_error(cli(*command))
    assert not (tmp_path / "org.csv").exists()


# --------------------------------------------------------------------------- import errors

def _unknown_kind(t):
    t["units"].append(new_row(t["units"], 单位编码="U9", 单位名称="测试大学", 类型="大学", 上级单位编码="B"))
    return "units", len(t["units"]), "类型", "未知的单位类型 '大学'"


def _duplicate_code(t):
    t["units"].append(new_row(t["units"], 单位编码="S1", 单位名称="又一小", 类型="小学", 上级单位编码="B"))
    return "units", len(t["units"]), "单位编码", "编码 'S1' 重复"


def _missing_unit(t):
    t["persons"].append(new_row(t["persons"], 人员编码="p9", 姓名="周老师", 所在单位编码="NOPE"))
    return "persons", len(t["persons"]), "所在单位编码", "单位编码 'NOPE' 在文件和数据库中都不存在"


def _bad_url(t):
    row = len(t["persons"])
    t["persons"][-1][t["persons"][0].index("通知渠道2")] = f"nosuchservice://{WECOM_KEY}@example.com"
    return "persons", row, "通知渠道2", "通知渠道无效"


def _missing_column(t):
    i = t["persons"][0].index("姓名")
    for row in t["persons"]:
        del row[i]
    return "persons", 1, "姓名", "缺少必需的列"


def _bad_bool(t):
    row = len(t["units"])
    t["units"][-1][t["units"][0].index("食堂")] = "也许"
    return "units", row, "食堂", "'也许' 不是 是/否"


BAD = [_unknown_kind, _duplicate_code, _missing_unit, _bad_url, _missing_column, _bad_bool]


def _file_with_changes(tmp_path: Path, fmt: str) -> tuple[Path, dict]:
    """An export with good changes in it (a renamed school, a new school with its principal) —
    what a partial write would leave behind — for a case to add its bad row to."""
    path = export(tmp_path, fmt)
    tables = read_tables(path)
    set_cell(tables["units"], "S1", "单位名称", "测试市第一实验小学")
    tables["units"].append(new_row(tables["units"], 单位编码="S2", 单位名称="测试市第二小学", 类型="小学", 上级单位编码="B"))
    tables["persons"].append(new_row(tables["persons"], 人员编码="s2-head", 姓名="吴校长", 所在单位编码="S2",
                                     角色="校长", 通知渠道1="pingan://local/s2-head"))
    return path, tables


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("case", BAD, ids=lambda f: f.__name__.strip("_"))
def test_it_names_the_place_of_a_bad_cell_and_writes_nothing(org, tmp_path, fmt, case, caplog):
    path, tables = _file_with_changes(tmp_path, fmt)
    kind, row, column, text = case(tables)
    write_tables(path, tables)
    before = snapshot(org)

    line = one_line_error(cli("import", path))

    where = f"org.xlsx [{SHEETS[kind]}]" if fmt == "xlsx" else f"org/{kind}.csv"
    header = tables[kind][0]
    if column in header:  # file [sheet]：第 N 行 X 列「header」/ row N, column X (header)
        col = letter(header.index(column))
        assert f"{where}：第 {row} 行 {col} 列「{column}」/ row {row}, column {col} ({column})" in line
    else:  # a missing column has no letter
        assert f"{where}：第 {row} 行「{column}」列 / row {row}, column {column}" in line
    assert text in line
    assert not any(secret in line or secret in caplog.text for secret in SECRETS)  # Apprise logs bad URLs
    assert snapshot(org) == before


def test_it_writes_nothing_when_only_the_last_row_is_bad(org, tmp_path):
    path, tables = _file_with_changes(tmp_path, "csv")
    kind, row, column, text = _missing_unit(tables)
    write_tables(path, tables)
    before = snapshot(org)
    assert text in one_line_error(cli("import", path))
    assert snapshot(org) == before
    tables[kind].pop()  # the good rows alone go in
    write_tables(path, tables)
    assert cli("import", path).exit_code == 0
    assert query(org, "SELECT name FROM unit WHERE code IN ('S1', 'S2') ORDER BY code") == [
        ("测试市第一实验小学",), ("测试市第二小学",)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_lists_every_error_at_once(org, tmp_path):
    path, tables = _file_with_changes(tmp_path, "xlsx")
    _unknown_kind(tables)
    _missing_unit(tables)
    write_tables(path, tables)
    result = cli("import", path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "组织数据有 2 处错误，未写入任何数据" in result.stderr
    assert "'大学'" in result.stderr and "'NOPE'" in result.stderr


@pytest.mark.parametrize("name, content, text", [
    ("missing.xlsx", None, "文件不存在"),
    ("org.txt", b"x", "只支持 .xlsx"),
    ("broken.xlsx", b"PK\x03\x04 not a workbook", "无法读取"),
    ("binary.csv", bytes(range(128, 256)) * 3, "无法读取"),
    ("nul.csv", "单位编码,单位名称,类型\nU1,第\x00一小,小学\n".encode(), "控制字符"),
])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_refuses_an_unreadable_file_in_one_line(org, tmp_path, name, content, text):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = snapshot(org)
    line = one_line_error(cli("import", path))
    assert name in line and text in line
    assert snapshot(org) == before


# --------------------------------------------------------------------------- export → import

@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_it_round_trips_a_masked_export_without_a_change(org, tmp_path, fmt):
    path = export(tmp_path, fmt)
    tables = read_tables(path)
    assert not any(secret in cell_text(tables) for secret in SECRETS)
    assert "wecombot://" in cell_text(tables)
    before = snapshot(org)

    result = cli("import", path)

    assert result.exit_code == 0, result.output
    assert "无变化：数据库已与文件一致" in result.stdout
    assert snapshot(org) == before  # stored URLs kept, and no audit row for a no-op
    assert not any(secret in result.output for secret in SECRETS)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_exports_full_urls_with_secrets_and_reads_them_back(org, tmp_path):
    path = export(tmp_path, "xlsx", "--with-secrets")
    text = cell_text(read_tables(path))
    assert all(url in text for url in (CHIEF_URL, DEPUTY_URL, HOOK_URL))
    before = snapshot(org)
    assert "无变化" in cli("import", path).stdout
    assert snapshot(org) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_replaces_a_masked_channel_only_where_the_cell_was_edited(org, tmp_path):
    path = export(tmp_path, "csv")
    tables = read_tables(path)
    set_cell(tables["persons"], "chief", "通知渠道1", "feishu://F3ishuT0ken0123456789/")
    write_tables(path, tables)

    result = cli("import", path)

    assert result.exit_code == 0, result.output
    urls = dict(query(org, "SELECT p.code || '/' || c.priority, c.url FROM channel c JOIN person p ON p.id = c.person_id"))
    assert urls["chief/1"] == "feishu://F3ishuT0ken0123456789/"
    assert urls["deputy/1"] == DEPUTY_URL and urls["deputy/2"] == HOOK_URL


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_it_exports_a_formula_like_name_as_text_and_reads_it_back(migrated_db, tmp_path, fmt):
    formula = '=HYPERLINK("http://x","y")'  # a live formula would open a link from the bureau's own file
    person = "@SUM(1+1)*cmd|' /C calc'!A0"  # and a person's name, as the issue found (DDE)
    data = base_org()
    data.units[2].name = formula
    data.persons[3].name = person
    with session_scope(migrated_db) as session:
        store_org(session, data, actor="test")
    path = export(tmp_path, fmt)
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(path)["单位"]
        cell = next(cells[1] for cells in ws.iter_rows(min_row=2) if cells[0].value == "S1")
        # text, and marked as text (Excel's quote prefix), so editing the cell keeps it text
        assert cell.data_type == "s" and cell.value == formula and cell.quotePrefix
        wb = openpyxl.load_workbook(path)
        named = next(cells[1] for cells in wb["人员"].iter_rows(min_row=2) if cells[0].value == "s1-head")
        assert named.data_type == "s" and named.value == person and named.quotePrefix
        assert no_formulas(path)
    else:  # a leading apostrophe is what Excel and WPS take as "this is text"
        assert next(cells[1] for cells in read_tables(path)["units"] if cells[0] == "S1") == "'" + formula
    before = snapshot(migrated_db)

    result = cli("import", path)

    assert result.exit_code == 0, result.output
    assert "无变化：数据库已与文件一致" in result.stdout
    assert snapshot(migrated_db) == before
    assert query(migrated_db, "SELECT name FROM unit WHERE code = 'S1'") == [(formula,)]
    assert query(migrated_db, "SELECT name FROM person WHERE code = 's1-head'") == [(person,)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_imports_its_own_template_into_an_empty_database(migrated_db, tmp_path):
    template = tmp_path / "template.xlsx"
    assert cli("import", "--template", template).exit_code == 0
    assert set(openpyxl.load_workbook(template).sheetnames) == {"单位", "人员", "说明"}
    result = cli("import", template)
    assert result.exit_code == 0, result.output
    assert query(migrated_db, "SELECT code FROM unit ORDER BY code") == [("EX",), ("EX-S01",)]


# --------------------------------------------------------------------------- deactivation and audit

def test_it_deactivates_what_the_file_marks_inactive_and_deletes_nothing(org, tmp_path):
    path = export(tmp_path, "xlsx")
    tables = read_tables(path)
    set_cell(tables["units"], "K1", "启用", "否")
    set_cell(tables["persons"], "k1-head", "启用", "否")
    set_cell(tables["persons"], "s1-safe", "启用", "否")
    write_tables(path, tables)
    rows_before = {name: len(rows) for name, rows in snapshot(org).items()}

    result = cli("import", path)

    assert result.exit_code == 0, result.output
    assert query(org, "SELECT code FROM unit WHERE NOT active") == [("K1",)]
    assert sorted(query(org, "SELECT code FROM person WHERE NOT active")) == [("k1-head",), ("s1-safe",)]
    after = snapshot(org)
    assert {name: len(rows) for name, rows in after.items() if name != "audit"} == \
        {name: n for name, n in rows_before.items() if name != "audit"}
    shown = cli("org").stdout
    assert re.search(r"在用单位\s*│\s*3\s*│", shown) and re.search(r"在职人员\s*│\s*4\s*│", shown)
    with session_scope(org) as session:
        from pingan.org.snapshot import load_org as active_org

        active = active_org(session)
    assert {u.code for u in active.units.values()} == {"B", "SAFE", "S1"}
    assert {p.code for p in active.persons.values()} == {"chief", "deputy", "safe-head", "s1-head"}
    assert "无变化" in cli("import", path).stdout and snapshot(org) == after


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_keeps_rows_left_out_of_the_file_unless_told_to_deactivate_them(org, tmp_path):
    path = export(tmp_path, "csv")
    tables = read_tables(path)
    drop_rows(tables["units"], "K1")
    drop_rows(tables["persons"], "k1-head", "s1-safe")
    set_cell(tables["persons"], "deputy", "包保单位", "S1")  # was S1;K1
    write_tables(path, tables)
    before = snapshot(org)

    kept = cli("import", path)
    assert kept.exit_code == 0, kept.output
    assert "数据库中另有 1 个单位、2 名人员不在文件中，保持原状" in kept.stdout
    assert query(org, "SELECT count(*) FROM person WHERE NOT active")[0][0] == 0
    assert query(org, "SELECT count(*) FROM unit WHERE NOT active")[0][0] == 0

    dry = cli("import", path, "--deactivate-missing", "--dry-run")
    assert dry.exit_code == 0 and "演练" in dry.stdout
    assert query(org, "SELECT count(*) FROM person WHERE NOT active")[0][0] == 0

    done = cli("import", path, "--deactivate-missing")
    assert done.exit_code == 0, done.output
    assert query(org, "SELECT code FROM unit WHERE NOT active") == [("K1",)]
    assert sorted(query(org, "SELECT code FROM person WHERE NOT active")) == [("k1-head",), ("s1-safe",)]
    after = snapshot(org)
    for name in ("unit", "person", "channel"):  # deactivated, never deleted
        assert len(after[name]) == len(before[name])
    assert audit_details(org)[-1]["deactivated"] == {"units": ["K1"], "persons": ["k1-head", "s1-safe"]}
    assert "无变化" in cli("import", path, "--deactivate-missing").stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_will_not_deactivate_a_unit_the_file_still_refers_to(org, tmp_path):
    path = export(tmp_path, "xlsx")
    tables = read_tables(path)
    drop_rows(tables["units"], "K1")
    write_tables(path, tables)
    row = next(i for i, cells in enumerate(tables["persons"], start=1) if cells[0] == "k1-head")
    col = letter(tables["persons"][0].index("所在单位编码"))
    before = snapshot(org)
    result = cli("import", path, "--deactivate-missing")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"org.xlsx [人员]：第 {row} 行 {col} 列「所在单位编码」" in result.stderr and "'K1'" in result.stderr
    assert snapshot(org) == before


def test_it_audits_every_import_that_changes_something(org, tmp_path):
    path = export(tmp_path, "csv")
    tables = read_tables(path)
    set_cell(tables["units"], "S1", "单位名称", "测试市第一实验小学")
    set_cell(tables["persons"], "s1-head", "手机", "13900000009")
    write_tables(path, tables)
    audits = len(audit_details(org))  # the fixture's load

    assert cli("import", path, "--dry-run").exit_code == 0
    assert len(audit_details(org)) == audits
    assert cli("import", path).exit_code == 0
    assert cli("import", path).exit_code == 0  # unchanged the second time: no row

    assert len(audit_details(org)) == audits + 1
    actor, object_id = query(org, "SELECT actor, object_id FROM audit WHERE action = 'org.load' ORDER BY id DESC")[0]
    detail = audit_details(org)[-1]
    assert actor.startswith("operator:") and object_id == "org"
    assert detail["source"] == "org"
    assert detail["units"]["updated"] == 1 and detail["persons"]["updated"] == 1
    assert not any(secret in json.dumps(detail) for secret in SECRETS)


# --------------------------------------------------------------------------- pingan org

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_it_shows_the_organisation_without_a_channel_url(org):
    result = cli("org")
    assert result.exit_code == 0, result.output
    assert "wecombot://" in result.stdout and "mailto://" in result.stdout and "pingan://" in result.stdout
    assert not any(secret in result.output for secret in SECRETS)
    assert "example.com" not in result.output and "local/" not in result.output
