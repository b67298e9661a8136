"""One settings object for the whole of pingan, read from ``PINGAN_*`` variables.

Every knob a locality may want to turn without touching code lives here; the catalog
(``catalog/``) holds what the duties are, these settings hold how this installation runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import os
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "pingan-demo-secret"}
# Outside demo mode every signing key must carry at least this many random bytes.
MIN_KEY_BYTES = 32
KEY_HINT = 'python -c "import secrets; print(secrets.token_hex(32))"'
# A demo installation's key (made once per home, ``<home>/demo-secret.key``) starts with this;
# outside demo mode a key that does is refused, so a demo key never verifies a link there.
DEMO_KEY_PREFIX = "demo-"
DEMO_KEY_FILE = "demo-secret.key"
# What a home remembers about itself, for every process that opens it (CLI, main job, web page,
# served flows): that it is a demo home (``pingan init --demo`` / ``pingan up --demo``) and the
# public address of the evidence page that serves its links (``pingan up`` records it). A
# ``PINGAN_*`` variable (or ``.env``) always wins over what the home recorded.
HOME_FILE = "home.json"
HOME_KEYS = ("demo", "base_url")


def home_record(home: Path) -> dict:
    """What ``home`` recorded about itself (``<home>/home.json``): {} when nothing was."""
    path = Path(home) / HOME_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}：无法读取 / cannot be read ({exc.__class__.__name__}); "
                         f"fix or delete it") from None
    if not isinstance(data, dict):
        # ValueError, not TypeError: the settings' validator turns it into a one-line setting error
        raise ValueError(f"{path}：应为 JSON 对象 / must be a JSON object; fix or delete it")  # noqa: TRY004
    return {key: data[key] for key in HOME_KEYS if key in data}


def record_in_home(home: Path, **values: object) -> None:
    """Merge ``values`` into ``<home>/home.json`` (written whole, then renamed: never half a file)."""
    unknown = set(values) - set(HOME_KEYS)
    if unknown:
        raise KeyError(f"not recorded in a home: {sorted(unknown)}")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    data = home_record(home) | values
    tmp = home / f".{HOME_FILE}.{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, home / HOME_FILE)


def key_bytes(text: str) -> bytes | None:
    """The random bytes a key is written as — hexadecimal or base64 (standard or URL-safe) — or None."""
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        return bytes.fromhex(text)
    if re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text):
        try:
            return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def key_problem(text: str, locale: str = "zh-CN") -> str | None:
    """Why ``text`` is not a signing key for a real installation (one line in ``locale``, never the key), or None."""
    def say(zh: str, en: str) -> str:
        return en if locale == "en" else zh

    if text in PLACEHOLDER_SECRETS:
        return say("是占位符", "is a placeholder")
    if text.startswith(DEMO_KEY_PREFIX):
        return say("是演示密钥", "is a demo key")
    raw = key_bytes(text)
    if raw is None:
        return say("不是十六进制或 base64 编码的随机字节", "is not random bytes written as hex or base64")
    if len(raw) < MIN_KEY_BYTES:
        return say(f"只有 {len(raw)} 字节，至少需要 {MIN_KEY_BYTES} 个随机字节",
                   f"has {len(raw)} bytes, at least {MIN_KEY_BYTES} random bytes are needed")
    # 32 random bytes show about 30 different values; fewer than 20 is a pattern, not a key.
    if len(set(raw)) < 20:
        return say("不是随机的（重复的字节过多）", "is not random (too many repeated bytes)")
    return None


def split_keys(value: str) -> list[str]:
    """``PINGAN_SECRET_KEY`` as a list: keys separated by commas or white space, the first signs."""
    return [part for part in re.split(r"[\s,]+", value or "") if part]


def demo_key(home: Path) -> str:
    """This home's demo key: random, made on first use and kept in ``<home>/demo-secret.key`` (0600)."""
    path = home / DEMO_KEY_FILE
    try:
        text = path.read_text().strip()
        if text.startswith(DEMO_KEY_PREFIX):
            return text
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    fresh = DEMO_KEY_PREFIX + secrets.token_hex(MIN_KEY_BYTES)
    tmp = home / f".{DEMO_KEY_FILE}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(fresh + "\n")
    try:
        os.link(tmp, path)  # never replaces: two processes starting at once end up with the same key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINGAN_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".pingan"), description="data directory: database, evidence files, logs")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default a SQLite file in home")
    # National scale: each province a shard with a pingan database of its own; flows take the
    # province as a parameter (docs/SCALE.md). PINGAN_SHARDS='{"jl": "postgresql+psycopg://…/pingan_jl"}'.
    shards: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="province → database URL of its shard (JSON)")
    locale: Literal["zh-CN", "en"] = "zh-CN"

    catalog_dir: Path = REPO_ROOT / "catalog"
    seeds_dir: Path | None = Field(default=None, description="the source documents, to check catalog wording")
    holiday_file: Path | None = Field(default=None, description="local holiday file; default home/holidays.yaml")

    # Working time: reminders and escalations are only sent inside it, on working days.
    work_start: dt.time = dt.time(8, 30)
    work_end: dt.time = dt.time(17, 30)
    digest: bool = Field(default=True, description="one message per person per dispatch")
    # Routine reminders and escalations wait for these digest slots (pingan.delivery.release);
    # an empty morning slot sends every notice at once.
    digest_morning: dt.time | None = Field(default=dt.time(9, 0), description="the morning digest, on working days")
    digest_afternoon: dt.time | None = Field(default=dt.time(15, 0), description="same-day items, on working days")
    digest_max_items: int = Field(default=12, ge=1, le=200, description="items listed in one message; the rest are counted")

    # School terms for northern China; a locality edits these (MM-DD).
    spring_term: tuple[str, str] = ("03-01", "07-15")
    autumn_term: tuple[str, str] = ("09-01", "01-15")

    # Sending
    send_concurrency: int = Field(default=16, ge=1, le=256)
    # A dispatch run with at least ``send_fanout_at`` persons with notices waiting or messages due
    # composes and sends from this many processes (one Python process works on one core, whatever
    # its threads). Each takes the persons of its lane (person id modulo the count) and an equal
    # share of every paced destination's rate: at most 4, so the strictest rate (Feishu, 5 a
    # second) still leaves each share one message.
    send_processes: int = Field(default=2, ge=1, le=4)
    send_fanout_at: int = Field(default=2000, ge=1)
    send_timeout: float = Field(default=10.0, gt=0)
    send_retries: int = Field(default=2, ge=0, le=10)
    send_backoff: float = Field(default=0.5, ge=0)
    # A dispatcher renews its claims every quarter of this; claims unrenewed this long are taken back.
    send_lease_seconds: int = Field(default=60, ge=2)
    # How long a dispatcher run waits for messages paced to a later slot before it leaves them to the next run.
    send_linger: float = Field(default=120.0, ge=0)
    max_send_attempts: int = Field(default=5, ge=1)

    # Evidence links. PINGAN_SECRET_KEY is one key or several (comma or space separated): the
    # first signs, every one verifies, so a key is rotated by putting the new one first and
    # dropping the old one once its links have expired (PINGAN_LINK_TTL_DAYS).
    demo: bool = False
    secret_key: str = Field(default="", repr=False)
    base_url: str = "http://127.0.0.1:8400"
    link_ttl_days: int = 45
    operator_channel: str | None = Field(default=None, repr=False)

    # The evidence page (pingan.web): where it listens, what it takes, who reviews.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8400, ge=1, le=65535)
    evidence_max_file_mb: float = Field(default=20, gt=0, description="largest file of a hand-in, in MB")
    evidence_max_files: int = Field(default=10, ge=1, le=100, description="files per hand-in")
    evidence_max_total_mb: float = Field(default=60, gt=0, description="largest hand-in (all files), in MB")
    # Extensions accepted; each file must really be what its extension says (pingan.evidence.files.check_content).
    evidence_types: tuple[str, ...] = ("jpg", "jpeg", "png", "webp", "pdf", "docx", "xlsx")
    # Reviewers' sessions (pingan.accounts): signed out after this long without a request, and
    # after this many hours whatever happens.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 14)

    @field_validator("digest_morning", "digest_afternoon", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("spring_term", "autumn_term")
    @classmethod
    def _mm_dd(cls, value: tuple[str, str]) -> tuple[str, str]:
        for part in value:
            try:
                dt.datetime.strptime(f"2000-{part}", "%Y-%m-%d")
            except ValueError as exc:
                raise ValueError(f"term date {part!r} is not MM-DD") from exc
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        # What the home recorded fills in what no variable set (model_fields_set holds every
        # value given by a variable, .env or a keyword).
        # Written to __dict__: an attribute assignment would count them as set explicitly.
        recorded = home_record(self.home)
        if "demo" not in self.model_fields_set and recorded.get("demo") is True:
            self.__dict__["demo"] = True
        if "base_url" not in self.model_fields_set and isinstance(recorded.get("base_url"), str):
            self.__dict__["base_url"] = recorded["base_url"]
        if self.work_end <= self.work_start:
            raise ValueError("PINGAN_WORK_END must be after PINGAN_WORK_START")
        return self

    @field_validator("shards")
    @classmethod
    def _shard_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"shard name {name!r}: use letters, digits, - and _ (a province code such as jl)")
        return value

    def for_province(self, province: str | None) -> Settings:
        """These settings, on the database of ``province``'s shard (unchanged for None)."""
        if not province:
            return self
        if province not in self.shards:
            known = ", ".join(sorted(self.shards)) or "none (PINGAN_SHARDS is empty)"
            raise ValueError(f"province {province!r} is not a shard of this installation; shards: {known}")
        return self.model_copy(update={"database_url": self.shards[province]})

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'pingan.db').resolve()}"

    @property
    def holidays_path(self) -> Path:
        return self.holiday_file or self.home / "holidays.yaml"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    @property
    def signing_keys(self) -> tuple[bytes, ...]:
        """Every key that verifies a link, the signing key first.

        Outside demo mode each must be at least 32 random bytes (hex or base64) and no demo key:
        anything else raises ValueError with one line naming the setting and the key's position,
        never its value. In demo mode without a key, this home's random demo key is used.
        """
        texts = split_keys(self.secret_key)
        en = self.locale == "en"
        if not self.demo:
            if not texts:
                raise ValueError(
                    f"PINGAN_SECRET_KEY is unset: set at least {MIN_KEY_BYTES} random bytes, e.g. from {KEY_HINT} "
                    "(or make a demo home: pingan init --demo)" if en else
                    f"PINGAN_SECRET_KEY 未设置：请设置至少 {MIN_KEY_BYTES} 个随机字节，可用 {KEY_HINT} 生成"
                    "（演示请用 pingan init --demo）")
            for n, text in enumerate(texts, start=1):
                problem = key_problem(text, self.locale)
                if problem:
                    which = "" if len(texts) == 1 else (f" (key {n} of {len(texts)})" if en else f"（第 {n} 个，共 {len(texts)} 个）")
                    raise ValueError(f"PINGAN_SECRET_KEY{which} {problem}; e.g. {KEY_HINT}" if en else
                                     f"PINGAN_SECRET_KEY{which} {problem}；可用 {KEY_HINT} 生成")
        texts = [t for t in texts if t not in PLACEHOLDER_SECRETS] or [demo_key(self.home)]
        return tuple(text.encode() for text in texts)

    @property
    def signing_key(self) -> bytes:
        """The key that signs hand-in links (the first of ``signing_keys``)."""
        return self.signing_keys[0]

    def check_secrets(self) -> None:
        """Raise ValueError (one line) when a secret setting would be refused at first use."""
        self.signing_keys  # noqa: B018

    @property
    def seeds_path(self) -> Path:
        return self.seeds_dir or REPO_ROOT / "catalog" / "sources"


@functools.cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI's --home change the environment)."""
    get_settings.cache_clear()
