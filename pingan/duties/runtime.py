"""What a run needs besides the database: settings, the validated catalog and the calendar.

Built once per process (the catalog is parsed and checked once), reset by tests.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import Catalog, load_catalog
from pingan.core.periods import Terms
from pingan.duties.rules import PlanContext
from pingan.core.i18n import locale, pick
from pingan.core.settings import Settings, get_settings
from pingan.delivery.messages import DutyText
from pingan.delivery.release import release_at


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    catalog: Catalog
    calendar: WorkCalendar
    terms: Terms

    @property
    def ctx(self) -> PlanContext:
        return PlanContext(calendar=self.calendar, terms=self.terms, key_dates=dict(self.catalog.key_dates))

    def release_at(self, as_of: dt.datetime, *, due_at: dt.datetime | None = None, urgent: bool = False) -> dt.datetime:
        """When a notice queued at ``as_of`` may be sent: its digest slot, or at once when urgent
        (``pingan.delivery.release``)."""
        s = self.settings
        return release_at(as_of, calendar=self.calendar, morning=s.digest_morning, afternoon=s.digest_afternoon,
                          due_at=due_at, urgent=urgent)

    def describe(self, duty_key: str) -> DutyText | None:
        """What a message says of a duty: its name, source and the evidence it asks for (reader's language)."""
        duty = self.catalog.duties.get(duty_key)
        if duty is None:
            return None
        en = locale() == "en"
        title = self.catalog.documents.get(duty.source.document, duty.source.document)
        source = f"Source: {title}, clause {duty.source.clause}" if en else f"依据：《{title}》{duty.source.clause}"
        kinds = [self.catalog.evidence_kinds[k] for k in duty.evidence if k in self.catalog.evidence_kinds]
        parts = [f"{pick(k.name, k.name_en)}（{pick(k.must_contain, k.must_contain_en)}）" for k in kinds]
        evidence = (("Hand in: " if en else "需提交：") + "；".join(parts)) if parts else ""
        return DutyText(name=pick(duty.name, duty.name_en), source=source, evidence=evidence)


def build_runtime(settings: Settings | None = None, catalog: Catalog | None = None) -> Runtime:
    settings = settings or get_settings()
    return Runtime(
        settings=settings,
        catalog=catalog or load_catalog(settings.catalog_dir),
        calendar=WorkCalendar.from_file(settings.holidays_path),
        terms=Terms(spring=settings.spring_term, autumn=settings.autumn_term),
    )


@functools.cache
def get_runtime(province: str | None = None) -> Runtime:
    """This process's runtime; for a province shard, on that shard's database."""
    return build_runtime(get_settings().for_province(province)) if province else build_runtime()


def reset_runtime() -> None:
    get_runtime.cache_clear()
