"""What each channel takes: the size of a message's text and how many messages a destination
accepts per minute, as the services document them — and what pingan does to stay within both.

Size: a message that does not fit its channel is never cut; the channel gets the message's
summary instead (counts of what is due and overdue, and the link to the person's page).
Rate: a destination (one group bot, shared by every person whose channel it is) is paced at
its documented rate; messages beyond it wait their turn (``next_attempt_at``), they are never
dropped and never failed for it.

Numbers, with where they come from (read 2026-11):

* WeCom group bot (``wecombot://``): "文本内容，最长不超过2048个字节，必须是utf8编码";
  "每个机器人发送的消息不能超过20条/分钟" — 企业微信开发者中心《群机器人配置说明》,
  https://developer.work.weixin.qq.com/document/path/91770
* DingTalk custom robot (``dingtalk://``): "每个机器人每分钟最多发送20条消息到群里，如果超过20条，
  会限流10分钟" — 钉钉开放平台《自定义机器人接入》,
  https://open.dingtalk.com/document/group/custom-robot-access. The guide gives no size for a
  text message: pingan keeps DingTalk text under 4,096 bytes (a local choice, not the service's).
* Feishu / Lark custom bot (``feishu://``, ``lark://``): "单租户单机器人 100 次/分钟，5 次/秒";
  "请求体的数据大小不能超过 20 KB" — 飞书开放平台《自定义机器人使用指南》,
  https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot. The 20 KB is the whole
  JSON request: pingan keeps the text under 18,000 bytes.
* SMS through an HTTP gateway (``smsgw://``, ``smsgws://``): carriers bill 70 Chinese
  characters a segment; pingan sends SMS the summary only, at most 200 characters (a local
  choice; a gateway's own limits belong in its contract).
* E-mail, the demo outbox (``pingan://``) and generic webhooks: no limit pingan needs to keep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limit:
    max_bytes: int | None = None  # UTF-8 bytes of title + text
    max_chars: int | None = None  # characters (SMS)
    per_minute: int | None = None
    per_second: int | None = None
    summary_only: bool = False  # send the summary even when the body would fit (SMS)


    def share(self, parts: int) -> Limit:
        """This limit for one of ``parts`` senders that together must stay within it."""
        if parts <= 1:
            return self
        return replace(self, per_minute=None if self.per_minute is None else max(1, self.per_minute // parts),
                       per_second=None if self.per_second is None else max(1, self.per_second // parts))


NONE = Limit()
LIMITS: dict[str, Limit] = {
    "wecombot": Limit(max_bytes=2048, per_minute=20),
    "dingtalk": Limit(max_bytes=4096, per_minute=20),
    "feishu": Limit(max_bytes=18_000, per_minute=100, per_second=5),
    "lark": Limit(max_bytes=18_000, per_minute=100, per_second=5),
    "smsgw": Limit(max_chars=200, summary_only=True),
    "smsgws": Limit(max_chars=200, summary_only=True),
}


def scheme(url: str) -> str:
    match = re.match(r"^\s*([a-z][a-z0-9+.-]*)://", url or "", re.I)
    return match.group(1).lower() if match else ""


def limit_for(url: str) -> Limit:
    return LIMITS.get(scheme(url), NONE)


def fits(title: str, text: str, limit: Limit) -> bool:
    whole = f"{title}\n{text}" if title else text
    if limit.max_bytes is not None and len(whole.encode("utf-8")) > limit.max_bytes:
        return False
    return limit.max_chars is None or len(whole) <= limit.max_chars


def fit(title: str, body: str, summary: str | None, url: str) -> tuple[str, str]:
    """(title, text) of a message for the channel ``url``: the body when it fits, else the summary.

    The summary is short by construction (counts and a link); should a channel be smaller
    still, its title goes first, then the summary's link line is kept and the rest shortened
    with an ellipsis — the one place text is shortened, and only what the person can open whole.
    """
    limit = limit_for(url)
    if not limit.summary_only and fits(title, body, limit):
        return title, body
    text = summary or body
    if fits(title, text, limit):
        return title, text
    if fits("", text, limit):
        return "", text
    lines = text.splitlines()
    link = next((line for line in reversed(lines) if "://" in line), "")
    head = "\n".join(line for line in lines if line != link)
    while head and not fits("", f"{head}…\n{link}", limit):
        head = head[:-1]
    return "", f"{head}…\n{link}" if head else link
