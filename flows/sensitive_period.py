"""A key sensitive period (重点敏感时期), started by the operator from the UI's custom-run form.

It records the period, plans the tighter tasks for its scope and duties at once, announces
it to the responsible persons and sends. Daily duty runs keep planning its tasks until
``end``; then it ends by itself.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from pingan.core.clock import now
from pingan.duties import service
from pingan.core.db import session_scope
from pingan.core.clock import local
from pingan.org.snapshot import load_org
from pingan.duties.runtime import get_runtime
from tasks.delivery import dispatch_released
from pingan.duties.sensitive import Request, parse_scope


@flow(name="sensitive-period", flow_run_name="重点敏感时期 {name}", log_prints=True, timeout_seconds=900)
def sensitive_period(
    name: str,
    start: dt.date,
    end: dt.date,
    scope: str = "all",
    duties: list[str] | None = None,
    frequency: str | None = None,
    as_of: dt.datetime | None = None,
) -> dict:
    """Tighten ``duties`` (default: every duty the catalog says tightens) for units in ``scope``
    (``all``, or unit kinds and unit codes separated by commas) from ``start`` to ``end``, at
    ``frequency`` (daily / weekly / half_monthly / monthly; default: each duty's own)."""
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
