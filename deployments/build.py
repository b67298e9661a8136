"""Every deployment pingan serves and ``prefect.yaml`` lists, gathered from the files that
declare them: the duties and service flows (``deployments.duties``), the hazard watch, the
incident clock and holiday watch, the reports and digests."""

from __future__ import annotations

from pathlib import Path

from deployments import duties, hazards, incidents, reports
from deployments.specs import Spec
from pingan.duties.catalog import Catalog


def all_specs(catalog: Catalog, catalog_dir: Path | None = None) -> list[Spec]:
    """Every deployment; ``catalog_dir`` is where the clock-driven flows' data files are read
    (default: the settings' catalog directory)."""
    return [*duties.specs(catalog), *hazards.specs(), *incidents.specs(catalog_dir), *reports.specs()]
