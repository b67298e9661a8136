"""The compliance report for the annual assessment (一票否决, 失职追责): per unit, per responsible
leader (包保 / 分管) and per duty — tasks due, on time, late, missing, waived; escalations reached
at each level; open hazards by level.

For a period (default: the quarter just ended at ``as_of``) it computes the figures, writes the
XLSX workbook and the PNG charts under ``<home>/reports/<period>/`` and publishes them as
Prefect artifacts (tables per view, the missing and late tasks, a Markdown summary with the
charts inline). Three Prefect task runs, whatever the number of schools.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from flows.params import as_of_param, ui
from pingan.core.clock import local, now
from pingan.reports.rules import parse_period
from tasks.report import compute_report, publish_report, write_files


def run_name() -> str:
    params = flow_run.parameters or {}
    as_of = params.get("as_of")
    if isinstance(as_of, str):
        as_of = dt.datetime.fromisoformat(as_of)
    try:
        key = parse_period(params.get("period"), local(as_of) if as_of else now()).key
    except ValueError:
        key = str(params.get("period"))
    return f"安全工作履职考核报告 {key}"


@flow(name="compliance-report", flow_run_name=run_name, log_prints=True, retries=0, timeout_seconds=1800)
def compliance_report(
    period: str | None = ui(None, "报告期", "如 2026-Q4（季度）、2026-H2（半年）、2026-11（月）、2026（年）、previous-year（上一年）；留空＝刚结束的季度"),
    as_of: dt.datetime | None = as_of_param("数据截至此时刻（北京时间）；留空＝现在"),
) -> dict:
    """Report ``period`` (``2026-Q4``, ``2026``, ``previous-year``; default the quarter just ended) at ``as_of``."""
    as_of = local(as_of) if as_of else now()
    key = parse_period(period, as_of).key  # a bad period fails here, before any task runs
    report = compute_report(key, as_of)
    # quote: hand the report over as it is, without Prefect walking its thousands of task rows
    files = write_files(quote(report))
    publish_report(quote(report), files)
    totals = report.totals.as_dict(report.levels)
    totals.pop("task_ids")
    print(f"{key}: {totals['tasks']} task(s), on-time rate {totals['on_time_rate']}; files: {', '.join(files.values())}")
    return {"period": key, "as_of": as_of.isoformat(), "totals": totals, "files": files}
