"""The digests and the compliance report as workflows.

``WEEKLY`` and ``DAILY`` queue the digests (``pingan.reports.digests``): one step each, the
step the Prefect flows ``weekly-digest`` and ``daily-summary`` run as a task run. ``REPORT``
computes a period's compliance report and writes its files under ``<home>/reports/<period>/``,
as the quarterly and annual deployments do after each quarter and year; ``pingan replay`` runs
it at their schedules. It writes only when the figures changed since the files were written
(the report's figures are kept beside them as JSON), so a replay run twice writes nothing the
second time. The Prefect flow ``compliance-report`` computes the same report and writes the
same files, and publishes them as artifacts besides.
"""

from __future__ import annotations

import datetime as dt
import json

from pingan.core.clock import local
from pingan.core.workflow import Step, Workflow
from pingan.duties.runtime import Runtime
from pingan.reports import digests
from pingan.reports.compute import Report, report_dir, report_for
from pingan.reports.xlsx import write_report


def queue_weekly(rt: Runtime, as_of: dt.datetime) -> dict:
    """This week's digest to every bureau leader with something to report (once per ISO week)."""
    return digests.weekly(rt, as_of).as_dict()


def queue_daily(rt: Runtime, as_of: dt.datetime) -> dict:
    """Today's summary to the safety section (working days only, once per day)."""
    return digests.daily(rt, as_of).as_dict()


WEEKLY = Workflow("weekly-digest", (Step("queue-weekly-digests", queue_weekly),))
DAILY = Workflow("daily-summary", (Step("queue-daily-summary", queue_daily),))


def write_files(rt: Runtime, report: Report, *, unless_unchanged: bool = False) -> dict[str, str]:
    """The workbook, the charts and the figures as JSON under ``<home>/reports/<period>/`` (replaced);
    with ``unless_unchanged``, nothing when the figures on file are the same: {}."""
    directory = report_dir(rt, report.period)
    figures = json.dumps(report.as_dict(), ensure_ascii=False, indent=1, sort_keys=True)
    kept = directory / f"compliance-{report.period.key}.json"
    if unless_unchanged and kept.exists() and kept.read_text(encoding="utf-8") == figures:
        return {}
    files = write_report(report, directory / f"compliance-{report.period.key}.xlsx", chart_dir=directory)
    kept.write_text(figures, encoding="utf-8")
    return {**{k: str(v) for k, v in files.items()}, "json": str(kept)}


def write(rt: Runtime, as_of: dt.datetime, period: str | None = None) -> dict:
    """The report of ``period`` (default: the quarter just ended) as of ``as_of``, its files
    rewritten only when its figures differ from those on file."""
    report = report_for(rt, period, local(as_of))
    files = write_files(rt, report, unless_unchanged=True)
    t = report.totals
    return {"period": report.period.key, "tasks": t.total, "due": t.due, "on_time": t["on_time"], "late": t["late"],
            "missing": t["missing"], "escalated": t.escalated, "written": len(files), "files": sorted(files.values())}


REPORT = Workflow("compliance-report", (Step("write", write),))
