"""One settings object for the whole of pingan, read from ``PINGAN_*`` variables.

Every knob a locality may want to turn without touching code lives here; the catalog
(``catalog/``) holds what the duties are, these settings hold how this installation runs.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "pingan-demo-secret"}
# The review page's password in demo mode only (PINGAN_DEMO=1 and no PINGAN_OPERATOR_PASSWORD).
DEMO_OPERATOR_PASSWORD = "pingan-demo"


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
    send_timeout: float = Field(default=10.0, gt=0)
    send_retries: int = Field(default=2, ge=0, le=10)
    send_backoff: float = Field(default=0.5, ge=0)
    # A dispatcher renews its claims every quarter of this; claims unrenewed this long are taken back.
    send_lease_seconds: int = Field(default=60, ge=2)
    # How long a dispatcher run waits for messages paced to a later slot before it leaves them to the next run.
    send_linger: float = Field(default=120.0, ge=0)
    max_send_attempts: int = Field(default=5, ge=1)

    # Evidence links
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
    # Extensions accepted; each file's content must match its extension (pingan.evidence.service.sniff).
    evidence_types: tuple[str, ...] = ("jpg", "jpeg", "png", "webp", "heic", "pdf", "doc", "docx", "xls", "xlsx")
    operator_user: str = "operator"
    # Plain text, or a hash from `python -c "from pingan.web.auth import hash_password as h; print(h('…'))"`
    # (pbkdf2_sha256$iterations$salt$hash). Placeholders are refused outside demo mode.
    operator_password: str = Field(default="", repr=False)

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
    def signing_key(self) -> bytes:
        """The key that signs hand-in links; refuses placeholders outside demo mode."""
        if self.secret_key in PLACEHOLDER_SECRETS:
            if not self.demo:
                raise ValueError("PINGAN_SECRET_KEY is unset or a placeholder; set a random value (or PINGAN_DEMO=1)")
            return b"pingan-demo-secret"
        return self.secret_key.encode()

    @property
    def operator_secret(self) -> str:
        """The operator's password (or its hash) for the review page; refuses placeholders outside demo mode."""
        if self.operator_password in PLACEHOLDER_SECRETS | {DEMO_OPERATOR_PASSWORD}:
            if not self.demo:
                raise ValueError("PINGAN_OPERATOR_PASSWORD is unset or a placeholder; set one (or PINGAN_DEMO=1)")
            return DEMO_OPERATOR_PASSWORD
        return self.operator_password

    @property
    def seeds_path(self) -> Path:
        return self.seeds_dir or REPO_ROOT / "catalog" / "sources"


@functools.cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI's --home change the environment)."""
    get_settings.cache_clear()
