"""The hazard watch's deployment (its own, beside the duty deployments of deployments/build.py)."""

from __future__ import annotations

from deployments.duties import HAZARD_TAG, SCHOOL_TAG
from deployments.specs import Schedule, Spec

HAZARD_ENTRYPOINT = "flows/hazards.py:hazard_watch"
HAZARD_DEPLOYMENT = "隐患排查治理与风险点巡查"


def specs() -> list[Spec]:
    """One daily run in the morning of each day; reminders and escalations wait for working time,
    so a weekend run only plans checks and marks deadlines, and Monday's run sends."""
    return [
        Spec(
            name=HAZARD_DEPLOYMENT,
            entrypoint=HAZARD_ENTRYPOINT,
            description=(
                "隐患排查治理闭环（排查、整改、核验、销号）与安全风险点分级巡查：到期、提醒、督办、发布各单位隐患与风险点情况"
                "（依据：002_8ab6cc7abff1c59e.txt 第 4、5 条；000_835012ae156b196b.txt 一（十一）、七（四））/ "
                "daily hazard watch: the closed loop found → rectified → verified → closed and the risk-point checks"
            ),
            schedules=(Schedule("5 9 * * *", "daily"),),
            tags=("pingan", HAZARD_TAG, SCHOOL_TAG, "hazard", "dual-prevention"),
        ),
    ]
