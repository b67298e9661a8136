"""The organisation as data keyed by codes: the rows a demo, a generator or a file yields.

Everything here is keyed by codes, never database ids, so the demo (``pingan.org.demo``), the
province-scale generator and a file (``pingan.org.sheets``) all produce the same ``OrgData``;
``pingan.org.service.store_org`` turns it into rows. The names of unit kinds, roles and the
bureau's departments are the vocabulary of the file format; ``OrgImportError`` is every
problem with such data, each line with its place (file, sheet, row and column).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from models import RoleKind, UnitKind
from pingan.core.i18n import register, t
from pingan.core.sheets import Place, Problems

Progress = Callable[[str, int, int | None], None]  # (stage, done, total or None)
MAX_LINES = 20  # error lines shown; the rest are counted
CHANNEL_SLOTS = 3

register({
    "org.err.summary": {
        "zh-CN": "组织数据有 {n} 处错误，未写入任何数据：",
        "en": "{n} errors in the organisation data; nothing was written:",
    },
    "org.err.more": {"zh-CN": "…… 另有 {n} 处错误", "en": "… and {n} more"},
    "org.place.unit": {"zh-CN": "单位 '{code}'", "en": "unit '{code}'"},
    "org.place.person": {"zh-CN": "人员 '{code}'", "en": "person '{code}'"},
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
    # column key → (0-based index in the file or None, the header as the file names it); one per table
    columns: Mapping[str, tuple[int | None, str]] | None = field(default=None, compare=False, repr=False)

    def place(self, key: str | None = None) -> Place:
        if key is None:
            return Place(self.file, self.sheet, self.row)
        index, header = (self.columns or {}).get(key, (None, key))
        return Place(self.file, self.sheet, self.row, index, header)


@dataclass
class OrgProblems(Problems):
    """The problems of organisation data, reported in file, sheet and row order."""

    keyed: list[tuple[tuple, str]] = field(default_factory=list)  # (file, sheet, row) and the line

    def add(self, place: Place | str, message: str) -> None:
        super().add(place, message)
        key = (place.file, place.sheet or "", place.row or 0) if isinstance(place, Place) else ("\uffff", "", 0)
        self.keyed.append((key, self.lines[-1]))

    def at(self, src: Src | None, key: str | None, label: str, message: str) -> None:
        """A problem of a row: at its cell when it came from a file, else after ``label`` (its code)."""
        self.add(label if src is None else src.place(key), message)

    def error(self) -> OrgImportError:
        return OrgImportError([line for _, line in sorted(self.keyed, key=lambda e: e[0])])


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
    column: str | None = field(default=None, compare=False, repr=False)  # the key of the column it came from


@dataclass(slots=True)
class ChannelRow:
    person_code: str
    priority: int
    url: str = field(repr=False)
    label: str | None = None
    src: Src | None = field(default=None, compare=False, repr=False)
    column: str | None = field(default=None, compare=False, repr=False)  # the key of the column it came from
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
    # of the database is missing (``store_org(..., deactivate_missing=True)``).
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
FUNCTION_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a function written as its code


def kind_name(kind: UnitKind | str) -> str:
    return KIND_NAMES[UnitKind(kind)]


def role_name(role: RoleKind, kind: UnitKind) -> str:
    if role == RoleKind.principal:
        return _PRINCIPAL_BY_KIND.get(kind, "校长")
    return ROLE_NAMES[role][0]
