"""The steps of the compliance report as Prefect tasks: thin wrappers around ``pingan.reports.compute``
and ``pingan.reports.xlsx`` (retries, logging, artifacts). The digests' step is their workflow's
(``pingan.reports.workflow``, run by ``tasks.steps.run_steps``).

Each is one read or one bulk write whatever the number of schools; every step can be repeated.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from pingan.reports.text import artifact_table, missing_table, summary_markdown, tr
from pingan.reports import workflow
from pingan.reports.compute import Report, report_for
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
    """The workbook, the two charts and the figures (JSON) under ``<home>/reports/<period>/`` (replaced on a re-run)."""
    files = workflow.write_files(get_runtime(), report)
    get_run_logger().info("wrote %s", ", ".join(files.values()))
    return files


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
