"""``prefect.yaml`` rendered from the same specs the main job serves.

``pingan deployments --write`` regenerates it; ``--check`` (and a test) fail when it differs
from what the catalog implies, so the file in the repository never drifts from the catalog.
"""

from __future__ import annotations

import json

import prefect

from deployments.build import Spec

HEADER = """\
# Generated from the catalog by `pingan deployments --write`; do not edit by hand.
# Edit catalog/*.yaml, then regenerate (tests/test_deployments.py fails when they differ).
#
# Scale-out: a process work pool and workers on any machine that has this checkout:
#   prefect work-pool create pingan --type process
#   PINGAN_CODE_DIR=$PWD prefect deploy --all
#   PINGAN_CODE_DIR=$PWD prefect worker start --pool pingan --limit 4   # on each worker machine
name: pingan
prefect-version: {version}

pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{{{ $PINGAN_CODE_DIR }}}}"

definitions:
  work_pool: &pool
    name: pingan
    work_queue_name: default

deployments:
"""


def _q(value: str) -> str:
    # JSON strings are valid YAML scalars and keep Chinese text readable.
    return json.dumps(value, ensure_ascii=False)


def render(specs: list[Spec]) -> str:
    lines = [HEADER.format(version=prefect.__version__)]
    for spec in specs:
        lines.append(f"  - name: {_q(spec.name)}")
        lines.append(f"    entrypoint: {spec.entrypoint}")
        lines.append(f"    description: {_q(spec.description)}")
        if spec.parameters:
            params = ", ".join(f"{k}: {_q(v)}" for k, v in spec.parameters.items())
            lines.append(f"    parameters: {{{params}}}")
        lines.append(f"    tags: [{', '.join(_q(t) for t in spec.tags)}]")
        if spec.schedules:
            lines.append("    schedules:")
            for s in spec.schedules:
                lines.append(f"      - {{cron: {_q(s.cron)}, timezone: {s.timezone}, slug: {s.slug}}}")
        else:
            lines.append("    schedules: []")
        lines.append("    work_pool: *pool")
    return "\n".join(lines) + "\n"
