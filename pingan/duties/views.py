"""What the operator sees in the Prefect UI: a table per unit and a summary citing the clause."""

from __future__ import annotations

import datetime as dt
import re

from pingan.core.i18n import locale, register, t
from pingan.duties.catalog import DutySpec
from pingan.duties.runtime import Runtime
from pingan.duties.status import TaskRow

register({f"state.{k}": {"zh-CN": zh, "en": en} for k, (zh, en) in {
    "upcoming": ("未开始", "upcoming"), "open": ("进行中", "open"), "submitted": ("已提交", "submitted"),
    "accepted": ("已通过", "accepted"), "overdue": ("逾期", "overdue"), "escalated": ("已督办", "escalated"),
    "waived": ("已豁免", "waived"),
}.items()})


register({
    "why.day_off": {"zh-CN": "非工作日", "en": "not a working day"},
    "why.off_hours": {"zh-CN": "非工作时间，工作时间为 {start}–{end}", "en": "outside working hours, {start}–{end}"},
    "why.nothing_due": {"zh-CN": "没有新到期的事项", "en": "nothing newly due"},
    "why.unreachable": {"zh-CN": "到期任务无人可提醒，请检查单位角色", "en": "nobody to remind: check the roles"},
    "why.no_period": {"zh-CN": "当前没有开放的周期", "en": "no period open now"},
    "why.planned_before": {"zh-CN": "本期任务此前已建立", "en": "this period's tasks exist already"},
})


def why_text(rt: Runtime, why: str | None) -> str:
    """Why a count of a duty run is zero, for people (empty when there is no reason to give)."""
    if not why:
        return ""
    s = rt.settings
    return t(f"why.{why}", start=f"{s.work_start:%H:%M}", end=f"{s.work_end:%H:%M}")


def count_why(rt: Runtime, n: int, why: str | None) -> str:
    """``0（非工作日）``: a count, with the reason when it is zero."""
    reason = why_text(rt, why) if not n else ""
    if not reason:
        return str(n)
    return f"{n} ({reason})" if locale() == "en" else f"{n}（{reason}）"


def state_label(state: str) -> str:
    """A task's state for people: 进行中 (open) in Chinese, the English word in English."""
    return t(f"state.{state}")


def artifact_key(duty_key: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]", "-", f"duty-{duty_key}-{what}".lower())


def status_table(rows: list[TaskRow]) -> list[dict]:
    return [
        {
            "单位 unit": r.unit, "责任人 person": r.person or "", "周期 period": r.period, "截止 due": r.due,
            "状态 state": f"{state_label(r.state)} {r.state}", "督办级别 level": r.level, "提醒次数 reminders": r.reminders,
        }
        for r in rows
    ] or [{"单位 unit": "—", "状态 state": "本期无任务 / no task in this period"}]


def summary_markdown(
    rt: Runtime, duty: DutySpec, as_of: dt.datetime, planned: dict, reminded: dict, escalated: dict,
    counts: dict[str, int], notices: list[dict],
) -> str:
    title = rt.catalog.documents.get(duty.source.document, duty.source.document)
    lines = [
        f"# {duty.name} · {', '.join(planned['periods']) or '—'}",
        f"*{duty.name_en}* — as of {as_of:%Y-%m-%d %H:%M} (Asia/Shanghai)",
        "",
        f"**依据 / source**：《{title}》{duty.source.clause}（`{duty.source.document}`）",
        "",
        f"> {duty.text}",
        "",
        "| 状态 state | 数量 count |",
        "|---|---:|",
        *(f"| {state_label(s)} {s} | {n} |" for s, n in counts.items()),
        "",
        f"本次运行 / this run: 新建任务 planned **{count_why(rt, planned['created'], planned.get('why'))}**, "
        f"提醒 reminders **{count_why(rt, reminded['queued'], reminded.get('why'))}**, "
        f"督办 escalations **{count_why(rt, escalated['fired'], escalated.get('why'))}**.",
    ]
    if notices:
        releases = sorted({n["发送时间 release"] for n in notices})
        lines.append(f"\n本次排队通知 {len(notices)} 条，由统一发送在 {'、'.join(releases)} 汇总发出（每人一条消息）/ "
                     f"{len(notices)} notice(s) queued for the dispatcher's digest at {', '.join(releases)}: "
                     f"see the notices table for where each stands.")
    if not reminded.get("working_time", True):
        lines.append(f"\n{why_text(rt, reminded.get('why'))}：提醒与督办将在下一个工作时段排队发送 / "
                     "reminders and escalations wait for the next working time.")
    if reminded.get("unreachable"):
        lines.append(f"\n⚠ {len(reminded['unreachable'])} 项任务无人可提醒（请检查单位角色）/ tasks with nobody to remind.")
    return "\n".join(lines)
