"""Organisations without a file: the Dehui demo (``pingan init --demo``, ``pingan up --demo``)
and a province-scale synthetic organisation for benchmarks, both as ``OrgData``.

Names are synthetic Chinese names from a fixed seed, so every run yields the same people.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from models import RoleKind, UnitKind
from pingan.org.data import DEPARTMENTS, ChannelRow, OrgData, PersonRow, RoleRow, UnitRow

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

