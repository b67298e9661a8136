"""The bureau's organisation spreadsheet, read and written with ``pingan.core.sheets``.

File format (``write_template`` writes a filled-in example with a 说明 sheet):

- XLSX: one workbook with the sheets ``单位`` (units) and ``人员`` (persons); either may be
  left out when the other half is already in the database. The header is row 1.
- CSV: the same two tables as two files, e.g. ``pingan import units.csv persons.csv``, or a
  directory holding them. A file is recognised by its header (a units file has ``类型``, a
  persons file has ``姓名``/``人员编码``), so the names are free. UTF-8 (with or without BOM)
  or GB18030, as Excel saves them.

Headers are Chinese (English aliases accepted, see ``UNIT_COLUMNS``/``PERSON_COLUMNS``).
A person row is authoritative for that person (see ``pingan.org.service.store_org``).
``角色`` lists the roles at the person's own unit (``校长;安全主任``) or, written
``角色@单位编码``, at another unit; ``包保单位`` and ``分管科室`` list the units a bureau leader
answers for. ``通知渠道1..3`` are Apprise URLs, tried in that order. ``启用 = 否`` deactivates
a unit or a person.

Reading checks everything before anything is written (``pingan.org.check.check_org``):
every bad cell is reported at its place, ``file [sheet]：第 N 行 X 列「header」``, and channel
URLs never appear in a message (they hold tokens). Writing goes through
``pingan.core.sheets``, so a name like ``=HYPERLINK(…)`` stays text in Excel and WPS.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session

from models import RoleKind, UnitKind
from pingan.core.i18n import register, t
from pingan.core.sheets import Column, Row, Sheet, SheetError, Table, boolean, norm, open_tables, write_csv, write_xlsx
from pingan.org.check import check_org
from pingan.org.data import (
    CHANNEL_SLOTS, DEPARTMENTS, FUNCTION_CODE, FUNCTIONS, KIND_NAMES, KINDS, ROLE_NAMES, ROLES, ChannelRow, OrgData,
    OrgImportError, OrgProblems, PersonRow, Progress, RoleRow, Src, UnitRow, role_name,
)

register({
    "org.err.csv_kind": {
        "zh-CN": "（单位表需要 '类型' 列，人员表需要 '姓名' 列）",
        "en": " (a units file needs the column '类型', a persons file the column '姓名')",
    },
    "org.err.required": {"zh-CN": "必填项为空", "en": "required cell is empty"},
    "org.err.bad_code": {
        "zh-CN": "编码 '{value}' 不能含空格或 ; , 、 @ 等分隔符，且不超过 64 个字符",
        "en": "code '{value}' must not contain spaces or separators (; , 、 @) and has at most 64 characters",
    },
    "org.err.too_long": {"zh-CN": "超过 {max} 个字符", "en": "longer than {max} characters"},
    "org.err.unknown_kind": {
        "zh-CN": "未知的单位类型 '{value}'（可用：{choices}）",
        "en": "unknown kind '{value}' (use one of: {choices})",
    },
    "org.err.unknown_role": {
        "zh-CN": "未知角色 '{value}'（可用：{choices}）",
        "en": "unknown role '{value}' (use one of: {choices})",
    },
    "org.err.role_needs_unit": {
        "zh-CN": "'{value}' 请填在 '包保单位' 或 '分管科室' 列，或写成 '{value}@单位编码'",
        "en": "'{value}' belongs in column '包保单位' or '分管科室', or write '{value}@<unit code>'",
    },
    "org.err.bad_function": {
        "zh-CN": "未知职能 '{value}'（填科室名称或英文职能代码，如 safety）",
        "en": "unknown function '{value}' (a department name or a code like safety)",
    },
    "org.err.function_not_department": {
        "zh-CN": "只有科室（类型 '科室'）填写职能",
        "en": "only departments (kind 'department') have a function",
    },
    "org.err.bad_bool": {
        "zh-CN": "'{value}' 不是 是/否（也可填 true/false、1/0）",
        "en": "'{value}' is not yes/no (是/否, true/false, 1/0)",
    },
    "org.err.bad_phone": {"zh-CN": "手机号 '{value}' 格式不对", "en": "bad phone number '{value}'"},
    "org.err.bad_email": {"zh-CN": "邮箱 '{value}' 格式不对", "en": "bad e-mail address '{value}'"},
})

UNIT_SHEET, PERSON_SHEET, HELP_SHEET = "单位", "人员", "说明"
UNIT_COLUMNS = (
    Column("code", "单位编码", ("code", "unit_code", "单位代码", "编码"), True, "唯一编码，如 DH-S001；不含空格和分隔符"),
    Column("name", "单位名称", ("name", "名称"), True, "全称"),
    Column("kind", "类型", ("kind", "type", "单位类型"), True, "、".join(KIND_NAMES.values())),
    Column("parent_code", "上级单位编码", ("parent_code", "parent", "上级单位", "上级编码"), False, "学校和科室填教育局编码"),
    Column("function", "职能", ("function", "科室职能"), False, "仅科室：科室名称或职能代码（safety = 学校安全科）"),
    Column("has_school_bus", "校车", ("has_school_bus", "school_bus", "有校车"), False, "是/否"),
    Column("has_dormitory", "宿舍", ("has_dormitory", "dormitory", "有宿舍"), False, "是/否"),
    Column("has_canteen", "食堂", ("has_canteen", "canteen", "有食堂"), False, "是/否"),
    Column("active", "启用", ("active", "在用"), False, "是/否，空 = 是；停办的单位填 否"),
)
PERSON_COLUMNS = (
    Column("code", "人员编码", ("code", "person_code", "编码"), True, "唯一编码，如 DH-S001-01"),
    Column("name", "姓名", ("name",), True, ""),
    Column("unit_code", "所在单位编码", ("unit_code", "unit", "单位编码"), True, "本人所在单位"),
    Column("title", "职务", ("title", "position", "职位"), False, "如 校长、安全主任（仅供显示）"),
    Column("phone", "手机", ("phone", "mobile", "手机号", "手机号码", "电话", "联系电话"), False, "11 位手机号或带区号的座机"),
    Column("email", "邮箱", ("email", "e-mail", "mail", "电子邮箱"), False, ""),
    Column("roles", "角色", ("roles", "role"), False,
           "在本单位的角色，多个用 ; 分隔，如 校长;安全主任；在其他单位的角色写 角色@单位编码"),
    Column("patron_of", "包保单位", ("patron_of", "patron", "包保"), False, "局领导包保的学校编码，多个用 ; 分隔"),
    Column("in_charge_of", "分管科室", ("in_charge_of", "in_charge", "分管", "分管单位"), False, "局领导分管的科室编码，多个用 ; 分隔"),
    *(Column(f"channel_{i}", f"通知渠道{i}", (f"channel_{i}", f"channel{i}", f"渠道{i}"), False,
             "Apprise 地址（含令牌，注意保密）；按 1、2、3 的顺序尝试") for i in range(1, CHANNEL_SLOTS + 1)),
    Column("active", "启用", ("active", "在用"), False, "是/否，空 = 是；离职人员填 否"),
)
_SEPARATORS = re.compile(r"[;；,，、\s]+")
_CODE = re.compile(r"^[^\s;；,，、@]{1,64}$")
_PHONE = re.compile(r"^(\+?86)?(1[3-9]\d{9}|0\d{9,11})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SHEETS = {"units": (UNIT_SHEET, "units"), "persons": (PERSON_SHEET, "persons")}
_PERSON_HEADERS = {"姓名", "人员编码", "person_code", "所在单位编码", "unit_code"}
_UNIT_HEADERS = {"类型", "kind", "type", "单位类型", "单位名称"}


# --------------------------------------------------------------------------- reading

class _Reader:
    """Turns the tables of a file into rows of OrgData, collecting every problem at its place."""

    def __init__(self, problems: OrgProblems, progress: Progress | None):
        self.problems = problems
        self.rejected: set[str] = set()  # unit codes of rows refused here: no second error for them
        self.progress = progress

    def _rows(self, table: Table, specs: Sequence[Column]) -> Iterator[tuple[Src, Row]]:
        columns: dict[str, tuple[int | None, str]] | None = None  # one per table, shared by its rows
        for row in table.rows(specs, self.problems, progress=self.progress):
            if columns is None:
                columns = {c.key: (row.index.get(c.key), table.names[c.key]) for c in specs}
            yield Src(table.file, row.number, table.sheet, columns), row

    def error(self, src: Src, key: str, message: str, **values: Any) -> None:
        self.problems.add(src.place(key), t(f"org.err.{message}", **values))

    def required(self, src: Src, row: Row, key: str, max_len: int) -> str | None:
        value = row.get(key)
        if value is None:
            self.error(src, key, "required")
        elif len(value) > max_len:
            self.error(src, key, "too_long", max=max_len)
            return None
        return value

    def code(self, src: Src, row: Row, key: str, required: bool = True) -> str | None:
        value = row.get(key)
        if value is None:
            if required:
                self.error(src, key, "required")
            return None
        if not _CODE.match(value):
            self.error(src, key, "bad_code", value=value)
            return None
        return value

    def optional(self, src: Src, row: Row, key: str, max_len: int) -> str | None:
        value = row.get(key)
        if value is not None and len(value) > max_len:
            self.error(src, key, "too_long", max=max_len)
            return None
        return value

    def boolean(self, src: Src, row: Row, key: str, default: bool) -> bool:
        value = row.get(key)
        if value is None:
            return default
        answer = boolean(value)
        if answer is None:
            self.error(src, key, "bad_bool", value=value)
            return default
        return answer

    def codes(self, src: Src, row: Row, key: str) -> list[str]:
        out = []
        for part in _SEPARATORS.split(row.get(key) or ""):
            if not part:
                continue
            if _CODE.match(part):
                out.append(part)
            else:
                self.error(src, key, "bad_code", value=part)
        return out

    # -- the two tables
    def units(self, table: Table, data: OrgData) -> None:
        for src, row in self._rows(table, UNIT_COLUMNS):
            code = self.code(src, row, "code")
            name = self.required(src, row, "name", 200)
            kind_text = row.get("kind")
            kind = KINDS.get(kind_text) or KINDS.get((kind_text or "").lower())
            if kind_text is None:
                self.error(src, "kind", "required")
            elif kind is None:
                self.error(src, "kind", "unknown_kind", value=kind_text, choices="、".join(KIND_NAMES.values()))
            parent = self.code(src, row, "parent_code", required=False)
            function = row.get("function")
            if function is not None:
                code_fn = FUNCTIONS.get(function) or (function if FUNCTION_CODE.match(function) else None)
                if code_fn is None:
                    self.error(src, "function", "bad_function", value=function)
                elif kind is not None and kind != UnitKind.department:
                    self.error(src, "function", "function_not_department")
                function = code_fn
            flags = {k: self.boolean(src, row, k, False) for k in ("has_school_bus", "has_dormitory", "has_canteen")}
            active = self.boolean(src, row, "active", True)
            if code and not (name and kind):
                self.rejected.add(code)
            if code and name and kind:
                data.units.append(UnitRow(code=code, name=name, kind=kind, parent_code=parent, function=function,
                                          active=active, src=src, **flags))

    def persons(self, table: Table, data: OrgData) -> None:
        for src, row in self._rows(table, PERSON_COLUMNS):
            code = self.code(src, row, "code")
            name = self.required(src, row, "name", 100)
            unit = self.code(src, row, "unit_code")
            title = self.optional(src, row, "title", 100)
            phone = row.get("phone")
            if phone is not None:
                compact = re.sub(r"[\s\-()（）]", "", phone)
                if _PHONE.match(compact):
                    phone = compact
                else:
                    self.error(src, "phone", "bad_phone", value=phone)
            email = row.get("email")
            if email is not None and (not _EMAIL.match(email) or len(email) > 200):
                self.error(src, "email", "bad_email", value=email)
            active = self.boolean(src, row, "active", True)
            roles = self._roles(src, row, code, unit)
            channels = self._channels(src, row, code)
            if code and name and unit:
                data.persons.append(PersonRow(code=code, name=name, unit_code=unit, title=title, phone=phone,
                                              email=email, active=active, src=src))
                data.roles.extend(roles)
                data.channels.extend(channels)

    def _roles(self, src: Src, row: Row, person: str | None, unit: str | None) -> list[RoleRow]:
        out: list[RoleRow] = []
        for part in _SEPARATORS.split(row.get("roles") or ""):
            if not part:
                continue
            name, _, at = part.partition("@")
            role = ROLES.get(name) or ROLES.get(name.lower())
            if role is None:
                choices = "、".join(names[0] for names in ROLE_NAMES.values())
                self.error(src, "roles", "unknown_role", value=name, choices=choices)
            elif at and not _CODE.match(at):
                self.error(src, "roles", "bad_code", value=at)
            elif role in (RoleKind.patron, RoleKind.in_charge) and not at:
                self.error(src, "roles", "role_needs_unit", value=name)
            elif person and (at or unit):
                out.append(RoleRow(person_code=person, unit_code=at or unit, role=role, src=src, column="roles"))
        for key, role in (("patron_of", RoleKind.patron), ("in_charge_of", RoleKind.in_charge)):
            for target in self.codes(src, row, key):
                if person:
                    out.append(RoleRow(person_code=person, unit_code=target, role=role, src=src, column=key))
        return out

    def _channels(self, src: Src, row: Row, person: str | None) -> list[ChannelRow]:
        out = []
        for priority in range(1, CHANNEL_SLOTS + 1):
            key = f"channel_{priority}"
            url = row.get(key)
            if url is not None and person:  # checked in check_org: unchanged URLs need no Apprise
                out.append(ChannelRow(person_code=person, priority=priority, url=url, src=src, column=key))
        return out


def _csv_kind(header: list[Any]) -> str | None:
    """Which table a CSV file holds, from its header; None when neither."""
    names = {norm(h) for h in header}
    if _PERSON_HEADERS & names:
        return "persons"
    if _UNIT_HEADERS & names:
        return "units"
    return None


def read_org_files(paths: Sequence[str | Path], *, session: Session | None = None,
                   progress: Progress | None = None, deactivate_missing: bool = False) -> OrgData:
    """Read workbooks, CSV files or directories of them into one ``OrgData``; check it all
    (against the database too, with a session) and raise ``OrgImportError`` on any bad row.
    ``deactivate_missing`` checks the data for ``store_org(..., deactivate_missing=True)``."""
    opened: list = []
    unknown: list[list[Any]] = []  # CSV headers that name neither table

    def csv_kind(header: list[Any]) -> str | None:
        kind = _csv_kind(header)
        if kind is None:
            unknown.append(header)
        return kind

    problems = OrgProblems()
    try:
        try:
            tables = [item for p in paths for item in open_tables(p, sheets=_SHEETS, csv_kind=csv_kind, opened=opened)]
        except SheetError as exc:
            raise OrgImportError([f"{exc}{t('org.err.csv_kind') if unknown else ''}"]) from None
        # Units first: a persons file may name units that another file defines.
        tables.sort(key=lambda item: item[0] != "units")
        reader, data = _Reader(problems, progress), OrgData(source=", ".join(Path(p).name for p in paths)[:200])
        for kind, table in tables:
            getattr(reader, kind)(table, data)
            data.tables.add(kind)
    finally:
        for wb in opened:
            wb.close()
    check_org(data, session=session, problems=problems, rejected=reader.rejected,
              deactivate_missing=deactivate_missing)
    return data


def read_org_file(path: str | Path, *, session: Session | None = None, progress: Progress | None = None) -> OrgData:
    """One workbook (sheets 单位 and 人员), one CSV file, or a directory of CSV files."""
    return read_org_files([path], session=session, progress=progress)


# --------------------------------------------------------------------------- writing

def _yes(value: bool) -> str:
    return "是" if value else "否"


def _sheet_rows(data: OrgData) -> tuple[list[list[Any]], list[list[Any]]]:
    kinds = {u.code: u.kind for u in data.units}
    function_name = {code: name for code, name, _ in DEPARTMENTS}
    units = [[u.code, u.name, KIND_NAMES[u.kind], u.parent_code or "", function_name.get(u.function or "", u.function or ""),
              _yes(u.has_school_bus), _yes(u.has_dormitory), _yes(u.has_canteen), _yes(u.active)] for u in data.units]
    roles: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    unit_of = {p.code: p.unit_code for p in data.persons}
    for r in data.roles:
        bucket = roles[r.person_code]
        if r.role == RoleKind.patron:
            bucket["patron_of"].append(r.unit_code)
        elif r.role == RoleKind.in_charge:
            bucket["in_charge_of"].append(r.unit_code)
        else:
            name = role_name(r.role, kinds.get(r.unit_code, UnitKind.primary))
            bucket["roles"].append(name if r.unit_code == unit_of.get(r.person_code) else f"{name}@{r.unit_code}")
    channels: dict[str, dict[int, str]] = defaultdict(dict)
    for c in data.channels:
        channels[c.person_code][c.priority] = c.url
    persons = []
    for p in data.persons:
        bucket = roles.get(p.code, {})
        persons.append([p.code, p.name, p.unit_code, p.title or "", p.phone or "", p.email or "",
                        ";".join(bucket.get("roles", ())), ";".join(bucket.get("patron_of", ())),
                        ";".join(bucket.get("in_charge_of", ())),
                        *(channels[p.code].get(i, "") for i in range(1, CHANNEL_SLOTS + 1)), _yes(p.active)])
    return units, persons


def _help_rows() -> list[list[str]]:
    rows = [["工作表 / 列", "必填", "说明"],
            ["本工作簿", "", "工作表 单位 和 人员 的第 1 行是列名，从第 2 行起每行一条；示例行请替换为本单位数据。"],
            ["", "", "导入：pingan import 文件.xlsx（先用 --dry-run 检查）；CSV 用两个文件：pingan import units.csv persons.csv"],
            ["", "", "任何一行有错都不会写入；错误信息给出文件、工作表、行号和列名。"],
            ["", "", "人员行列出此人的全部角色和通知渠道：导入后以此为准。"],
            ["", "", "单位和人员不会被删除：停用请把 启用 填为 否；文件中没有的行保持原状，加 --deactivate-missing 则停用它们。"],
            ["", "", "导出默认遮盖通知渠道中的令牌；遮盖的单元格原样导回时保留数据库中的地址。"]]
    for sheet, columns in ((UNIT_SHEET, UNIT_COLUMNS), (PERSON_SHEET, PERSON_COLUMNS)):
        rows.append([])
        for col in columns:
            rows.append([f"{sheet} / {col.header}", "是" if col.required else "", f"{col.help}（英文列名：{col.key}）"])
    rows.append([])
    rows.append(["类型", "", "、".join(KIND_NAMES.values())])
    for role, names in ROLE_NAMES.items():
        rows.append([f"角色 {role.value}", "", "、".join(names)])
    rows.append(["职能", "", "；".join(f"{code} = {name}" for code, name, _ in DEPARTMENTS)])
    return rows


def write_org_file(data: OrgData, path: str | Path) -> Path:
    """Write ``data`` as a workbook (``.xlsx``) or as units.csv + persons.csv in a directory."""
    path = Path(path)
    units, persons = _sheet_rows(data)
    unit_header = [c.header for c in UNIT_COLUMNS]
    person_header = [c.header for c in PERSON_COLUMNS]
    if path.suffix.lower() == ".xlsx":
        return write_xlsx(path, [Sheet(UNIT_SHEET, unit_header, units), Sheet(PERSON_SHEET, person_header, persons),
                                 Sheet(HELP_SHEET, None, _help_rows(), widths=[14, 10, 90])])
    path.mkdir(parents=True, exist_ok=True)
    write_csv(path / "units.csv", unit_header, units)
    write_csv(path / "persons.csv", person_header, persons)
    return path


def template_data() -> OrgData:
    """The example rows of the template: a bureau, a school, a leader who is its 包保 and its principal."""
    data = OrgData(source="template")
    data.units += [UnitRow("EX", "示例市教育局", UnitKind.bureau),
                   UnitRow("EX-S01", "示例市第一小学", UnitKind.primary, "EX", has_canteen=True)]
    data.persons += [PersonRow("EX-L01", "张示例", "EX", "副局长（分管安全工作）", "13900000001", "leader@example.com"),
                     PersonRow("EX-S01-01", "李示例", "EX-S01", "校长", "13900000002")]
    data.roles += [RoleRow("EX-L01", "EX", RoleKind.safety_lead), RoleRow("EX-L01", "EX", RoleKind.leader),
                   RoleRow("EX-L01", "EX-S01", RoleKind.patron),
                   RoleRow("EX-S01-01", "EX-S01", RoleKind.principal), RoleRow("EX-S01-01", "EX-S01", RoleKind.safety_officer)]
    data.channels += [ChannelRow("EX-L01", 1, "mailto://user:pass@example.com"),
                      ChannelRow("EX-S01-01", 1, "pingan://local/EX-S01-01")]
    return data


def write_template(path: str | Path) -> Path:
    """The import template: ``.xlsx`` (sheets 单位, 人员, 说明) or, for a directory, the CSV pair."""
    return write_org_file(template_data(), path)
