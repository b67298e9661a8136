"""The steps of the daily hazard watch as Prefect tasks.

Each is one bulk database step over every unit, so a run is a handful of task runs whatever
the number of schools; every step is idempotent and cheap to repeat (no caching).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from pingan.hazards import service as hazards
from pingan.hazards import risks
from pingan.core.db import get_engine, session_scope
from pingan.org.snapshot import load_org
from pingan.duties.runtime import get_runtime

RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NONE)
COUNTS = ("uploads_synced", "checks_planned", "overdue_marked", "hazard_reminders", "hazard_escalations",
          "check_reminders", "check_escalations", "upload_reminders")


def _step(work, as_of: dt.datetime) -> dict:
    rt = get_runtime()
    result = hazards.WatchResult(as_of=as_of)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        work(session, rt, load_org(session), as_of, result)
    return {k: v for k, v in asdict(result).items() if k in COUNTS}


@task(name="advance", **RETRY)
def advance(as_of: dt.datetime) -> dict:
    """Take platform uploads from evidence, plan the risk checks now open, mark hazards past their deadline."""
    out = _step(hazards.advance, as_of)
    get_run_logger().info("uploads synced %(uploads_synced)s, risk checks planned %(checks_planned)s, "
                          "newly overdue %(overdue_marked)s", out)
    return out


@task(name="remind", **RETRY)
def remind(as_of: dt.datetime) -> dict:
    """Reminders of hazards, risk checks and missing platform uploads (working time only)."""
    if not hazards.in_working_time(get_runtime(), as_of):
        get_run_logger().info("outside working time: reminders wait for the next run in working hours")
        return {"working_time": False}
    out = _step(hazards.remind, as_of)
    get_run_logger().info("queued: hazards %(hazard_reminders)s, risk checks %(check_reminders)s, "
                          "uploads %(upload_reminders)s", out)
    return {**out, "working_time": True}


@task(name="escalate", **RETRY)
def escalate(as_of: dt.datetime) -> dict:
    """Escalations of overdue hazards and missed risk checks (working time only)."""
    if not hazards.in_working_time(get_runtime(), as_of):
        return {"working_time": False}
    out = _step(hazards.escalate, as_of)
    get_run_logger().info("fired: hazards %(hazard_escalations)s, risk checks %(check_escalations)s", out)
    return {**out, "working_time": True}


@task(name="publish", **RETRY)
def publish(as_of: dt.datetime, run: dict) -> dict:
    """Artifacts: open hazards per unit by level and age, risk checks per unit and level, warnings, uploads."""
    rt = get_runtime()
    cfg = hazards.hazard_config(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        rows = hazards.hazard_rows(session, as_of, open_only=True)
        checks, warnings = risks.check_summary(session, rt, as_of)
        uploads = hazards.upload_rows(session, rt, as_of)
    per_unit = hazards.by_unit(rows)
    missing = sum(1 for u in uploads if u["已上传 uploaded"].startswith("否"))
    create_table_artifact(per_unit or [{"单位 unit": "—", "一般隐患 general": 0, "重大隐患 major": 0}],
                          key="hazards-open-by-unit", description="未销号隐患：各单位按等级和时长 / open hazards per unit by level and age")
    create_table_artifact([{
        "#": r.id, "单位 unit": r.unit, "等级 level": cfg.level_name(r.level), "部位 place": r.place,
        "状态 state": f"{hazards.STATE_ZH.get(r.status, r.status)} {r.status}", "天数 age": r.age,
        "期限 deadline": f"{r.deadline:%Y-%m-%d %H:%M}", "整改人 rectifier": r.rectifier or "", "轮次 round": r.round,
    } for r in rows] or [{"#": "—", "状态 state": "无未销号隐患 / no open hazard"}],
        key="hazards-open", description="未销号隐患明细 / open hazards")
    create_table_artifact(checks or [{"单位 unit": "—"}], key="hazards-risk-checks",
                          description="风险点检查：各单位按等级 / risk-point checks per unit and level")
    create_table_artifact(warnings or [{"单位 unit": "—", "风险点 point": "无预警 / no warning"}], key="hazards-risk-warnings",
                          description="风险点预警（检查逾期）/ risk points in warning (check overdue)")
    create_table_artifact(uploads or [{"单位 unit": "—"}], key="hazards-platform-uploads",
                          description="半月排查上传监管平台情况 / half-monthly checks uploaded to the supervision platform")
    create_markdown_artifact(hazards.summary_markdown(cfg, rows, as_of, run, warnings=len(warnings), uploads_missing=missing),
                             key="hazards-summary", description="隐患排查治理闭环 / hazard closed loop")
    return {"open_hazards": len(rows), "overdue_hazards": sum(r.status == "overdue" for r in rows), "warnings": len(warnings),
            "uploads_missing": missing}
