"""What a run needs besides the database: settings, the validated catalog and the calendar.

Built once per process (the catalog is parsed and checked once), reset by tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pingan.core.calendar import WorkCalendar
from pingan.duties.catalog import Catalog, load_catalog
from pingan.core.periods import Terms
from pingan.duties.rules import PlanContext
from pingan.core.settings import Settings, get_settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    catalog: Catalog
    calendar: WorkCalendar
    terms: Terms

    @property
    def ctx(self) -> PlanContext:
        return PlanContext(calendar=self.calendar, terms=self.terms, key_dates=dict(self.catalog.key_dates))


def build_runtime(settings: Settings | None = None, catalog: Catalog | None = None) -> Runtime:
    settings = settings or get_settings()
    return Runtime(
        settings=settings,
        catalog=catalog or load_catalog(settings.catalog_dir),
        calendar=WorkCalendar.from_file(settings.holidays_path),
        terms=Terms(spring=settings.spring_term, autumn=settings.autumn_term),
    )


@functools.cache
def get_runtime() -> Runtime:
    return build_runtime()


def reset_runtime() -> None:
    get_runtime.cache_clear()
