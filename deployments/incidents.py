"""Deployments of the clock-driven flows: the incident clock, its sweep, and the holiday watch.

``specs()`` returns them as ``deployments.build.Spec`` data, like the duty deployments, so
``serve`` and ``prefect.yaml`` are built from the same place. Their descriptions cite the
clauses of the duties named in ``catalog/flows/*.yaml``. The holiday watch runs every hour of
its sending hours, so reminders and escalations go out on the hour they fall due; planning
needs no more than one of those runs a day. The incident clock has no schedule: registering an
incident schedules its runs, and the sweep catches what scheduling missed.
"""

from __future__ import annotations

from pathlib import Path

from deployments.duties import INCIDENT_TAG, WATCH_TAG
from deployments.specs import Schedule, Spec
from tasks.names import INCIDENT_CLOCK_DEPLOYMENT_NAME
from pingan.duties.catalog import Catalog, DutySpec, load_catalog

# "<flow name>/<deployment name>" of the incident clock: registering an incident schedules runs
# of it (``tasks.incident.schedule_follow_ups``); its flow is ``flows/incident_clock.py``.
SWEEP_CRON = "*/5 * * * *"


def _source(catalog: Catalog, duty: DutySpec) -> str:
    title = catalog.documents.get(duty.source.document, duty.source.document)
    return f"依据 / source：《{title}》{duty.source.clause}（{duty.source.document}）\n原文：{duty.text}"


def watch_cron(send_hours) -> str:
    """Hourly on the hour within the sending hours, e.g. ``0 8-20 * * *`` for 08:00–21:00."""
    first = send_hours.start.hour + (1 if (send_hours.start.minute or send_hours.start.second) else 0)
    last = send_hours.end.hour - (0 if (send_hours.end.minute or send_hours.end.second) else 1)
    return f"0 {first}-{last} * * *" if first < last else f"0 {first} * * *"


def specs(catalog_dir: Path | None = None) -> list[Spec]:
    from pingan.core.settings import get_settings
    from pingan.incidents import rules as incidents
    from pingan.watch import rules as watch

    directory = Path(catalog_dir or get_settings().catalog_dir)
    catalog = load_catalog(directory)
    incident_rules = incidents.read_rules(directory / "flows" / "incident.yaml", catalog.duties)
    watch_rules = watch.read_rules(directory / "flows" / "holiday.yaml", catalog.duties)
    incident_duty = catalog.duty(incident_rules.duty)
    roster, report = catalog.duty(watch_rules.roster.duty), catalog.duty(watch_rules.daily_report.duty)
    watch_source = (_source(catalog, roster) + report.text) if roster.source == report.source else (
        f"{_source(catalog, roster)}\n{_source(catalog, report)}")
    return [
        Spec(
            name=INCIDENT_CLOCK_DEPLOYMENT_NAME,
            entrypoint="flows/incident_clock.py:incident_clock",
            description="事故报告时限：电话报告、书面报告各有时限（按各地规定），超时即刻督办；登记事故时按各时限自动安排运行 / "
                        "incident clock: the phone and the written report each have a deadline (per jurisdiction), "
                        "escalated at once when missed; registering an incident schedules these runs\n"
                        + _source(catalog, incident_duty),
            tags=("pingan", INCIDENT_TAG, "incident"),
        ),
        Spec(
            name="事故报告巡检",
            entrypoint="flows/incident_clock.py:incident_sweep",
            description="每 5 分钟检查全部未结事故的报告时限（补上未能安排的运行）/ "
                        "every 5 minutes: evaluates the clock of every open incident (covers runs that could not be scheduled)",
            schedules=(Schedule(SWEEP_CRON, "every-5-minutes"),),
            tags=("pingan", INCIDENT_TAG, "incident"),
        ),
        Spec(
            name="节假日值班与零报告",
            entrypoint="flows/holiday_watch.py:holiday_watch",
            description="节假日值守：节前报送带班及值班值宿表，节日期间每日零报告，缺报即提醒、督办 / "
                        "holiday watch: duty rosters before each holiday, a zero report every day of it, reminders and "
                        "escalation of what is missing\n" + watch_source,
            schedules=(Schedule(watch_cron(watch_rules.send_hours), "watch-hours"),),
            tags=("pingan", WATCH_TAG, "holiday-watch"),
        ),
    ]
