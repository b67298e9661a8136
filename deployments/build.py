"""Every deployment pingan serves and ``prefect.yaml`` lists, gathered from the files that
declare them: the duties and service flows (``deployments.duties``), the hazard watch, the
incident clock and holiday watch, the reports and digests."""

from __future__ import annotations

from deployments import duties, hazards, incidents, reports
from deployments.specs import Spec
from pingan.duties.catalog import Catalog


def all_specs(catalog: Catalog) -> list[Spec]:
    return [*duties.specs(catalog), *hazards.specs(), *incidents.specs(), *reports.specs()]
