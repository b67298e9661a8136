"""The texts people receive: reminders, escalations and digests, in Chinese or English."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from pingan.core.clock import local
from pingan.core.i18n import MESSAGES, locale, register, t


@dataclass(frozen=True)
class DutyText:
    """What a message says of a duty, in the reader's language (the duty catalog writes it)."""

    name: str
    source: str = ""  # 依据：《title》clause
    evidence: str = ""  # 需提交：…


# duty key → its texts, or None for a key the catalog does not know (a hazard's, say)
Describe = Callable[[str], "DutyText | None"]

register({
    # how far the deadline is when the message goes out (``due_label``)
    "msg.due.left": {"zh-CN": "还剩 {n} 天", "en": "{n} day(s) left"},
    "msg.due.today": {"zh-CN": "今日截止", "en": "due today"},
    "msg.due.passed": {"zh-CN": "已过今日截止时间", "en": "past today's deadline"},
    "msg.due.overdue": {"zh-CN": "已逾期 {n} 天", "en": "overdue by {n} day(s)"},
    "msg.reason.missing": {"zh-CN": "未提交材料", "en": "no evidence handed in"},
    "msg.reason.rejected": {"zh-CN": "材料被退回未重新提交", "en": "evidence rejected and not resubmitted"},
})


def _reason(reason: str) -> str:
    return t(f"msg.reason.{reason}") if f"msg.reason.{reason}" in MESSAGES else reason


@functools.lru_cache(maxsize=4096)
def _due(iso: str) -> str:
    # A morning's thousands of notices share a few dozen deadlines: each is formatted once.
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


def due_label(due: dt.datetime, as_of: dt.datetime) -> str:
    """Where the deadline stands when the message is composed, by calendar days in Asia/Shanghai:
    n days left, due today, past today's deadline, overdue by n days. Worked out from the dates,
    not from the reminder step: a step's notice can wait for the next digest slot, past its day."""
    due, as_of = local(due), local(as_of)
    days = (due.date() - as_of.date()).days
    if days > 0:
        return t("msg.due.left", n=days)
    if days < 0:
        return t("msg.due.overdue", n=-days)
    return t("msg.due.today") if as_of <= due else t("msg.due.passed")


def _label(payload: dict, as_of: dt.datetime | None) -> str:
    """A reminder's note after its deadline: the date label, and a step that is a sentence (not a key)."""
    return _label_of(payload["due"], payload.get("step") or "", as_of, locale())


@functools.lru_cache(maxsize=4096)
def _label_of(due: str, step: str, as_of: dt.datetime | None, language: str) -> str:
    # Cached per (deadline, step, moment, language): the same few dozen labels a morning.
    sentence = step if (not step.isascii() or " " in step) else ""
    parts = [due_label(dt.datetime.fromisoformat(due), as_of) if as_of is not None else "", sentence]
    return "；".join(p for p in parts if p)


def render_item(kind: str, payload: dict, duty: DutyText | None, link: str | None, *,
                as_of: dt.datetime | None = None) -> str:
    """One notice as a paragraph of a message composed at ``as_of`` (reminders say how far their
    deadline is then)."""
    en = locale() == "en"
    if kind == "announcement":
        return "\n".join(x for x in (payload.get("text_en") if en else None, payload["text"]) if x)[:2000] + (
            f"\n{'Link: ' if en else '链接：'}{link}" if link else "")
    name = duty.name if duty else payload["duty"]
    who = payload["unit"] + (f"（{payload['person']}）" if payload.get("person") else "")
    source, evidence = (duty.source, duty.evidence) if duty else ("", "")
    lines: list[str]
    if kind == "review":  # a rejected hand-in: say why, and that the task is open again
        if en:
            lines = [f"[Evidence returned] {who}: “{name}” for {payload['period']} (version {payload.get('version')}) "
                     f"was rejected: {payload.get('reason')}", f"Please hand it in again. Due: {_due(payload['due'])}"]
        else:
            lines = [f"【材料退回】{who}「{name}」（{payload['period']}，第 {payload.get('version')} 版）未通过审核，"
                     f"理由：{payload.get('reason')}", f"请修改后重新提交。截止时间：{_due(payload['due'])}"]
        lines += [source, evidence]
    elif kind == "escalation":
        level, reason = payload.get("level"), payload.get("reason", "missing")
        assignees = "、".join(payload.get("assignees") or []) or ("—" if en else "无")
        if en:
            lines = [
                f"[Escalation, level {level}] {who}: “{name}” for {payload['period']} is overdue "
                f"(due {_due(payload['due'])}): {_reason(reason)}.",
                f"Responsible: {assignees}",
            ]
        else:
            lines = [
                f"【督办·第{level}级】{who}「{name}」（{payload['period']}）已逾期"
                f"（截止 {_due(payload['due'])}），{_reason(reason)}。",
                f"责任人：{assignees}",
            ]
        lines.append(source)
    else:
        label = _label(payload, as_of)
        if en:
            lines = [f"[{name}] {who}, period {payload['period']}",
                     f"Due: {_due(payload['due'])}" + (f" ({label})" if label else "")]
        else:
            lines = [f"【{name}】{who} · {payload['period']}", f"截止时间：{_due(payload['due'])}" + (f"（{label}）" if label else "")]
        lines += [source, evidence]
    if link:
        lines.append(("Link: " if en else "办理链接：") + link)
    return "\n".join(line for line in lines if line)


def render_summary(person_name: str, items: list[tuple[str, str]], link: str | None) -> str:
    """What a channel too small for the whole message gets: the counts, and where to see it all."""
    en = locale() == "en"
    counts = _counts(items, en)
    if en:
        lines = [f"Dear {person_name}, pingan school safety: {counts}."]
        if link:
            lines.append(f"Open: {link}")
    else:
        lines = [f"{person_name}，您好：平安校园安全工作{counts}。"]
        if link:
            lines.append(f"请打开：{link}")
    return "\n".join(lines)


def _counts(items: list[tuple[str, str]], en: bool) -> str:
    escalations = sum(1 for kind, _ in items if kind == "escalation")
    notices = sum(1 for kind, _ in items if kind == "announcement")
    reminders = len(items) - escalations - notices
    if en:
        parts = [f"{reminders} reminder(s)" if reminders else "", f"{escalations} escalation(s)" if escalations else "",
                 f"{notices} notice(s)" if notices else ""]
        return ", ".join(p for p in parts if p)
    parts = [f"{reminders} 项待办提醒" if reminders else "", f"{escalations} 项逾期督办" if escalations else "",
             f"{notices} 条通知" if notices else ""]
    return "，".join(p for p in parts if p)


def render_message(person_name: str, items: list[tuple[str, str]], *, max_items: int | None = None,
                   page: str | None = None, lead: str | None = None) -> tuple[str, str]:
    """(title, body) for one person's notices; ``items`` are (kind, rendered paragraph).

    The title counts every item; the body lists the first ``max_items`` and sums up the rest, so
    a leader escalated for hundreds of schools gets one readable message that chat APIs accept
    (WeCom's bot takes 2,048 bytes) rather than a megabyte. The body ends with ``page``, the
    person's own page (``pingan.core.links.page_url``), where everything open is listed, and a
    message with escalations with ``lead``, the page of the units they answer for: a principal
    or a leader never uses the Prefect UI or a shell.
    """
    en = locale() == "en"
    title = ("pingan school safety: " if en else "平安校园安全工作：") + _counts(items, en)
    head = f"Dear {person_name}," if en else f"{person_name}，您好："
    shown = items if max_items is None else items[:max_items]
    rest = len(items) - len(shown)
    tail = []
    if rest and (lead or page):
        tail.append(f"… and {rest} more item(s), not listed here: all of them are on {lead or page}" if en else
                    f"……另有 {rest} 项未在此列出，全部事项请打开：{lead or page}")
    elif rest:
        tail.append(f"… and {rest} more item(s), not listed here: see the Prefect UI or `pingan status`." if en else
                    f"……另有 {rest} 项未在此列出，请在 Prefect 界面或用 pingan status 查看。")
    elif lead:
        tail.append(f"Overdue in the units you answer for: {lead}" if en else f"负责单位逾期情况：{lead}")
    if page:
        tail.append(f"Everything open for you: {page}" if en else f"我的待办（全部未完成事项）：{page}")
    body = "\n\n".join([head, *(text for _, text in shown), *tail])
    return title, body
