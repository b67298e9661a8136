"""Organisation data checked as a whole before anything is written.

``check_org`` looks at what single rows cannot tell: codes given twice, units and persons
that neither the data nor the database holds, parents in a cycle, 包保 and 分管 pointing at the
wrong kind of unit, and channel URLs Apprise refuses. Every problem is reported at once, each
at its place (file, sheet, row and column, or the row's code for data without a file); a
channel URL never appears in a message (it may hold tokens).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlmodel import Session

from models import SCHOOL_KINDS, Channel, Person, RoleKind, Unit, UnitKind
from pingan.core.i18n import register, t
from pingan.delivery.transports import mask, validate
from pingan.org.data import ChannelRow, OrgData, OrgProblems, PersonRow, RoleRow, UnitRow

register({
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
})


def check_org(data: OrgData, *, session: Session | None = None, problems: OrgProblems | None = None,
              rejected: Collection[str] = (), deactivate_missing: bool = False) -> None:
    """Check the data as a whole (and against the database, with a session); raise
    ``OrgImportError`` listing ``problems`` (a reader's) and everything found here. Nothing
    is written. With ``deactivate_missing``, a full units table must name every unit the data
    refers to; ``rejected`` are codes whose own rows were refused (no second error for them)."""
    out = problems if problems is not None else OrgProblems()
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
        out.at(u.src, key, t("org.place.unit", code=u.code), text)

    def person_err(p: PersonRow | RoleRow | ChannelRow, key: str | None, text: str) -> None:
        code = p.code if isinstance(p, PersonRow) else p.person_code
        out.at(p.src, key or getattr(p, "column", None), t("org.place.person", code=code), text)

    units: dict[str, UnitRow] = {}
    for u in data.units:
        if u.code in units:
            first = units[u.code].src
            unit_err(u, "code", t("org.err.duplicate_code", code=u.code, first=first.place() if first else "-"))
        else:
            units[u.code] = u
    persons: dict[str, PersonRow] = {}
    for p in data.persons:
        if p.code in persons:
            first = persons[p.code].src
            person_err(p, "code", t("org.err.duplicate_code", code=p.code, first=first.place() if first else "-"))
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
        raise out.error()


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

