"""Flow parameters as the Prefect UI's custom-run form shows them: Chinese titles, descriptions and choices.

Prefect titles every parameter with its Python name and keeps only the description and
``json_schema_extra`` of a ``Field`` default, so :func:`ui` puts the title there. Constraints and
choices go in the type (``Annotated[..., Field(ge=1)]``, ``Literal[...]``), which Prefect keeps
for the form and checks when a run starts. The choices come from the catalog and from the texts
the rest of pingan shows, so a locality's overrides show up in the form.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pingan.core.i18n import both
from pingan.duties.runtime import get_runtime
from pingan.duties.sensitive import FREQUENCIES
from pingan.org.data import KIND_NAMES

AS_OF_TITLE = "时刻"
AS_OF_HELP = "按此时刻运行（北京时间，如 2026-10-01T09:00）；留空＝现在。补跑或演练某一时刻时填写。"


def ui(default: Any, title: str, description: str) -> Any:
    """A parameter's default with the title and description the custom-run form shows."""
    return Field(default, description=description, json_schema_extra={"title": title})


def as_of_param(description: str = AS_OF_HELP) -> Any:
    return ui(None, AS_OF_TITLE, description)


def duty_choices() -> dict[str, str]:
    """Every planned duty's label (its short Chinese name) → its key: the choices of a duty list."""
    return {d.label: d.key for d in sorted(get_runtime().catalog.planned, key=lambda d: d.key)}


def frequency_choices() -> dict[str, str]:
    """The tightened frequencies as people read them (每日, 每周, …) → their codes."""
    return {both(f"sp.every.{f}")[0]: f for f in FREQUENCIES}


def scope_help() -> str:
    kinds = "、".join(f"{kind.value}（{name}）" for kind, name in KIND_NAMES.items())
    return f"all＝全部单位；或单位类型、单位编码，用逗号分隔。单位类型：{kinds}"


def choice(values) -> Any:
    """``Literal`` of ``values`` (a type built from data at import)."""
    return Literal[tuple(values)]  # type: ignore[valid-type]
