"""Prefect tasks of the holiday watch beyond its workflow steps: the board the operator reads."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pingan.core.db import get_engine, session_scope
from pingan.duties.runtime import get_runtime
from pingan.org.snapshot import load_org
from pingan.watch import views
from tasks.steps import RETRY


@task(name="publish-watch", **RETRY)
def publish(as_of: dt.datetime) -> dict:
    """Who has filed the roster and reported today: a table and a summary, one artifact key per day."""
    rt = get_runtime()
    day = as_of.date()
    with session_scope(get_engine(rt.settings.db_url)) as session:
        periods, rows = views.board(session, rt, load_org(session), day, as_of)
    key = f"holiday-watch-{day:%Y-%m-%d}"
    create_table_artifact(views.board_table(rows), key=key, description=f"{day:%Y-%m-%d} 各单位值班与零报告 / who has reported")
    create_markdown_artifact(views.board_markdown(day, periods, rows, as_of, views.source_line(rt)), key=f"{key}-summary",
                             description=f"节假日值守 {day:%Y-%m-%d} / holiday watch")
    return {"periods": [p.key for p in periods], "reports": {r.unit_code: r.report for r in rows}}
