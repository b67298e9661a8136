"""The words of the compliance reports and digests, in Chinese and English (``PINGAN_LOCALE``),
the clauses of the source documents they rest on, and the Prefect artifacts of a report.

Pure: a ``Report`` (``pingan.reports.compute``) in, tables and Markdown out.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pingan.core.i18n import locale, pick, register, t
from pingan.reports.compute import OUTCOMES, Figures, HazardFigures, Report, Row, TaskFact

TEXTS = {
    # sheets (Excel allows 31 characters and none of []:*?/\)
    "sheet.about": ("说明", "About"),
    "sheet.unit": ("按单位", "By unit"),
    "sheet.leader": ("按责任领导", "By leader"),
    "sheet.duty": ("按职责", "By duty"),
    "sheet.matrix": ("按时完成率矩阵", "On-time matrix"),
    "sheet.hazards": ("隐患", "Hazards"),
    "sheet.tasks": ("任务明细", "Tasks"),
    "sheet.charts": ("图表", "Charts"),
    # figure columns
    "col.tasks": ("任务数", "Tasks"),
    "col.due": ("应完成", "Due"),
    "col.on_time": ("按时完成", "On time"),
    "col.late": ("逾期完成", "Late"),
    "col.pending": ("待审核", "Awaiting review"),
    "col.missing": ("未完成", "Missing"),
    "col.waived": ("已豁免", "Waived"),
    "col.not_due": ("未到期", "Not yet due"),
    "col.rate": ("按时完成率", "On-time rate"),
    "col.escalated": ("被督办任务", "Escalated tasks"),
    "col.events": ("督办次数", "Escalation events"),
    "col.open_general": ("未销号一般隐患", "Open general hazards"),
    "col.open_major": ("未销号重大隐患", "Open major hazards"),
    "col.open_overdue": ("逾期未整改隐患", "Hazards past deadline"),
    "col.found": ("本期发现隐患", "Hazards found in period"),
    "col.closed": ("本期销号隐患", "Hazards closed in period"),
    # key columns
    "col.unit_code": ("单位编码", "Unit code"),
    "col.unit": ("单位", "Unit"),
    "col.kind": ("类型", "Kind"),
    "col.unit_leaders": ("包保/分管领导", "Responsible leader"),
    "col.leader_code": ("人员编码", "Person code"),
    "col.leader": ("责任领导", "Leader"),
    "col.relations": ("负责范围", "Answers for"),
    "col.duty_key": ("职责编号", "Duty key"),
    "col.duty": ("职责", "Duty"),
    "col.document": ("依据文件", "Source document"),
    "col.clause": ("条款", "Clause"),
    # task sheet
    "col.task": ("任务编号", "Task"),
    "col.person": ("责任人", "Person"),
    "col.leaders": ("责任领导", "Responsible leaders"),
    "col.period": ("周期", "Period"),
    "col.due_at": ("截止时间", "Deadline"),
    "col.outcome": ("结果", "Outcome"),
    "col.review": ("审核状态", "Review"),
    "col.completed_at": ("提交时间", "Handed in at"),
    "col.version": ("材料版本", "Version"),
    "col.waiver": ("豁免", "Waiver"),
    "col.level": ("最高督办级别", "Highest level"),
    "col.levels": ("督办级别", "Levels reached"),
    # hazard sheet
    "col.hazard": ("隐患编号", "Hazard"),
    "col.hazard_level": ("隐患等级", "Level"),
    "col.state": ("状态", "State"),
    "col.place": ("部位", "Place"),
    "col.found_at": ("发现时间", "Found at"),
    "col.deadline": ("整改期限", "Deadline"),
    "col.open": ("未销号", "Open"),
    "col.overdue": ("逾期", "Past deadline"),
    "col.found_in_period": ("本期发现", "Found in period"),
    "col.closed_in_period": ("本期销号", "Closed in period"),
    # outcomes, relations, reviews, hazard words
    "outcome.on_time": ("按时完成", "on time"),
    "outcome.late": ("逾期完成", "late"),
    "outcome.pending": ("待审核", "awaiting review"),
    "outcome.missing": ("未完成", "missing"),
    "outcome.waived": ("已豁免", "waived"),
    "outcome.not_due": ("未到期", "not yet due"),
    "rel.patron": ("包保", "patron of"),
    "rel.in_charge": ("分管", "in charge of"),
    "rel.own": ("本人职责", "own duties"),
    "rel.principal": ("主要负责人", "principal of"),
    "review.none": ("未提交", "nothing handed in"),
    "review.submitted": ("已提交", "handed in"),
    "review.accepted": ("已通过", "accepted"),
    "review.rejected": ("已退回", "rejected"),
    "hzs.reported": ("已上报", "reported"),
    "hzs.rectifying": ("整改中", "rectifying"),
    "hzs.rectified": ("待核验", "rectified, to verify"),
    "hzs.verified": ("已核验", "verified, to close"),
    "hzs.closed": ("已销号", "closed"),
    "hz.general": ("一般隐患", "general"),
    "hz.major": ("重大隐患", "major"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "total": ("合计", "Total"),
    "total.distinct": ("合计（任务不重复计）", "Total (each task once)"),
    "no_leader": ("未明确责任领导", "No responsible leader"),
    # titles and notes
    "title": ("安全工作履职考核报告", "Safety compliance report"),
    "period": ("报告期：{key}（{start} 至 {end}），数据截至 {as_of}（北京时间）",
               "Period {key} ({start} to {end}), as of {as_of} (Asia/Shanghai)"),
    "basis": ("依据", "Basis"),
    "definitions": ("口径", "Definitions"),
    "def.scope": ("报告期内截止的每项任务计入一次；同一任务计入其单位、职责和每位责任领导。",
                  "Every task whose deadline falls in the period counts once, for its unit, its duty and each "
                  "leader who answers for it."),
    "def.on_time": ("按时完成：通过审核的材料在截止时间前提交；逾期完成：截止后提交并通过。",
                    "On time: the accepted evidence was handed in by the deadline; late: handed in after it, accepted."),
    "def.missing": ("未完成：截止时间已过，未提交或材料被退回；待审核：已提交、尚未审核；已豁免：经批准的豁免覆盖截止时间。",
                    "Missing: the deadline passed with nothing handed in or the evidence rejected; awaiting review: "
                    "handed in, not yet reviewed; waived: an approved waiver covers the deadline."),
    "def.rate": ("按时完成率 = 按时完成 ÷（应完成 − 已豁免）；应完成 = 任务数 − 未到期。",
                 "On-time rate = on time ÷ (due − waived); due = tasks − not yet due."),
    "def.levels": ("督办至第 N 级：逾期未交材料的任务逐级督办（单位主要负责人 → 包保/分管领导 → 局主要负责人、安全科）已达到该级的任务数。",
                   "Escalated to level N: tasks whose escalation (unit principal → responsible bureau leader → bureau "
                   "principal and safety section) reached that level."),
    "def.leaders": ("责任领导：学校为包保领导，科室为分管领导，局领导本人的职责计入本人；一项任务可有多位责任领导，故“按责任领导”合计按任务不重复计。",
                    "Responsible leader: the patron (包保) of a school, the leader in charge (分管) of a department, "
                    "a bureau leader for his own duties; a task may have several, so the leader view's total "
                    "counts each task once."),
    "def.trace": ("每个数字均可在“任务明细”表中按单位编码、职责编号、责任领导和结果筛选得到。",
                  "Every figure can be reproduced by filtering the task sheet by unit code, duty key, leader and outcome."),
    "def.times": ("时间均为北京时间（Asia/Shanghai）。", "All times are Asia/Shanghai."),
    "level": ("督办至第{n}级", "Escalated to level {n}"),
    "chart.heatmap": ("各单位各职责按时完成率 {key}", "On-time rate per unit and duty, {key}"),
    "chart.escalations": ("各责任领导所负责任务的督办情况 {key}", "Escalated tasks per responsible leader, {key}"),
    "chart.no_data": ("本期无数据", "No data for this period"),
    "chart.level": ("第{n}级", "level {n}"),
    "chart.tasks": ("任务数", "tasks"),
    "md.charts": ("图表", "Charts"),
    "md.files": ("文件", "Files"),
    "md.worst": ("按时完成率最低的单位", "Units with the lowest on-time rate"),
    "md.leaders": ("各责任领导", "Per responsible leader"),
    "md.duties": ("各项职责", "Per duty"),
    "md.hazards": ("未销号隐患：一般 {general} 项，重大 {major} 项，其中逾期未整改 {overdue} 项；本期发现 {found} 项、销号 {closed} 项。",
                   "Open hazards: {general} general, {major} major, {overdue} past their deadline; {found} found and "
                   "{closed} closed in the period."),
    "md.no_hazards": ("本数据库尚无隐患表，隐患部分从略。", "This database has no hazard table: hazards are left out."),
    "md.more": ("……另有 {n} 行，见表格产物和工作簿。", "… {n} more rows: see the table artifacts and the workbook."),
}
register({f"rpt.{k}": {"zh-CN": zh, "en": en} for k, (zh, en) in TEXTS.items()})

KIND = {
    "bureau": ("教育局", "bureau"), "department": ("科室", "department"), "primary": ("小学", "primary school"),
    "junior": ("初中", "junior middle school"), "nine_year": ("九年一贯制学校", "nine-year school"),
    "senior": ("高中", "senior high school"), "vocational": ("职业学校", "vocational school"),
    "kindergarten": ("幼儿园", "kindergarten"), "private_kindergarten": ("民办幼儿园", "private kindergarten"),
    "training_institution": ("校外培训机构", "training institution"),
}


def tr(name: str, /, **values: object) -> str:
    return t(f"rpt.{name}", **values)


def kind_name(kind: str) -> str:
    zh, en = KIND.get(kind, (kind, kind))
    return en if locale() == "en" else zh


def relations_text(relations: Mapping[str, tuple[str, ...]]) -> str:
    sep = "; " if locale() == "en" else "；"
    parts = []
    for rel, units in relations.items():
        name = tr(f"rel.{rel}")
        parts.append(f"{name} {', '.join(units)}" if locale() == "en" and units else
                     (f"{name}：{'、'.join(units)}" if units else name))
    return sep.join(parts)


# =========================================================================== the source documents

@dataclass(frozen=True)
class Basis:
    """A clause of a source document the report rests on, quoted verbatim."""

    document: str
    clause: str
    text: str
    why_zh: str
    why_en: str


DEHUI = "000_835012ae156b196b.txt"
ERDAO = "002_8ab6cc7abff1c59e.txt"
TITLES = {DEHUI: "德惠市教育局党政领导干部安全生产权利责任清单",
          ERDAO: "二道区教育系统 2021 年中小学（幼儿园）安全工作要点"}

BASIS = (
    Basis(DEHUI, "一（六）",
          "将学校安全工作纳入各学校班子成员考核、考察的重要内容，并加大权重。建立完善学校安全考核评价体系，"
          "严格考核、奖惩；组织开展全市教育系统年度安全生产考核",
          "安全工作履职情况纳入年度考核", "safety performance is part of the annual assessment"),
    Basis(DEHUI, "三（八）",
          "组织开展学校安全目标管理考核工作，并将考核结果作为对被考核单位领导班子和有关领导干部考核、奖惩和使用的重要参考。",
          "考核结果用于领导班子和领导干部的考核、奖惩", "its results bear on leaders' assessment and rewards"),
    Basis(DEHUI, "六（二）6", "在教师表彰中实行安全工作“一票否决”制。",
          "安全工作“一票否决”", "the one-vote veto (一票否决) on safety"),
    Basis(DEHUI, "一（八）",
          "坚持尽职免责、失职追责的原则，组织相关部门依法、依规、依纪指导或参与学校安全事故调查处理，"
          "精准追究相关责任单位和责任人员的责任",
          "尽职免责、失职追责", "accountability: diligence exempts, dereliction is pursued (失职追责)"),
    Basis(ERDAO, "3",
          "健全和落实安全责任落实追究机制。坚持把隐患当事故来对待和处理的原则，依据《长春市教育系统安全责任事前追究暂行规定》"
          "进行事前追责；依法依规对学校及相关责任人进行事后追责。",
          "事前追责、事后追责", "accountability before and after the fact (追责)"),
    Basis(ERDAO, "17", "加强目标考核督导评价。", "目标考核督导评价", "target assessment and supervision"),
)


def basis_lines() -> list[str]:
    """One line per clause: 《title》clause：“quote”（why）."""
    en = locale() == "en"
    return [
        (f"{TITLES[b.document]}, clause {b.clause} ({b.why_en}): “{b.text}”" if en
         else f"《{TITLES[b.document]}》{b.clause}（{b.why_zh}）：“{b.text}”")
        for b in BASIS
    ]


def definitions() -> list[str]:
    return [tr(k) for k in ("def.scope", "def.on_time", "def.missing", "def.rate", "def.levels", "def.leaders",
                            "def.trace", "def.times")]


# =========================================================================== columns shared by sheets and artifacts

def figure_columns(report: Report, *, hazards: bool = True) -> list[tuple[str, str]]:
    """(id, header) of the figure columns, in order (hazard columns only where the report has them
    and the view places hazards: units and leaders, not duties)."""
    cols = [(k, tr(f"col.{k}")) for k in ("tasks", "due", "on_time", "late", "pending", "missing", "waived",
                                           "not_due", "rate", "escalated")]
    cols += [(f"level_{n}", tr("level", n=n)) for n in report.levels]
    cols.append(("events", tr("col.events")))
    if report.hazards is not None and hazards:
        cols += [(k, tr(f"col.{k}")) for k in ("open_general", "open_major", "open_overdue", "found", "closed")]
    return cols


def figure_values(report: Report, f: Figures, h: HazardFigures | None) -> dict[str, object]:
    out: dict[str, object] = {"tasks": f.total, "due": f.due, **{o: f[o] for o in OUTCOMES}, "rate": f.rate,
                              "escalated": f.escalated, "events": f.events}
    out.update({f"level_{n}": f.levels.get(n, 0) for n in report.levels})
    if report.hazards is not None:
        h = h or HazardFigures()
        out.update({"open_general": h.general, "open_major": h.major, "open_overdue": h.overdue,
                    "found": h.found, "closed": h.closed})
    return out


def key_columns(view: str) -> list[tuple[str, str]]:
    keys = {"unit": ("unit_code", "unit", "kind", "unit_leaders"), "leader": ("leader_code", "leader", "relations"),
            "duty": ("duty_key", "duty", "document", "clause")}[view]
    return [(k, tr(f"col.{k}")) for k in keys]


def key_values(view: str, row: Row, report: Report) -> dict[str, object]:
    if view == "unit":
        return {"unit_code": row.key, "unit": row.label, "kind": kind_name(row.info.get("kind", "")),
                "unit_leaders": row.info.get("leaders", "")}
    if view == "leader":
        return {"leader_code": row.key, "leader": row.label or tr("no_leader"), "relations": relations_text(row.relations)}
    document = row.info.get("document", "")
    return {"duty_key": row.key, "duty": pick(row.label, row.info.get("name_en") or None),
            "document": report.documents.get(document, TITLES.get(document, document)), "clause": row.info.get("clause", "")}


def rows_of(report: Report, view: str) -> list[Row]:
    return {"unit": report.by_unit, "leader": report.by_leader, "duty": report.by_duty}[view]


def view_table(report: Report, view: str) -> tuple[list[str], list[list[object]], list[object]]:
    """(headers, rows, totals row) of a view, rates as fractions."""
    keys, figs = key_columns(view), figure_columns(report, hazards=view != "duty")
    headers = [h for _, h in keys + figs]
    body = []
    for row in rows_of(report, view):
        values = {**key_values(view, row, report), **figure_values(report, row.figures, row.hazards)}
        body.append([values[k] for k, _ in keys + figs])
    label = tr("total.distinct" if view == "leader" else "total")
    totals_values = figure_values(report, report.totals, report.hazard_totals)
    totals = [label] + [""] * (len(keys) - 1) + [totals_values[k] for k, _ in figs]
    return headers, body, totals


def task_columns() -> list[str]:
    return [tr(f"col.{k}") for k in ("task", "duty_key", "duty", "clause", "unit_code", "unit", "person", "leaders",
                                      "period", "due_at", "outcome", "review", "completed_at", "version", "waiver",
                                      "level", "levels", "events")]


def naive(moment: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: local Shanghai wall time, as the sheet says."""
    from pingan.core.clock import TZ

    return None if moment is None else moment.astimezone(TZ).replace(tzinfo=None)


def leaders_text(fact: TaskFact) -> str:
    sep = ", " if locale() == "en" else "、"
    return sep.join(f"{x.name}（{tr(f'rel.{x.relation}')}）" for x in fact.leaders) or tr("no_leader")


def task_values(fact: TaskFact) -> list[object]:
    waiver = ""
    if fact.waiver is not None:
        waiver = f"{fact.waiver.until:%Y-%m-%d %H:%M} · {fact.waiver.granted_by} · {fact.waiver.reason}"
    return [
        fact.id, fact.duty_key, pick(fact.duty, fact.duty_en), fact.clause, fact.unit_code, fact.unit, fact.person or "",
        leaders_text(fact), fact.period_key, naive(fact.due_at), tr(f"outcome.{fact.outcome}"),
        tr(f"review.{fact.review}"), naive(fact.completed_at), fact.version, waiver, fact.level,
        ",".join(map(str, fact.levels)), fact.events,
    ]


# =========================================================================== Prefect artifacts

def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.1%}"
    if value is None:
        return "—"
    return value


def artifact_table(report: Report, view: str) -> list[dict]:
    headers, body, totals = view_table(report, view)
    return [dict(zip(headers, map(_cell, row))) for row in [*body, totals]]


def missing_table(report: Report, limit: int = 1000) -> list[dict]:
    """Tasks missing or late: what accountability (追责) starts from."""
    cols = task_columns()
    rows = [dict(zip(cols, (_cell(v.strftime("%Y-%m-%d %H:%M")) if isinstance(v, dt.datetime) else _cell(v)
                            for v in task_values(f))))
            for f in report.tasks if f.outcome in ("missing", "late")]
    return rows[:limit] or [{cols[0]: "—", tr("col.outcome"): tr("outcome.on_time")}]


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def image_markdown(label: str, path: Path, *, embed_limit: int = 1_500_000) -> str:
    """A chart in Markdown: inline as a data URI (Prefect's artifact page renders ``<img src>``
    from Markdown images unchanged), or its path when the file is too large to inline."""
    data = path.read_bytes()
    if len(data) <= embed_limit:
        return f"![{label}](data:image/png;base64,{base64.b64encode(data).decode()})\n\n`{path}`"
    return f"**{label}**: `{path}`"


def summary_markdown(report: Report, files: Mapping[str, Path] | None = None, *, top: int = 10) -> str:
    """The report on one page: totals, the weakest units, leaders, duties, hazards, the basis and charts."""
    p, tot = report.period, report.totals
    lines = [
        f"# {tr('title')} · {p.key}",
        tr("period", key=p.key, start=p.start.isoformat(), end=p.end.isoformat(), as_of=f"{report.as_of:%Y-%m-%d %H:%M}"),
        "",
    ]
    cols = ["tasks", "due", "on_time", "late", "pending", "missing", "waived", "rate", "escalated"]
    levels = [f"level_{n}" for n in report.levels]
    head = [tr(f"col.{c}") for c in cols] + [tr("level", n=n) for n in report.levels]
    values = figure_values(report, tot, report.hazard_totals)
    lines += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head),
              "| " + " | ".join(str(_cell(values[c])) for c in cols + levels) + " |", ""]
    if report.hazard_totals is not None:
        h = report.hazard_totals
        lines += [tr("md.hazards", general=h.general, major=h.major, overdue=h.overdue, found=h.found, closed=h.closed), ""]
    else:
        lines += [tr("md.no_hazards"), ""]

    def table(title: str, view: str, rows: list[Row]) -> None:
        keys = key_columns(view)[:2]
        heads = [h for _, h in keys] + [tr("col.due"), tr("col.on_time"), tr("col.late"), tr("col.missing"),
                                         tr("col.rate"), tr("col.escalated")] + [tr("level", n=n) for n in report.levels]
        nonlocal lines
        lines += [f"## {title}", "", "| " + " | ".join(heads) + " |", "|---|---|" + "---:|" * (len(heads) - 2)]
        for row in rows[:top]:
            kv = key_values(view, row, report)
            f = row.figures
            lines.append("| " + " | ".join([str(kv[k]) for k, _ in keys] + [
                str(f.due), str(f["on_time"]), str(f["late"]), str(f["missing"]), _rate(f.rate), str(f.escalated),
                *(str(f.levels.get(n, 0)) for n in report.levels)]) + " |")
        if len(rows) > top:
            lines.append(f"\n{tr('md.more', n=len(rows) - top)}")
        lines.append("")

    worst = sorted((r for r in report.by_unit if r.figures.rate is not None),
                   key=lambda r: (r.figures.rate, -r.figures["missing"], r.key))
    table(tr("md.worst"), "unit", worst)
    table(tr("md.leaders"), "leader", report.by_leader)
    table(tr("md.duties"), "duty", report.by_duty)
    lines += [f"## {tr('basis')}", "", *(f"> {line}\n" for line in basis_lines())]
    if files:
        charts = {k: v for k, v in files.items() if v.suffix == ".png"}
        if charts:
            lines += [f"## {tr('md.charts')}", ""]
            for name, path in charts.items():
                lines += [image_markdown(name, path), ""]
        lines += [f"## {tr('md.files')}", "", *(f"- `{path}`" for path in files.values()), ""]
    return "\n".join(lines)
