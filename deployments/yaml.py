"""``prefect.yaml`` written from the same specs the main job serves, with a YAML library.

``pingan deployments write`` regenerates it; ``pingan deployments check`` (and a test) fail when
it differs from what the catalog implies, so the file in the repository never drifts.
"""

from __future__ import annotations

import io

import prefect
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from deployments.specs import Spec

HEADER = """\
Generated from the catalog by `pingan deployments write`; do not edit by hand.
Edit catalog/*.yaml, then regenerate (tests/test_deployments.py fails when they differ).

Scale-out: a process work pool and workers on any machine that has this checkout:
  prefect work-pool create pingan --type process
  PINGAN_CODE_DIR=$PWD prefect --no-prompt deploy --all      # the failure alert comes with it
  PINGAN_CODE_DIR=$PWD prefect worker start --pool pingan --limit 4   # on each worker machine"""


def _flow_style(items) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _map(flow: bool = False, **items) -> CommentedMap:
    out = CommentedMap(items)
    if flow:
        out.fa.set_flow_style()
    return out


def document(specs: list[Spec]) -> CommentedMap:
    """``prefect.yaml`` as data: one entry per spec, the work pool shared through an anchor."""
    pool = _map(name="pingan", work_queue_name="default")
    pool.yaml_set_anchor("pool", always_dump=True)
    deployments = CommentedSeq()
    for spec in specs:
        entry = _map(name=spec.name, entrypoint=spec.entrypoint, description=spec.description)
        if spec.parameters:
            entry["parameters"] = _map(flow=True, **spec.parameters)
        entry["tags"] = _flow_style(list(spec.tags))
        entry["schedules"] = CommentedSeq(
            [_map(flow=True, cron=s.cron, timezone=s.timezone, slug=s.slug) for s in spec.schedules])
        if spec.triggers:
            entry["triggers"] = CommentedSeq([t.as_dict() for t in spec.triggers])
        if spec.concurrency_limit:
            entry["concurrency_limit"] = _map(flow=True, limit=spec.concurrency_limit, collision_strategy="ENQUEUE")
        entry["work_pool"] = pool
        deployments.append(entry)
    doc = _map(
        name="pingan", **{"prefect-version": prefect.__version__},
        pull=[{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PINGAN_CODE_DIR }}"}}],
        definitions=_map(work_pool=pool), deployments=deployments,
    )
    doc.yaml_set_start_comment(HEADER)
    return doc


def render(specs: list[Spec]) -> str:
    yaml = YAML()
    yaml.width = 4096  # one line per description: diffs stay readable
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    out = io.StringIO()
    yaml.dump(document(specs), out)
    return out.getvalue()
