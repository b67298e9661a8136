"""Prefect tasks of the duty cycle beyond its workflow steps: the artifacts the operator reads."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pingan.core.db import get_engine, session_scope
from pingan.delivery.views import notice_rows
from pingan.duties.runtime import get_runtime
from pingan.duties.status import tally, task_rows
from pingan.duties.views import artifact_key, status_table, summary_markdown
from tasks.steps import RETRY


@task(name="publish", timeout_seconds=300, **RETRY)
def publish(duty: str, as_of: dt.datetime, steps: dict, province: str | None = None) -> dict:
    """The state of every unit's task for the period (table), the notices this run queued and
    where each stands (table), and a summary citing the clause (markdown)."""
    rt = get_runtime(province)
    spec = rt.catalog.duty(duty)
    planned = steps["plan"]
    with session_scope(get_engine(rt.settings.db_url)) as session:
        rows = task_rows(session, duty, as_of, planned["periods"] or None)
        notices = notice_rows(session, duty, as_of)
    counts = tally(rows)
    create_table_artifact(status_table(rows), key=artifact_key(duty, "status"),
                          description=f"{spec.name}：各单位任务状态 / state per unit")
    create_table_artifact(notices or [{"收件人 person": "—", "状态 state": "本次没有通知 / no notice this run"}],
                          key=artifact_key(duty, "notices"),
                          description=f"{spec.name}：本次运行的通知及其发送状态 / this run's notices and their delivery")
    create_markdown_artifact(
        summary_markdown(rt, spec, as_of, planned, steps["remind"], steps["escalate"], counts, notices),
        key=artifact_key(duty, "summary"), description=f"{spec.name}（{spec.source.clause}）",
    )
    return counts
