"""A key sensitive period (重点敏感时期), started by the operator from the UI's custom-run form.

It records the period, plans the tighter tasks for its scope and duties at once, announces
it to the responsible persons and sends. Daily duty runs keep planning its tasks until
``end``; then it ends by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from flows.params import (
    as_of_param,
    choice,
    duty_choices,
    frequency_choices,
    scope_help,
    ui,
)
from pingan.core.clock import local, now
from pingan.core.db import session_scope
from pingan.duties import service
from pingan.duties.runtime import get_runtime
from pingan.duties.sensitive import Request, parse_scope
from pingan.org.snapshot import load_org
from tasks.delivery import dispatch_released

DUTIES = duty_choices()  # label shown in the form → duty key
FREQUENCY = frequency_choices()  # 每日 / 每周 / … → daily / weekly / …
DutyChoice = choice(DUTIES)
FrequencyChoice = choice(FREQUENCY)


@flow(name="sensitive-period", flow_run_name="重点敏感时期 {name}", log_prints=True, timeout_seconds=900)
def sensitive_period(
    name: Annotated[str, Field(min_length=1, max_length=100)] = ui(..., "名称", "如“岁末年初”“高考期间”“国庆节前后”"),
    start: dt.date = ui(..., "开始日期", "重点敏感时期的第一天"),
    end: dt.date = ui(..., "结束日期", "最后一天（含当天）；不超过一年"),
    scope: str = ui("all", "范围", scope_help()),
    duties: list[DutyChoice] | None = ui(None, "加密的职责", "留空＝清单规定可在重点敏感时期加密的全部职责"),
    frequency: FrequencyChoice | None = ui(None, "加密后的频次", "留空＝按清单对每项职责的规定（如局领导检查改为每周）"),
    as_of: dt.datetime | None = as_of_param("视为在此时刻开始（北京时间）；留空＝现在"),
) -> dict:
    """Tighten ``duties`` (default: every duty the catalog says tightens) for units in ``scope``
    (``all``, or unit kinds and unit codes separated by commas) from ``start`` to ``end``, at
    ``frequency`` (default: each duty's own). The form offers duties by their short names and
    frequencies in Chinese; they are turned into keys and codes here."""
    duties = [DUTIES.get(d, d) for d in duties or ()]
    frequency = FREQUENCY.get(frequency, frequency) if frequency else None
    rt = get_runtime()
    with session_scope() as session:
        kinds, units = parse_scope(scope, load_org(session))
    req = Request(name=name, starts_on=start, ends_on=end, kinds=kinds, units=units,
                  duties=tuple(duties or ()), frequency=frequency or None)
    moment = local(as_of) if as_of else now()
    result = service.start_sensitive_period(rt, req, moment, actor="operator:prefect-ui")
    result["dispatch_run"] = dispatch_released(moment, f"sensitive-{result['id']}")["dispatch_run"]
    get_run_logger().info("sensitive period %s: %s", result["id"], result)
    lines = [
        f"# 重点敏感时期：{name}", "", f"{start} 至 {end}，范围 scope: `{scope}`，频次 frequency: `{frequency or '按清单'}`", "",
        "| 职责 duty | 新建任务 planned |", "|---|---:|",
        *(f"| {rt.catalog.duties[k].name} | {n} |" for k, n in result["planned"].items()),
        "", f"通知 announced: {result['announced']}（统一发送，即刻）/ sent by the dispatcher at once",
    ]
    create_markdown_artifact("\n".join(lines), key=f"sensitive-period-{result['id']}", description=name)
    return result
