"""Prefect tasks of the daily hazard watch beyond its workflow steps: the artifacts the operator reads."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime
from pingan.hazards.rules import hazard_config
from pingan.hazards.views import by_unit, check_summary, hazard_rows, state_label, summary_markdown, upload_rows
from tasks.steps import RETRY


@task(name="publish", **RETRY)
def publish(as_of: dt.datetime, run: dict) -> dict:
    """Artifacts: open hazards per unit by level and age, risk checks per unit and level, warnings, uploads."""
    rt = get_runtime()
    cfg = hazard_config(rt)
    with session_scope(get_engine(rt.settings.db_url)) as session:
        rows = hazard_rows(session, as_of, open_only=True)
        checks, warnings = check_summary(session, rt, as_of)
        uploads = upload_rows(session, rt, as_of)
    per_unit = by_unit(rows)
    missing = sum(1 for u in uploads if u["已上传 uploaded"].startswith("否"))
    create_table_artifact(per_unit or [{"单位 unit": "—", "一般隐患 general": 0, "重大隐患 major": 0}],
                          key="hazards-open-by-unit", description="未销号隐患：各单位按等级和时长 / open hazards per unit by level and age")
    create_table_artifact([{
        "#": r.id, "单位 unit": r.unit, "等级 level": cfg.level_name(r.level), "部位 place": r.place,
        "状态 state": state_label(r.status), "天数 age": r.age,
        "期限 deadline": f"{r.deadline:%Y-%m-%d %H:%M}", "整改人 rectifier": r.rectifier or "", "轮次 round": r.round,
    } for r in rows] or [{"#": "—", "状态 state": "无未销号隐患 / no open hazard"}],
        key="hazards-open", description="未销号隐患明细 / open hazards")
    create_table_artifact(checks or [{"单位 unit": "—"}], key="hazards-risk-checks",
                          description="风险点检查：各单位按等级 / risk-point checks per unit and level")
    create_table_artifact(warnings or [{"单位 unit": "—", "风险点 point": "无预警 / no warning"}], key="hazards-risk-warnings",
                          description="风险点预警（检查逾期）/ risk points in warning (check overdue)")
    create_table_artifact(uploads or [{"单位 unit": "—"}], key="hazards-platform-uploads",
                          description="半月排查上传监管平台情况 / half-monthly checks uploaded to the supervision platform")
    create_markdown_artifact(summary_markdown(cfg, rows, as_of, run, warnings=len(warnings), uploads_missing=missing),
                             key="hazards-summary", description="隐患排查治理闭环 / hazard closed loop")
    return {"open_hazards": len(rows), "overdue_hazards": sum(r.status == "overdue" for r in rows), "warnings": len(warnings),
            "uploads_missing": missing}
