"""What people read, in Chinese by default and English with ``PINGAN_LOCALE=en``.

Texts live in ``MESSAGES`` by key; ``t(key, **values)`` formats the one for the current locale.
Modules add their own keys with ``register({...})`` so each feature keeps its texts beside it.
"""

from __future__ import annotations

from collections.abc import Mapping

MESSAGES: dict[str, dict[str, str]] = {}


def register(texts: Mapping[str, Mapping[str, str]]) -> None:
    for key, pair in texts.items():
        if set(pair) != {"zh-CN", "en"}:
            raise ValueError(f"message {key!r} needs both zh-CN and en")
        MESSAGES[key] = dict(pair)


def locale() -> str:
    from pingan.core.settings import get_settings

    return get_settings().locale


def t(key: str, /, **values: object) -> str:
    pair = MESSAGES[key]
    return pair.get(locale(), pair["zh-CN"]).format(**values)


def say(zh: str, en: str) -> str:
    """A one-off text (an error line) in the reader's language: one language per line."""
    return en if locale() == "en" else zh


def both(key: str, /, **values: object) -> tuple[str, str]:
    """The text in both languages: for what is stored and read later in either (announcements)."""
    pair = MESSAGES[key]
    return pair["zh-CN"].format(**values), pair["en"].format(**values)


def pick(zh: str, en: str | None) -> str:
    """A catalog text in the reader's language (catalog entries carry name and name_en)."""
    return en if (en and locale() == "en") else zh
