"""The organisation: units, persons, roles and channels — a demo, a generator, bulk loading,
and the bureau's spreadsheet (XLSX, or a pair of CSV files) in and out.

Everything here is keyed by codes, never database ids, so the demo, the province-scale
generator and a file all produce the same ``OrgData``; ``load_org`` turns it into rows with a
handful of bulk statements per table, whatever the number of schools.

File format (``write_template`` writes a filled-in example with a 说明 sheet):

- XLSX: one workbook with the sheets ``单位`` (units) and ``人员`` (persons); either may be
  left out when the other half is already in the database. The header is row 1.
- CSV: the same two tables as two files, e.g. ``pingan import units.csv persons.csv``, or a
  directory holding them. A file is recognised by its header (a units file has ``类型``, a
  persons file has ``姓名``/``人员编码``), so the names are free. UTF-8 (with or without BOM)
  or GB18030, as Excel saves them.

Headers are Chinese (English aliases accepted, see ``UNIT_COLUMNS``/``PERSON_COLUMNS``).
A person row is authoritative for that person: the roles it lists replace the person's
roles, and channels it no longer lists are deactivated (never deleted: the outbox refers to
them). ``角色`` lists the roles at the person's own unit (``校长;安全主任``) or, written
``角色@单位编码``, at another unit; ``包保单位`` and ``分管科室`` list the units a bureau leader
answers for. ``通知渠道1..3`` are Apprise URLs, tried in that order.

Units and persons are never deleted (tasks, evidence and the outbox refer to them): ``启用 = 否``
deactivates one, and ``load_org(..., deactivate_missing=True)`` (``pingan import
--deactivate-missing``) deactivates those that a table of the file leaves out. Without it a row
left out is kept as it is, so a file may hold only the rows that change.

Validation is complete before anything is written: every bad row is reported with file,
sheet, row and column, and channel URLs never appear in a message (they hold tokens).
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models import SCHOOL_KINDS, Audit, Channel, Person, Role, RoleKind, Unit, UnitKind
from pingan.core.clock import now
from pingan.core.i18n import register, t
from pingan.delivery.transports import mask, validate

Progress = Callable[[str, int, int | None], None]  # (stage, done, total or None)
MAX_LINES = 20  # error lines shown; the rest are counted
CHANNEL_SLOTS = 3

register({
    "org.err.cannot_read": {"zh-CN": "无法读取：{reason}", "en": "cannot read: {reason}"},
    "org.err.not_found_file": {"zh-CN": "文件不存在", "en": "file not found"},
    "org.err.unsupported": {
        "zh-CN": "只支持 .xlsx 工作簿、.csv 文件或包含 CSV 文件的目录",
        "en": "only .xlsx workbooks, .csv files or a directory of CSV files are supported",
    },
    "org.err.no_sheets": {
        "zh-CN": "找不到工作表 '单位' 或 '人员'（现有：{found}）",
        "en": "no sheet '单位' (units) or '人员' (persons) (found: {found})",
    },
    "org.err.csv_kind": {
        "zh-CN": "无法判断是单位表还是人员表：单位表需要 '类型' 列，人员表需要 '姓名' 列",
        "en": "neither a units file (needs column '类型') nor a persons file (needs column '姓名')",
    },
    "org.err.empty_dir": {"zh-CN": "目录中没有 .csv 文件", "en": "no .csv file in this directory"},
    "org.err.missing_column": {"zh-CN": "缺少必填列", "en": "missing required column"},
    "org.err.duplicate_column": {"zh-CN": "列名重复", "en": "duplicate column"},
    "org.err.required": {"zh-CN": "必填项为空", "en": "required cell is empty"},
    "org.err.bad_code": {
        "zh-CN": "编码 '{value}' 不能含空格或 ; , 、 @ 等分隔符，且不超过 64 个字符",
        "en": "code '{value}' must not contain spaces or separators (; , 、 @) and has at most 64 characters",
    },
    "org.err.control_char": {
        "zh-CN": "含有不可见的控制字符（如 NUL），请删除后重新输入",
        "en": "contains an invisible control character (NUL, say): retype the cell",
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
    "org.err.bad_url": {
        "zh-CN": "通知渠道无效（地址不显示，以免泄露令牌）：{reason}",
        "en": "invalid notification channel (address not shown: it may hold tokens): {reason}",
    },
    "org.err.duplicate_code": {
        "zh-CN": "编码 '{code}' 重复（首次出现：{first}）",
        "en": "duplicate code '{code}' (first at {first})",
    },
    "org.err.duplicate_channel": {
        "zh-CN": "人员 '{code}' 的第 {priority} 个通知渠道重复",
        "en": "person '{code}' has channel {priority} twice",
    },
    "org.err.unit_not_found": {
        "zh-CN": "单位编码 '{code}' 在文件和数据库中都不存在",
        "en": "unit code '{code}' is neither in the file nor in the database",
    },
    "org.err.unit_not_in_file": {
        "zh-CN": "单位编码 '{code}' 不在文件的单位表中，停用文件中没有的单位时它也会被停用",
        "en": "unit code '{code}' is not in the file's units table: deactivating what the file leaves out would deactivate it",
    },
    "org.err.person_not_found": {
        "zh-CN": "人员编码 '{code}' 在文件和数据库中都不存在",
        "en": "person code '{code}' is neither in the file nor in the database",
    },
    "org.err.not_department": {
        "zh-CN": "'{code}' 不是科室，分管只能指向科室",
        "en": "'{code}' is not a department: 分管 (in charge) applies to departments",
    },
    "org.err.not_school": {
        "zh-CN": "'{code}' 不是学校、幼儿园或校外培训机构，包保只能指向这些单位",
        "en": "'{code}' is not a school, kindergarten or training institution: 包保 (patron) applies to those",
    },
    "org.err.cycle": {
        "zh-CN": "上级单位形成循环：{path}",
        "en": "parent units form a cycle: {path}",
    },
    "org.err.summary": {
        "zh-CN": "组织数据有 {n} 处错误，未写入任何数据：",
        "en": "{n} errors in the organisation data; nothing was written:",
    },
    "org.err.more": {"zh-CN": "…… 另有 {n} 处错误", "en": "… and {n} more"},
})


class OrgImportError(ValueError):
    """Bad organisation data. Each line names file, sheet, row and column; never a channel URL."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        lines = self.errors[:MAX_LINES]
        if len(self.errors) > MAX_LINES:
            lines.append(t("org.err.more", n=len(self.errors) - MAX_LINES))
        if len(self.errors) > 1:
            lines.insert(0, t("org.err.summary", n=len(self.errors)))
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- the data

@dataclass(frozen=True, slots=True)
class Src:
    """Where a row came from, as the user sees it in Excel (the header is row 1)."""

    file: str
    row: int
    sheet: str | None = None
    names: Mapping[str, str] | None = field(default=None, compare=False, repr=False)  # column key → header

    def at(self, column: str | None = None) -> str:
        place = f"{self.file} [{self.sheet}]" if self.sheet else self.file
        if column is None:
            return f"{place}: 第 {self.row} 行 / row {self.row}"
        return f"{place}: 第 {self.row} 行 '{column}' 列 / row {self.row}, column '{column}'"


@dataclass(slots=True)
class UnitRow:
    code: str
    name: str
    kind: UnitKind
    parent_code: str | None = None
    function: str | None = None
    has_school_bus: bool = False
    has_dormitory: bool = False
    has_canteen: bool = False
    active: bool = True
    src: Src | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class PersonRow:
    code: str
    name: str
    unit_code: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    active: bool = True
    src: Src | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class RoleRow:
    person_code: str
    unit_code: str
    role: RoleKind
    src: Src | None = field(default=None, compare=False, repr=False)
    column: str | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class ChannelRow:
    person_code: str
    priority: int
    url: str = field(repr=False)
    label: str | None = None
    src: Src | None = field(default=None, compare=False, repr=False)
    column: str | None = field(default=None, compare=False, repr=False)
    # Set once the URL has been checked (generated rows are trusted); ``problem`` says why it
    # was refused. A masked export cell that matches the stored URL means "keep the stored one".
    checked: bool = field(default=False, compare=False, repr=False)
    problem: str | None = field(default=None, compare=False, repr=False)


@dataclass
class OrgData:
    """Units, persons, roles and channels keyed by codes: what a demo, a generator or a file yields."""

    units: list[UnitRow] = field(default_factory=list)
    persons: list[PersonRow] = field(default_factory=list)
    roles: list[RoleRow] = field(default_factory=list)
    channels: list[ChannelRow] = field(default_factory=list)
    source: str = ""
    # The tables ("units", "persons") this data lists in full: only those can tell that a row
    # of the database is missing (``load_org(..., deactivate_missing=True)``).
    tables: set[str] = field(default_factory=set)

    def extend(self, other: OrgData) -> OrgData:
        self.units += other.units
        self.persons += other.persons
        self.roles += other.roles
        self.channels += other.channels
        self.source = ", ".join(s for s in (self.source, other.source) if s)
        self.tables |= other.tables
        return self

    def counts(self) -> dict[str, int]:
        return {"units": len(self.units), "persons": len(self.persons), "roles": len(self.roles),
                "channels": len(self.channels)}


# --------------------------------------------------------------------------- names

KIND_NAMES: dict[UnitKind, str] = {
    UnitKind.bureau: "教育局", UnitKind.department: "科室", UnitKind.primary: "小学",
    UnitKind.junior: "初中", UnitKind.nine_year: "九年一贯制", UnitKind.senior: "高中",
    UnitKind.vocational: "职业学校", UnitKind.kindergarten: "幼儿园",
    UnitKind.private_kindergarten: "民办幼儿园", UnitKind.training_institution: "校外培训机构",
}
_KIND_ALIASES = {
    "教育行政部门": UnitKind.bureau, "局": UnitKind.bureau, "部门": UnitKind.department,
    "科（室）": UnitKind.department, "科(室)": UnitKind.department, "股室": UnitKind.department,
    "初级中学": UnitKind.junior, "九年一贯制学校": UnitKind.nine_year, "九年制": UnitKind.nine_year,
    "高级中学": UnitKind.senior, "普通高中": UnitKind.senior, "职业技术学校": UnitKind.vocational,
    "中等职业学校": UnitKind.vocational, "中职": UnitKind.vocational, "职高": UnitKind.vocational,
    "公办幼儿园": UnitKind.kindergarten, "民办园": UnitKind.private_kindergarten,
    "校外培训学校": UnitKind.training_institution, "培训机构": UnitKind.training_institution,
}
KINDS: dict[str, UnitKind] = {
    **{k.value: k for k in UnitKind}, **{v: k for k, v in KIND_NAMES.items()}, **_KIND_ALIASES,
}

# What each role is called on a spreadsheet; the first name is the one exports write.
ROLE_NAMES: dict[RoleKind, tuple[str, ...]] = {
    RoleKind.principal: ("主要负责人", "负责人", "局长", "校长", "园长", "科长", "主任", "院长", "第一责任人"),
    RoleKind.safety_lead: ("分管安全负责人", "分管安全工作负责人", "分管安全", "分管安全副局长",
                           "分管安全副校长", "主管安全副校长", "分管安全副园长", "主管安全负责人"),
    RoleKind.safety_officer: ("安全主任", "安全员", "安全干事", "安全管理员", "专职安全员"),
    RoleKind.leader: ("班子成员", "领导班子成员", "副局长", "党组成员", "副校长", "副园长"),
    RoleKind.patron: ("包保", "包保领导"),
    RoleKind.in_charge: ("分管", "分管领导"),
    RoleKind.staff: ("工作人员", "职员", "科员", "教职工", "员工"),
}
ROLES: dict[str, RoleKind] = {
    **{r.value: r for r in RoleKind}, **{name: r for r, names in ROLE_NAMES.items() for name in names},
}
_PRINCIPAL_BY_KIND = {UnitKind.bureau: "局长", UnitKind.kindergarten: "园长",
                      UnitKind.private_kindergarten: "园长", UnitKind.department: "负责人"}

# The departments of the Dehui list (part 五 and 六): function code, name, its head's title.
DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("safety", "学校安全科", "科长"),
    ("office", "办公室", "主任"),
    ("personnel", "人事科", "科长"),
    ("construction", "教育基建管理中心", "主任"),
    ("finance", "计财科", "科长"),
    ("basic_education", "基础教育科", "科长"),
    ("preschool", "学前教育科", "科长"),
    ("sports_health_arts", "体卫艺科", "科长"),
    ("vocational", "职教科（校外教育培训监管科、行政审批办公室）", "科长"),
    ("inspection", "教育督导室", "主任"),
    ("veteran_cadres", "老干部活动中心", "主任"),
    ("party", "机关党委", "专职副书记"),
    ("off_campus", "校外教育指导中心", "主任"),
    ("supervision", "监察指导科", "科长"),
    ("petition", "信访接待室", "主任"),
    ("teacher_training", "教师进修学校", "校长"),
    ("exams", "招生考试服务中心", "主任"),
    ("ed_tech", "教育技术服务中心", "主任"),
    ("logistics", "学校后勤管理中心", "主任"),
    ("student_aid", "学生资助管理中心", "主任"),
)
FUNCTIONS: dict[str, str] = {
    **{code: code for code, _, _ in DEPARTMENTS},
    **{name: code for code, name, _ in DEPARTMENTS},
    "职教科": "vocational", "教育督导室（德惠市人民政府教育督导室）": "inspection", "安全科": "safety",
}
_FUNCTION_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def kind_name(kind: UnitKind | str) -> str:
    return KIND_NAMES[UnitKind(kind)]


def _role_name(role: RoleKind, kind: UnitKind) -> str:
    if role == RoleKind.principal:
        return _PRINCIPAL_BY_KIND.get(kind, "校长")
    return ROLE_NAMES[role][0]


# --------------------------------------------------------------------------- building

class _Builder:
    """Collects an organisation row by row; persons get a code-derived local channel."""

    def __init__(self, channel_url: Callable[[str], str]):
        self.data = OrgData(tables={"units", "persons"})
        self.channel_url = channel_url
        self._phones = 0

    def unit(self, code: str, name: str, kind: UnitKind, parent: str | None = None, **flags: Any) -> str:
        self.data.units.append(UnitRow(code=code, name=name, kind=kind, parent_code=parent, **flags))
        return code

    def person(self, code: str, name: str, unit: str, title: str, *roles: RoleKind) -> str:
        self._phones += 1
        self.data.persons.append(
            PersonRow(code=code, name=name, unit_code=unit, title=title, phone=f"1390{self._phones:07d}")
        )
        self.data.roles.extend(RoleRow(person_code=code, unit_code=unit, role=r) for r in roles)
        self.data.channels.append(ChannelRow(person_code=code, priority=1, url=self.channel_url(code), checked=True))
        return code

    def role(self, person: str, unit: str, role: RoleKind) -> None:
        self.data.roles.append(RoleRow(person_code=person, unit_code=unit, role=role))


def _local_channel(code: str) -> str:
    return f"pingan://local/{code}"


_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红宇鹏辉晨阳雪梅琳丹浩宁建国志东海波春燕佳欣思雨博文俊峰凯亮斌岩鑫立新德惠淑凤庆福永长"


def _names(seed: int) -> Iterator[str]:
    """Synthetic Chinese names, unique and in a fixed order for a seed."""
    rng, seen = random.Random(seed), set()
    while True:
        given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
        name = rng.choice(_SURNAMES) + given
        if name not in seen:
            seen.add(name)
            yield name


# (title, roles at the bureau, functions in charge of) — the Dehui list's parts 二, 三 and 四.
_DEHUI_LEADERS = (
    ("局长、党组书记", (RoleKind.principal,), ("office", "personnel", "finance")),
    ("党组成员、副局长（分管安全工作）", (RoleKind.safety_lead, RoleKind.leader), ("safety", "construction", "logistics")),
    ("党组成员、副局长", (RoleKind.leader,), ("basic_education", "preschool", "student_aid")),
    ("副局长", (RoleKind.leader,), ("vocational", "exams", "teacher_training")),
    ("党组成员", (RoleKind.leader,), ("party", "supervision", "veteran_cadres", "petition")),
    ("副局长", (RoleKind.leader,), ("sports_health_arts", "ed_tech", "inspection", "off_campus")),
)

# (name, kind, school bus, dormitory, canteen) — synthetic schools in Dehui's towns.
_DEHUI_SCHOOLS = (
    ("德惠市第一实验小学", UnitKind.primary, False, False, True),
    ("德惠市第二实验小学", UnitKind.primary, False, False, False),
    ("德惠市第三小学", UnitKind.primary, False, False, False),
    ("德惠市第五小学", UnitKind.primary, False, False, True),
    ("德惠市米沙子镇中心小学", UnitKind.primary, True, False, True),
    ("德惠市大房身镇中心小学", UnitKind.primary, True, False, True),
    ("德惠市朱城子镇中心小学", UnitKind.primary, True, False, False),
    ("德惠市布海镇中心小学", UnitKind.primary, True, False, True),
    ("德惠市天台镇中心小学", UnitKind.primary, False, False, False),
    ("德惠市菜园子镇中心小学", UnitKind.primary, True, False, True),
    ("德惠市夏家店中心小学", UnitKind.primary, False, False, False),
    ("德惠市第三中学", UnitKind.junior, False, False, True),
    ("德惠市第四中学", UnitKind.junior, False, False, True),
    ("德惠市第八中学", UnitKind.junior, False, True, True),
    ("德惠市米沙子镇中学", UnitKind.junior, True, True, True),
    ("德惠市布海镇中学", UnitKind.junior, True, True, True),
    ("德惠市松花江镇中学", UnitKind.junior, False, True, True),
    ("德惠市同太九年一贯制学校", UnitKind.nine_year, True, True, True),
    ("德惠市边岗九年一贯制学校", UnitKind.nine_year, True, False, True),
    ("德惠市五台九年一贯制学校", UnitKind.nine_year, True, True, True),
    ("德惠市郭家九年一贯制学校", UnitKind.nine_year, False, False, True),
    ("德惠市岔路口九年一贯制学校", UnitKind.nine_year, True, False, False),
    ("德惠市第一高级中学", UnitKind.senior, False, True, True),
    ("德惠市第二高级中学", UnitKind.senior, False, True, True),
    ("德惠市实验高级中学", UnitKind.senior, False, True, True),
    ("德惠市职业技术学校", UnitKind.vocational, True, True, True),
    ("德惠市职业教育中心", UnitKind.vocational, False, True, True),
    ("德惠市机关幼儿园", UnitKind.kindergarten, False, False, True),
    ("德惠市第二幼儿园", UnitKind.kindergarten, False, False, True),
    ("德惠市实验幼儿园", UnitKind.kindergarten, False, False, True),
    ("德惠市米沙子镇中心幼儿园", UnitKind.kindergarten, True, False, True),
    ("德惠市达家沟镇中心幼儿园", UnitKind.kindergarten, False, False, True),
    ("德惠市阳光民办幼儿园", UnitKind.private_kindergarten, True, False, True),
    ("德惠市启明星民办幼儿园", UnitKind.private_kindergarten, False, False, True),
    ("德惠市童心民办幼儿园", UnitKind.private_kindergarten, True, False, True),
    ("德惠市蓓蕾民办幼儿园", UnitKind.private_kindergarten, False, False, True),
    ("德惠市博学校外培训学校", UnitKind.training_institution, False, False, False),
    ("德惠市启航校外培训学校", UnitKind.training_institution, False, False, False),
    ("德惠市书香校外培训学校", UnitKind.training_institution, False, False, False),
    ("德惠市墨韵艺术校外培训学校", UnitKind.training_institution, False, False, False),
)


def _heads(kind: UnitKind) -> tuple[str, str]:
    if kind in (UnitKind.kindergarten, UnitKind.private_kindergarten):
        return "园长", "安全员"
    if kind == UnitKind.training_institution:
        return "校长", "安全员"
    return "校长", "安全主任"


def demo_organisation() -> OrgData:
    """The Dehui education bureau, its 20 departments and 40 synthetic schools (fixed seed)."""
    b, names = _Builder(_local_channel), _names(835012)
    bureau = b.unit("DH", "德惠市教育局", UnitKind.bureau)
    leaders = []
    for i, (title, roles, _) in enumerate(_DEHUI_LEADERS, start=1):
        leaders.append(b.person(f"DH-L{i:02d}", next(names), bureau, title, *roles))
    in_charge = {fn: leaders[i] for i, (_, _, fns) in enumerate(_DEHUI_LEADERS) for fn in fns}
    for function, name, head in DEPARTMENTS:
        dept = b.unit(f"DH-{function}", name, UnitKind.department, bureau, function=function)
        b.person(f"{dept}-01", next(names), dept, f"{name}{head}", RoleKind.principal)
        b.role(in_charge[function], dept, RoleKind.in_charge)
        if function == "safety":  # the section's desk officer: who the operator usually is
            b.person(f"{dept}-02", next(names), dept, "学校安全科科员", RoleKind.staff)
    patrons = leaders[1:]  # 包保 is carried by the other members (part 一（五）)
    for i, (name, kind, bus, dorm, canteen) in enumerate(_DEHUI_SCHOOLS, start=1):
        school = b.unit(f"DH-S{i:03d}", name, kind, bureau, has_school_bus=bus, has_dormitory=dorm, has_canteen=canteen)
        head, officer = _heads(kind)
        b.person(f"{school}-01", next(names), school, head, RoleKind.principal)
        b.person(f"{school}-02", next(names), school, officer, RoleKind.safety_officer)
        b.role(patrons[(i - 1) % len(patrons)], school, RoleKind.patron)
    b.data.source = "demo"
    return b.data


_SYNTHETIC_KINDS = (
    (UnitKind.primary, 7), (UnitKind.junior, 3), (UnitKind.nine_year, 2), (UnitKind.senior, 1),
    (UnitKind.vocational, 1), (UnitKind.kindergarten, 3), (UnitKind.private_kindergarten, 2),
    (UnitKind.training_institution, 1),
)
_SUFFIX = {
    UnitKind.primary: "小学", UnitKind.junior: "中学", UnitKind.nine_year: "九年一贯制学校",
    UnitKind.senior: "高级中学", UnitKind.vocational: "职业学校", UnitKind.kindergarten: "幼儿园",
    UnitKind.private_kindergarten: "民办幼儿园", UnitKind.training_institution: "校外培训学校",
}


def synthetic_organisation(n_units: int, *, channel_url: Callable[[str], str] = _local_channel,
                           prefix: str = "SY", leaders: int = 10) -> OrgData:
    """A province-scale organisation for benchmarks: a bureau, its departments, ``n_units``
    schools with a principal and a safety officer each, 包保 spread over the bureau leaders."""
    cycle = [kind for kind, weight in _SYNTHETIC_KINDS for _ in range(weight)]
    b = _Builder(channel_url)
    bureau = b.unit(prefix, f"{prefix} 省教育厅（合成）", UnitKind.bureau)
    names = (_SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i * 7) % len(_GIVEN)] + _GIVEN[(i * 13 + 5) % len(_GIVEN)]
             for i in range(10**9))
    heads = [b.person(f"{prefix}-L{i:02d}", next(names), bureau, "厅长" if i == 1 else "副厅长",
                      *((RoleKind.principal,) if i == 1 else (RoleKind.safety_lead, RoleKind.leader) if i == 2
                        else (RoleKind.leader,)))
             for i in range(1, max(leaders, 2) + 1)]
    for j, (function, name, head) in enumerate(DEPARTMENTS):
        dept = b.unit(f"{prefix}-{function}", name, UnitKind.department, bureau, function=function)
        b.person(f"{dept}-01", next(names), dept, f"{name}{head}", RoleKind.principal)
        b.role(heads[j % len(heads)], dept, RoleKind.in_charge)
    patrons = heads[1:]
    for i in range(1, n_units + 1):
        kind = cycle[i % len(cycle)]
        school = b.unit(
            f"{prefix}-S{i:06d}", f"合成市第{i}{_SUFFIX[kind]}", kind, bureau,
            has_school_bus=i % 5 == 0, has_dormitory=kind in (UnitKind.senior, UnitKind.vocational) or i % 11 == 0,
            has_canteen=kind != UnitKind.training_institution and i % 3 != 0,
        )
        head, officer = _heads(kind)
        b.person(f"{school}-1", next(names), school, head, RoleKind.principal)
        b.person(f"{school}-2", next(names), school, officer, RoleKind.safety_officer)
        b.role(patrons[i % len(patrons)], school, RoleKind.patron)
    b.data.source = f"synthetic:{n_units}"
    return b.data


# --------------------------------------------------------------------------- checking

def _label(what: str, code: str) -> str:
    return {"unit": f"单位 '{code}' / unit '{code}'", "person": f"人员 '{code}' / person '{code}'"}[what]


_Err = tuple[tuple, str]  # (sort key: file, sheet, row) and the line the user reads


def _err(src: Src | None, column: str | None, fallback: str, text: str) -> _Err:
    if src is None:
        return ("\uffff", "", 0), f"{fallback}: {text}"
    return (src.file, src.sheet or "", src.row), f"{src.at(column)}: {text}"


def _col(src: Src | None, key: str, columns: Sequence[Column]) -> str:
    """The column as the user's header names it (an English alias, say), else our header."""
    if src is not None and src.names and key in src.names:
        return src.names[key]
    return next(c.header for c in columns if c.key == key)


def check_org(data: OrgData, *, session: Session | None = None, errors: Sequence[_Err] = (),
              rejected: Collection[str] = (), deactivate_missing: bool = False) -> None:
    """Check the data as a whole (and against the database, with a session); raise
    ``OrgImportError`` listing ``errors`` and everything found here. Nothing is written.
    With ``deactivate_missing``, a full units table must name every unit the data refers to."""
    out: list[_Err] = list(errors)
    db_units: dict[str, tuple[str, str | None]] = {}  # code → (kind, parent code)
    db_persons: set[str] = set()
    full_units = deactivate_missing and "units" in data.tables
    if session is not None:
        if not full_units:  # else the units the file leaves out are about to be deactivated
            rows = session.execute(sa.select(Unit.id, Unit.code, Unit.kind, Unit.parent_id)).all()
            code_of = {r.id: r.code for r in rows}
            db_units = {r.code: (r.kind, code_of.get(r.parent_id)) for r in rows}
        db_persons = set(session.execute(sa.select(Person.code)).scalars())
    not_found = "org.err.unit_not_in_file" if full_units else "org.err.unit_not_found"
    _check_urls(session, data)

    def unit_err(u: UnitRow, key: str, text: str) -> None:
        out.append(_err(u.src, _col(u.src, key, UNIT_COLUMNS), _label("unit", u.code), text))

    def person_err(p: PersonRow | RoleRow | ChannelRow, key: str | None, text: str) -> None:
        code = p.code if isinstance(p, PersonRow) else p.person_code
        column = _col(p.src, key, PERSON_COLUMNS) if key else getattr(p, "column", None)
        out.append(_err(p.src, column, _label("person", code), text))

    units: dict[str, UnitRow] = {}
    for u in data.units:
        if u.code in units:
            first = units[u.code].src
            unit_err(u, "code", t("org.err.duplicate_code", code=u.code, first=first.at() if first else "-"))
        else:
            units[u.code] = u
    persons: dict[str, PersonRow] = {}
    for p in data.persons:
        if p.code in persons:
            first = persons[p.code].src
            person_err(p, "code", t("org.err.duplicate_code", code=p.code, first=first.at() if first else "-"))
        else:
            persons[p.code] = p

    def kind_of(code: str) -> UnitKind | None:
        if code in units:
            return units[code].kind
        return UnitKind(db_units[code][0]) if code in db_units else None

    def parent_of(code: str) -> str | None:
        if code in units:
            return units[code].parent_code
        return db_units[code][1] if code in db_units else None

    def missing(code: str) -> bool:  # a code whose own row was refused has had its error already
        return kind_of(code) is None and code not in rejected

    for u in units.values():
        if u.parent_code and missing(u.parent_code):
            unit_err(u, "parent_code", t(not_found, code=u.parent_code))
        path, code = [u.code], u.parent_code
        while code and code not in path and len(path) < 1000:
            path.append(code)
            code = parent_of(code)
        if code == u.code:
            unit_err(u, "parent_code", t("org.err.cycle", path=" → ".join([*path, code])))
    for p in persons.values():
        if missing(p.unit_code):
            person_err(p, "unit_code", t(not_found, code=p.unit_code))
    for r in data.roles:
        kind = kind_of(r.unit_code)
        if r.person_code not in persons and r.person_code not in db_persons:
            person_err(r, None, t("org.err.person_not_found", code=r.person_code))
        elif kind is None:
            own = r.person_code in persons and persons[r.person_code].unit_code == r.unit_code
            if missing(r.unit_code) and not (own and r.src is not None):  # reported for 所在单位编码
                person_err(r, None, t(not_found, code=r.unit_code))
        elif r.role == RoleKind.in_charge and kind != UnitKind.department:
            person_err(r, None, t("org.err.not_department", code=r.unit_code))
        elif r.role == RoleKind.patron and kind not in SCHOOL_KINDS:
            person_err(r, None, t("org.err.not_school", code=r.unit_code))
    slots: set[tuple[str, int]] = set()
    for c in data.channels:
        if c.person_code not in persons and c.person_code not in db_persons:
            person_err(c, None, t("org.err.person_not_found", code=c.person_code))
        elif (c.person_code, c.priority) in slots:
            person_err(c, None, t("org.err.duplicate_channel", code=c.person_code, priority=c.priority))
        slots.add((c.person_code, c.priority))
        if c.problem:
            person_err(c, None, t("org.err.bad_url", reason=c.problem))
    if out:
        raise OrgImportError([text for _, text in sorted(out, key=lambda e: e[0])])


def _check_urls(session: Session | None, data: OrgData) -> None:
    """Check the channel URLs not checked yet. A URL equal to the stored one was checked when
    stored; a masked export cell equal to the stored URL's mask means "keep the stored one"."""
    todo = [c for c in data.channels if not c.checked]
    if not todo:
        return
    stored: dict[tuple[str, int], str] = {}
    if session is not None:
        wanted = {(c.person_code, c.priority) for c in todo}
        query = sa.select(Person.code, Channel.priority, Channel.url).join(Person, Person.id == Channel.person_id)
        stored = {(code, prio): url for code, prio, url in session.execute(query) if (code, prio) in wanted}
    for c in todo:
        url = stored.get((c.person_code, c.priority))
        if url is not None and c.url != url:
            if c.url == mask(url):
                c.url = url
        if c.url != url:
            try:
                c.problem = validate(c.url)
            except Exception as exc:  # a validator must not leak the URL through a traceback either
                c.problem = type(exc).__name__
        c.checked = True


# --------------------------------------------------------------------------- loading

@dataclass(frozen=True)
class Counts:
    new: int = 0
    updated: int = 0
    removed: int = 0  # roles deleted; units, persons and channels deactivated (never deleted)
    unchanged: int = 0


@dataclass(frozen=True)
class LoadResult:
    units: Counts
    persons: Counts
    roles: Counts
    channels: Counts
    # Active units/persons of the database that a full table of the data leaves out and that
    # were kept active (no ``deactivate_missing``): worth a word to whoever imported the file.
    left_out: Mapping[str, int] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return sum(c.new for c in self._all())

    @property
    def changed(self) -> bool:
        return any(c.new or c.updated or c.removed for c in self._all())

    def _all(self) -> tuple[Counts, ...]:
        return (self.units, self.persons, self.roles, self.channels)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: vars(c).copy() for name, c in zip(("units", "persons", "roles", "channels"), self._all())}


_UNIT_COLS = ("name", "kind", "parent_id", "function", "has_school_bus", "has_dormitory", "has_canteen", "active")
_PERSON_COLS = ("name", "unit_id", "title", "phone", "email", "active")


def _ids(session: Session, table: sa.Table, codes: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    codes = list(codes)
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        out.update(session.execute(sa.select(table.c.code, table.c.id).where(table.c.code.in_(chunk))).tuples())
    return out


def _delete_ids(session: Session, table: sa.Table, ids: Sequence[int], **values: Any) -> None:
    for start in range(0, len(ids), 5000):
        where = table.c.id.in_(ids[start : start + 5000])
        session.execute(table.update().where(where).values(**values) if values else table.delete().where(where))


# pingan.core.db's insert_ignore/upsert compile one multi-VALUES statement per 2,000 rows, and
# compiling is what costs (≈0.4 s a chunk): 20,000 schools took ~50 s. These take the same
# arguments but hand SQLAlchemy a list of parameter sets ("insertmanyvalues"): the statement is
# compiled once and batched with RETURNING on SQLite and PostgreSQL alike.
def _on_conflict_insert(session: Session, table: sa.Table):
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    return (sqlite if dialect == "sqlite" else postgresql).insert(table)


def _insert_ignore(session: Session, table: sa.Table, rows: Sequence[dict], conflict: Sequence[str],
                   returning: Sequence[str] = ("id",)) -> list[sa.Row]:
    if not rows:
        return []
    stmt = _on_conflict_insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    return session.execute(stmt.returning(*(table.c[n] for n in returning)), list(rows)).all()


def _upsert(session: Session, table: sa.Table, rows: Sequence[dict], conflict: Sequence[str],
            update: Sequence[str]) -> None:
    if not rows:
        return
    stmt = _on_conflict_insert(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={n: stmt.excluded[n] for n in update})
    session.execute(stmt, list(rows))


def _changed(existing: dict[str, sa.Row], items: Iterable[Any], to_row: Callable[[Any], dict],
             columns: Sequence[str]) -> list[dict]:
    """The rows whose columns differ from what is stored (only those are written)."""
    out = []
    for item in items:
        old = existing.get(item.code)
        if old is None:
            continue
        row = to_row(item)
        if tuple(old)[2:] != tuple(row[c] for c in columns):  # rows were selected as (id, code, *columns)
            out.append(row)
    return out


def _left_out(existing: Mapping[str, sa.Row], listed: Iterable[Any]) -> list[sa.Row]:
    """The active rows of the database that the data does not list, in code order."""
    codes = {item.code for item in listed}
    return sorted((r for code, r in existing.items() if code not in codes and r.active), key=lambda r: r.code)


def load_org(session: Session, data: OrgData, *, actor: str, progress: Progress | None = None,
             deactivate_missing: bool = False) -> LoadResult:
    """Upsert the organisation by code in bulk; idempotent. Checks everything first and raises
    ``OrgImportError`` before any write; writes one audit row when something changed.

    With ``deactivate_missing``, the units and persons that a full table of the data
    (``data.tables``) leaves out are deactivated: never deleted, tasks and the outbox refer
    to them. Without it they are kept as they are and counted in ``LoadResult.left_out``."""
    check_org(data, session=session, deactivate_missing=deactivate_missing)
    step = progress or (lambda *_: None)
    stamp = now()
    unit_t, person_t, role_t, channel_t = Unit.__table__, Person.__table__, Role.__table__, Channel.__table__

    # Units: new ones level by level (a parent before its children: foreign keys are immediate).
    existing = {r.code: r for r in session.execute(sa.select(unit_t.c.id, unit_t.c.code, *(unit_t.c[c] for c in _UNIT_COLS)))}
    unit_ids = {code: r.id for code, r in existing.items()}

    def unit_row(u: UnitRow) -> dict:
        return {"code": u.code, "name": u.name, "kind": u.kind.value,
                "parent_id": unit_ids.get(u.parent_code) if u.parent_code else None, "function": u.function,
                "has_school_bus": u.has_school_bus, "has_dormitory": u.has_dormitory,
                "has_canteen": u.has_canteen, "active": u.active}

    pending = {u.code: u for u in data.units if u.code not in existing}
    units_new = 0
    while pending:
        ready = [u for u in pending.values() if u.parent_code not in pending]
        if not ready:  # check_org refuses cycles; this is the belt to its braces
            raise OrgImportError([t("org.err.cycle", path=" → ".join(sorted(pending)))])
        rows = [unit_row(u) | {"created_at": stamp} for u in ready]
        inserted = _insert_ignore(session, unit_t, rows, ["code"], returning=("id", "code"))
        units_new += len(inserted)
        unit_ids.update({r.code: r.id for r in inserted})
        unit_ids.update(_ids(session, unit_t, [u.code for u in ready if u.code not in unit_ids]))
        for u in ready:
            del pending[u.code]
    changed = _changed(existing, data.units, unit_row, _UNIT_COLS)
    _upsert(session, unit_t, [r | {"created_at": stamp} for r in changed], ["code"], _UNIT_COLS)
    left_out: dict[str, int] = {}
    deactivated: dict[str, list[str]] = {}
    gone = _left_out(existing, data.units) if "units" in data.tables else []
    if gone and deactivate_missing:
        _delete_ids(session, unit_t, [r.id for r in gone], active=False)
        deactivated["units"] = [r.code for r in gone]
    elif gone:
        left_out["units"] = len(gone)
    units = Counts(new=units_new, updated=len(changed), removed=len(deactivated.get("units", ())),
                   unchanged=len(data.units) - units_new - len(changed))
    step("units", len(data.units), len(data.units))

    # Persons.
    existing = {r.code: r for r in session.execute(sa.select(person_t.c.id, person_t.c.code, *(person_t.c[c] for c in _PERSON_COLS)))}
    person_ids = {code: r.id for code, r in existing.items()}

    def person_row(p: PersonRow) -> dict:
        return {"code": p.code, "name": p.name, "unit_id": unit_ids[p.unit_code], "title": p.title,
                "phone": p.phone, "email": p.email, "active": p.active}

    rows = [person_row(p) | {"created_at": stamp} for p in data.persons if p.code not in existing]
    inserted = _insert_ignore(session, person_t, rows, ["code"], returning=("id", "code"))
    person_ids.update({r.code: r.id for r in inserted})
    person_ids.update(_ids(session, person_t, [p.code for p in data.persons if p.code not in person_ids]))
    changed = _changed(existing, data.persons, person_row, _PERSON_COLS)
    _upsert(session, person_t, [r | {"created_at": stamp} for r in changed], ["code"], _PERSON_COLS)
    gone = _left_out(existing, data.persons) if "persons" in data.tables else []
    if gone and deactivate_missing:
        _delete_ids(session, person_t, [r.id for r in gone], active=False)
        deactivated["persons"] = [r.code for r in gone]
    elif gone:
        left_out["persons"] = len(gone)
    persons = Counts(new=len(inserted), updated=len(changed), removed=len(deactivated.get("persons", ())),
                     unchanged=len(data.persons) - len(inserted) - len(changed))
    step("persons", len(data.persons), len(data.persons))

    # Roles: a person in the data holds exactly the roles the data gives them.
    synced = {person_ids[p.code] for p in data.persons}
    wanted = {(person_ids[r.person_code], unit_ids[r.unit_code], r.role.value) for r in data.roles}
    have = {(r.person_id, r.unit_id, r.role): r.id for r in session.execute(sa.select(role_t))}
    rows = [{"person_id": p, "unit_id": u, "role": r} for p, u, r in sorted(wanted - have.keys())]
    inserted = _insert_ignore(session, role_t, rows, ["person_id", "unit_id", "role"])
    stale = sorted(i for key, i in have.items() if key[0] in synced and key not in wanted)
    _delete_ids(session, role_t, stale)
    roles = Counts(new=len(inserted), removed=len(stale), unchanged=len(wanted) - len(rows))
    step("roles", len(data.roles), len(data.roles))

    # Channels: updated in place; those a person no longer lists are deactivated, not deleted.
    wanted_ch = {(person_ids[c.person_code], c.priority): c for c in data.channels}
    have_ch = {(r.person_id, r.priority): r for r in session.execute(sa.select(channel_t))}
    rows, changed = [], []
    for (pid, priority), c in sorted(wanted_ch.items()):
        row = {"person_id": pid, "priority": priority, "url": c.url, "label": c.label, "active": True}
        old = have_ch.get((pid, priority))
        if old is None:
            rows.append(row)
        elif (old.url, old.label, old.active) != (c.url, c.label, True):
            changed.append(row)
    inserted = _insert_ignore(session, channel_t, rows, ["person_id", "priority"])
    _upsert(session, channel_t, changed, ["person_id", "priority"], ("url", "label", "active"))
    stale = sorted(r.id for key, r in have_ch.items() if key[0] in synced and key not in wanted_ch and r.active)
    _delete_ids(session, channel_t, stale, active=False)
    channels = Counts(new=len(inserted), updated=len(changed), removed=len(stale),
                      unchanged=len(wanted_ch) - len(rows) - len(changed))
    step("channels", len(data.channels), len(data.channels))

    result = LoadResult(units=units, persons=persons, roles=roles, channels=channels, left_out=left_out)
    if result.changed:  # a load that changes nothing leaves no trace, so a re-run is a true no-op
        detail = {"source": data.source, **result.as_dict()}
        if deactivated:
            detail["deactivated"] = deactivated
        session.add(Audit(actor=actor, action="org.load", object_type="org", object_id=(data.source or "org")[:64],
                          detail=detail))
        session.flush()
    return result


# --------------------------------------------------------------------------- the file format

@dataclass(frozen=True)
class Column:
    key: str
    header: str  # what templates and exports write
    aliases: tuple[str, ...] = ()
    required: bool = False
    help: str = ""


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
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"是", "有", "true", "yes", "y", "1", "√", "✓", "t"}
_FALSE = {"否", "无", "没有", "false", "no", "n", "0", "×", "✗", "f"}


def _norm(header: Any) -> str:
    text = re.sub(r"[（(].*?[)）]", "", str(header or ""))
    return re.sub(r"[\s*＊]", "", text).lower()


def _lookup(columns: Sequence[Column]) -> dict[str, Column]:
    return {_norm(name): col for col in columns for name in (col.header, col.key, *col.aliases)}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


@dataclass
class _Table:
    file: str
    sheet: str | None
    header: list[Any]
    rows: Iterable[tuple[int, Sequence[Any]]]  # (row number as Excel shows it, values)
    total: int | None = None


class _Reader:
    """Turns a table into rows of OrgData, collecting every error with its place."""

    def __init__(self, progress: Progress | None):
        self.errors: list[_Err] = []
        self.rejected: set[str] = set()  # unit codes of rows refused here: no second error for them
        self.progress = progress

    def _columns(self, table: _Table, columns: Sequence[Column]) -> dict[str, int] | None:
        lookup, found = _lookup(columns), {}
        header_src = Src(table.file, 1, table.sheet)
        for index, name in enumerate(table.header):
            col = lookup.get(_norm(name))
            if col is None:
                continue  # extra columns (备注 …) are the bureau's own business
            if col.key in found:
                self.errors.append(_err(header_src, str(name).strip(), "", t("org.err.duplicate_column")))
            found[col.key] = index
        missing = [c for c in columns if c.required and c.key not in found]
        for col in missing:
            self.errors.append(_err(header_src, col.header, "", t("org.err.missing_column")))
        return None if missing else found

    def _rows(self, table: _Table, columns: Sequence[Column]) -> Iterator[tuple[Src, Callable[[str], Any]]]:
        index = self._columns(table, columns)
        if index is None:
            return
        names = {c.key: (str(table.header[index[c.key]]).strip() if c.key in index else c.header) for c in columns}
        self.names = names
        for n, (rownum, values) in enumerate(table.rows, start=1):
            if self.progress and n % 2000 == 0:
                self.progress(table.sheet or table.file, n, table.total)
            if all(_text(v) is None for v in values):
                continue
            src = Src(table.file, rownum, table.sheet, names)
            for key, i in index.items():  # PostgreSQL refuses NUL in text; none belongs in a cell
                if i < len(values) and isinstance(values[i], str) and _CONTROL.search(values[i]):
                    self.error(src, key, "control_char")
            yield src, (
                lambda key, values=values: values[index[key]] if key in index and index[key] < len(values) else None
            )

    def error(self, src: Src, key: str, message: str, **values: Any) -> None:
        self.errors.append(_err(src, self.names[key], "", t(f"org.err.{message}", **values)))

    def required(self, src: Src, cell: Callable[[str], Any], key: str, max_len: int) -> str | None:
        value = _text(cell(key))
        if value is None:
            self.error(src, key, "required")
        elif len(value) > max_len:
            self.error(src, key, "too_long", max=max_len)
            return None
        return value

    def code(self, src: Src, cell: Callable[[str], Any], key: str, required: bool = True) -> str | None:
        value = _text(cell(key))
        if value is None:
            if required:
                self.error(src, key, "required")
            return None
        if not _CODE.match(value):
            self.error(src, key, "bad_code", value=value)
            return None
        return value

    def optional(self, src: Src, cell: Callable[[str], Any], key: str, max_len: int) -> str | None:
        value = _text(cell(key))
        if value is not None and len(value) > max_len:
            self.error(src, key, "too_long", max=max_len)
            return None
        return value

    def boolean(self, src: Src, cell: Callable[[str], Any], key: str, default: bool) -> bool:
        value = _text(cell(key))
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.error(src, key, "bad_bool", value=value)
        return default

    def codes(self, src: Src, cell: Callable[[str], Any], key: str) -> list[str]:
        value = _text(cell(key))
        out = []
        for part in _SEPARATORS.split(value or ""):
            if not part:
                continue
            if _CODE.match(part):
                out.append(part)
            else:
                self.error(src, key, "bad_code", value=part)
        return out

    # -- the two tables
    def units(self, table: _Table, data: OrgData) -> None:
        for src, cell in self._rows(table, UNIT_COLUMNS):
            code = self.code(src, cell, "code")
            name = self.required(src, cell, "name", 200)
            kind_text = _text(cell("kind"))
            kind = KINDS.get(kind_text) or KINDS.get((kind_text or "").lower())
            if kind_text is None:
                self.error(src, "kind", "required")
            elif kind is None:
                self.error(src, "kind", "unknown_kind", value=kind_text, choices="、".join(KIND_NAMES.values()))
            parent = self.code(src, cell, "parent_code", required=False)
            function = _text(cell("function"))
            if function is not None:
                code_fn = FUNCTIONS.get(function) or (function if _FUNCTION_CODE.match(function) else None)
                if code_fn is None:
                    self.error(src, "function", "bad_function", value=function)
                elif kind is not None and kind != UnitKind.department:
                    self.error(src, "function", "function_not_department")
                function = code_fn
            flags = {k: self.boolean(src, cell, k, False) for k in ("has_school_bus", "has_dormitory", "has_canteen")}
            active = self.boolean(src, cell, "active", True)
            if code and not (name and kind):
                self.rejected.add(code)
            if code and name and kind:
                data.units.append(UnitRow(code=code, name=name, kind=kind, parent_code=parent, function=function,
                                          active=active, src=src, **flags))

    def persons(self, table: _Table, data: OrgData) -> None:
        for src, cell in self._rows(table, PERSON_COLUMNS):
            code = self.code(src, cell, "code")
            name = self.required(src, cell, "name", 100)
            unit = self.code(src, cell, "unit_code")
            title = self.optional(src, cell, "title", 100)
            phone = _text(cell("phone"))
            if phone is not None:
                compact = re.sub(r"[\s\-()（）]", "", phone)
                if _PHONE.match(compact):
                    phone = compact
                else:
                    self.error(src, "phone", "bad_phone", value=phone)
            email = _text(cell("email"))
            if email is not None and (not _EMAIL.match(email) or len(email) > 200):
                self.error(src, "email", "bad_email", value=email)
            active = self.boolean(src, cell, "active", True)
            roles = self._roles(src, cell, code, unit)
            channels = self._channels(src, cell, code)
            if code and name and unit:
                data.persons.append(PersonRow(code=code, name=name, unit_code=unit, title=title, phone=phone,
                                              email=email, active=active, src=src))
                data.roles.extend(roles)
                data.channels.extend(channels)

    def _roles(self, src: Src, cell: Callable[[str], Any], person: str | None, unit: str | None) -> list[RoleRow]:
        out: list[RoleRow] = []
        column = self.names["roles"]
        for part in _SEPARATORS.split(_text(cell("roles")) or ""):
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
                out.append(RoleRow(person_code=person, unit_code=at or unit, role=role, src=src, column=column))
        for key, role in (("patron_of", RoleKind.patron), ("in_charge_of", RoleKind.in_charge)):
            for target in self.codes(src, cell, key):
                if person:
                    out.append(RoleRow(person_code=person, unit_code=target, role=role, src=src, column=self.names[key]))
        return out

    def _channels(self, src: Src, cell: Callable[[str], Any], person: str | None) -> list[ChannelRow]:
        out = []
        for priority in range(1, CHANNEL_SLOTS + 1):
            key = f"channel_{priority}"
            url = _text(cell(key))
            if url is not None and person:  # checked in check_org: unchanged URLs need no Apprise
                out.append(ChannelRow(person_code=person, priority=priority, url=url, src=src, column=self.names[key]))
        return out


def _xlsx_tables(path: Path, name: str, opened: list) -> list[tuple[str, _Table]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # not a workbook, damaged, encrypted …
        raise OrgImportError([f"{name}: " + t("org.err.cannot_read", reason=type(exc).__name__)]) from None
    opened.append(wb)  # read-only workbooks keep the file open until closed
    found = []
    sheets = {_norm(s): s for s in wb.sheetnames}
    for kind, names in (("units", (UNIT_SHEET, "units")), ("persons", (PERSON_SHEET, "persons"))):
        sheet = next((sheets[_norm(n)] for n in names if _norm(n) in sheets), None)
        if sheet is None:
            continue
        ws = wb[sheet]
        rows = ws.iter_rows(min_row=1, values_only=True)
        header = list(next(rows, ()) or ())
        total = (ws.max_row - 1) if ws.max_row else None
        found.append((kind, _Table(name, sheet, header, enumerate(rows, start=2), total)))
    if not found:
        raise OrgImportError([f"{name}: " + t("org.err.no_sheets", found="、".join(wb.sheetnames))])
    return found


def _csv_table(path: Path, name: str) -> tuple[str, _Table]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OrgImportError([f"{name}: " + t("org.err.cannot_read", reason=exc.strerror or type(exc).__name__)]) from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise OrgImportError([f"{name}: " + t("org.err.cannot_read", reason="encoding (use UTF-8 or GB18030)")])
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    normed = {_norm(h) for h in header}
    if {"姓名", "人员编码", "person_code", "所在单位编码", "unit_code"} & normed:
        kind = "persons"
    elif {"类型", "kind", "type", "单位类型", "单位名称"} & normed:
        kind = "units"
    else:
        raise OrgImportError([f"{name}: " + t("org.err.csv_kind")])
    total = text.count("\n")
    return kind, _Table(name, None, header, enumerate(rows, start=2), total)


def _tables(path: Path, opened: list) -> list[tuple[str, _Table]]:
    path = Path(path)
    name = path.name or str(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise OrgImportError([f"{name}: " + t("org.err.empty_dir")])
        return [_csv_table(p, f"{name}/{p.name}") for p in files]
    if not path.exists():
        raise OrgImportError([f"{name}: " + t("org.err.not_found_file")])
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_tables(path, name, opened)
    if suffix == ".csv":
        return [_csv_table(path, name)]
    raise OrgImportError([f"{name}: " + t("org.err.unsupported")])


def read_org_files(paths: Sequence[str | Path], *, session: Session | None = None,
                   progress: Progress | None = None, deactivate_missing: bool = False) -> OrgData:
    """Read workbooks, CSV files or directories of them into one ``OrgData``; check it all
    (against the database too, with a session) and raise ``OrgImportError`` on any bad row.
    ``deactivate_missing`` checks the data for ``load_org(..., deactivate_missing=True)``."""
    opened: list = []
    try:
        tables = [item for p in paths for item in _tables(Path(p), opened)]
        # Units first: a persons file may name units that another file defines.
        tables.sort(key=lambda item: item[0] != "units")
        reader, data = _Reader(progress), OrgData(source=", ".join(Path(p).name for p in paths)[:200])
        for kind, table in tables:
            getattr(reader, kind)(table, data)
            data.tables.add(kind)
    finally:
        for wb in opened:
            wb.close()
    check_org(data, session=session, errors=reader.errors, rejected=reader.rejected,
              deactivate_missing=deactivate_missing)
    return data


def read_org_file(path: str | Path, *, session: Session | None = None, progress: Progress | None = None) -> OrgData:
    """One workbook (sheets 单位 and 人员), one CSV file, or a directory of CSV files."""
    return read_org_files([path], session=session, progress=progress)


# --------------------------------------------------------------------------- writing

def missing_from_db(session: Session, data: OrgData) -> OrgData:
    """The part of ``data`` the database lacks: its new units, and its new persons with their
    roles and channels. Rows already stored are left out, so loading the result never undoes
    an operator's edits (``pingan init --demo`` run again after an import, say)."""
    units = set(session.execute(sa.select(Unit.code)).scalars())
    persons = set(session.execute(sa.select(Person.code)).scalars())
    out = OrgData(source=data.source)
    out.units = [u for u in data.units if u.code not in units]
    out.persons = [p for p in data.persons if p.code not in persons]
    new = {p.code for p in out.persons}
    out.roles = [r for r in data.roles if r.person_code in new]
    out.channels = [c for c in data.channels if c.person_code in new]
    return out


def org_from_db(session: Session) -> OrgData:
    """The organisation in the database as OrgData (channel URLs unmasked: handle with care)."""
    data = OrgData(source="database")
    code_of: dict[int, str] = {}
    for r in session.execute(sa.select(Unit.__table__).order_by(Unit.id)):
        code_of[r.id] = r.code
    for r in session.execute(sa.select(Unit.__table__).order_by(Unit.id)):
        data.units.append(UnitRow(code=r.code, name=r.name, kind=UnitKind(r.kind), parent_code=code_of.get(r.parent_id),
                                  function=r.function, has_school_bus=r.has_school_bus, has_dormitory=r.has_dormitory,
                                  has_canteen=r.has_canteen, active=r.active))
    person_code: dict[int, str] = {}
    for r in session.execute(sa.select(Person.__table__).order_by(Person.id)):
        person_code[r.id] = r.code
        data.persons.append(PersonRow(code=r.code, name=r.name, unit_code=code_of[r.unit_id], title=r.title,
                                      phone=r.phone, email=r.email, active=r.active))
    for r in session.execute(sa.select(Role.__table__).order_by(Role.id)):
        data.roles.append(RoleRow(person_code=person_code[r.person_id], unit_code=code_of[r.unit_id], role=RoleKind(r.role)))
    query = sa.select(Channel.__table__).where(Channel.active.is_(True)).order_by(Channel.person_id, Channel.priority)
    for r in session.execute(query):
        data.channels.append(ChannelRow(person_code=person_code[r.person_id], priority=r.priority, url=r.url, label=r.label))
    return data


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
            name = _role_name(r.role, kinds.get(r.unit_code, UnitKind.primary))
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


def _bold(cell: Any, font: Any) -> Any:
    cell.font = font
    return cell


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
        import openpyxl
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        wb = openpyxl.Workbook(write_only=True)  # streams rows: a province's 60,000 rows fit
        bold = Font(bold=True)
        for title, header, rows in ((UNIT_SHEET, unit_header, units), (PERSON_SHEET, person_header, persons),
                                    (HELP_SHEET, None, _help_rows())):
            ws = wb.create_sheet(title)
            widths = [14, 10, 90] if header is None else [max(10, len(h) * 2 + 4) for h in header]
            for i, width in enumerate(widths):
                ws.column_dimensions[get_column_letter(i + 1)].width = width
            if header:
                ws.freeze_panes = "A2"
                ws.append([_bold(WriteOnlyCell(ws, h), bold) for h in header])
            for row in rows:
                ws.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        wb.save(path)
        return path
    path.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (("units.csv", unit_header, units), ("persons.csv", person_header, persons)):
        with open(path / name, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
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


def export_org(session: Session, path: str | Path, *, with_secrets: bool = False) -> OrgData:
    """Write the organisation in the import format; channel URLs masked unless ``with_secrets``."""
    data = org_from_db(session)
    if not with_secrets:
        for c in data.channels:
            c.url = mask(c.url)
    write_org_file(data, path)
    return data
