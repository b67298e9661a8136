"""The steps of the compliance report and the digests as Prefect tasks: thin wrappers around
``pingan.reports.compute``, ``pingan.reports.xlsx`` and ``pingan.reports.digests`` (retries, logging, artifacts).

Each is one read or one bulk write whatever the number of schools; every step can be repeated.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from pingan.reports import digests
from pingan.reports.text import artifact_table, missing_table, summary_markdown, tr
from pingan.reports.xlsx import write_report
from pingan.reports.compute import Report, report_dir, report_for
from pingan.duties.runtime import get_runtime

RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)


@task(name="compute-report", **RETRY)
def compute_report(period: str, as_of: dt.datetime) -> Report:
    """Every task due in the period with its outcome, and the views over them."""
    report = report_for(get_runtime(), period, as_of)
    t = report.totals
    get_run_logger().info("%s: %s task(s), %s due, %s on time, %s late, %s missing, %s waived, %s escalated",
                          report.period.key, t.total, t.due, t["on_time"], t["late"], t["missing"], t["waived"],
                          t.escalated)
    return report


@task(name="write-files", **RETRY)
def write_files(report: Report) -> dict[str, str]:
    """The workbook and the two charts under ``<home>/reports/<period>/`` (replaced on a re-run)."""
    rt = get_runtime()
    directory = report_dir(rt, report.period)
    files = write_report(report, directory / f"compliance-{report.period.key}.xlsx", chart_dir=directory)
    get_run_logger().info("wrote %s", ", ".join(str(p) for p in files.values()))
    return {k: str(v) for k, v in files.items()}


@task(name="publish-report", **RETRY)
def publish_report(report: Report, files: dict[str, str]) -> dict:
    """Table artifacts per view, the missing and late tasks, and a Markdown summary with the charts."""
    key = report.period.key
    for view, what in (("unit", "by-unit"), ("leader", "by-leader"), ("duty", "by-duty")):
        create_table_artifact(artifact_table(report, view), key=f"compliance-{what}",
                              description=f"{tr('title')} {key}：{tr(f'sheet.{view}')}")
    create_table_artifact(missing_table(report), key="compliance-missing-tasks",
                          description=f"{tr('title')} {key}：{tr('outcome.missing')} / {tr('outcome.late')}")
    create_markdown_artifact(summary_markdown(report, {k: Path(v) for k, v in files.items()}),
                             key="compliance-summary", description=f"{tr('title')} {key}")
    return {"artifacts": 5}


@task(name="queue-weekly-digests", **RETRY)
def queue_weekly(as_of: dt.datetime) -> dict:
    result = digests.weekly(get_runtime(), as_of)
    get_run_logger().info("weekly digest %s: queued %s for %s leader(s)%s", result.key, result.queued,
                          len(result.recipients), f" ({result.skipped})" if result.skipped else "")
    return result.as_dict()


@task(name="queue-daily-summary", **RETRY)
def queue_daily(as_of: dt.datetime) -> dict:
    result = digests.daily(get_runtime(), as_of)
    get_run_logger().info("daily summary %s: queued %s%s", result.key, result.queued,
                          f" ({result.skipped})" if result.skipped else "")
    return result.as_dict()
