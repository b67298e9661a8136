"""The deployments derived from the catalog, and prefect.yaml kept in step with them (no server)."""

from __future__ import annotations

import inspect

import pytest
import yaml
from typer.testing import CliRunner

from deployments.build import ALERT_DEPLOYMENT, DUTY_ENTRYPOINT, all_specs
from deployments.serve import WATCHED_STATES, alert_automation, runner_deployments
from deployments.yaml import render
from pingan.duties.catalog import load_catalog
from pingan.cli import app
from pingan.core.settings import REPO_ROOT


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def specs(catalog):
    return all_specs(catalog)


def test_prefect_yaml_in_the_repository_matches_the_catalog(specs):
    committed = (REPO_ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert committed == render(specs), "prefect.yaml is stale: run `pingan deployments write`"


def test_prefect_yaml_says_what_the_specs_say(specs):
    parsed = yaml.safe_load(render(specs))
    by_name = {d["name"]: d for d in parsed["deployments"]}
    assert len(by_name) == len(specs)
    for spec in specs:
        entry = by_name[spec.name]
        assert entry["entrypoint"] == spec.entrypoint
        assert entry["description"] == spec.description
        assert entry["parameters"] if spec.parameters else "parameters" not in entry
        assert entry.get("parameters", {}) == spec.parameters
        assert entry["tags"] == list(spec.tags)
        assert [(s["cron"], s["timezone"], s["slug"]) for s in entry["schedules"]] == [
            (s.cron, s.timezone, s.slug) for s in spec.schedules]
        assert entry["work_pool"]["name"] == "pingan"
    assert parsed["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $PINGAN_CODE_DIR }}"


def test_one_deployment_per_planned_duty_named_and_described_from_its_source(catalog, specs):
    duty_specs = {s.parameters["duty"]: s for s in specs if s.entrypoint == DUTY_ENTRYPOINT}
    assert set(duty_specs) == {d.key for d in catalog.planned}
    for duty in catalog.planned:
        spec = duty_specs[duty.key]
        assert spec.name.startswith(duty.name[:10])
        assert duty.source.clause in spec.description and duty.source.document in spec.description
        assert f"duty:{duty.key}" in spec.tags and f"cadence:{duty.cadence.every}" in spec.tags
    assert len({s.name for s in specs}) == len(specs), "deployment names must be unique"


def test_every_schedule_has_a_slug_and_runs_in_shanghai_time(specs):
    for spec in specs:
        slugs = [s.slug for s in spec.schedules]
        assert len(set(slugs)) == len(slugs) and all(slugs), spec.name
        assert all(s.timezone == "Asia/Shanghai" for s in spec.schedules)


def test_entrypoints_load_and_take_the_parameters_given(specs):
    for spec in specs:
        flow = spec.load_flow()
        accepted = inspect.signature(flow.fn).parameters
        assert set(spec.parameters) <= set(accepted), spec.name
        assert "as_of" in accepted, f"{spec.name} must take as_of"


def test_served_deployments_carry_the_same_schedules(specs):
    runners = runner_deployments(specs[:3])
    for runner, spec in zip(runners, specs[:3]):
        assert runner.name == spec.name
        got = sorted((s.schedule.cron, s.schedule.timezone, s.slug) for s in runner.schedules)
        assert got == sorted((s.cron, s.timezone, s.slug) for s in spec.schedules)


def test_the_alert_watches_pingan_runs_but_not_itself(specs):
    import uuid

    alert = next(s for s in specs if s.name == ALERT_DEPLOYMENT)
    automation = alert_automation(uuid.uuid4())
    watched = automation.trigger.match_related
    assert watched["prefect.resource.id"] in ("prefect.tag.pingan", ["prefect.tag.pingan"])
    assert "pingan" not in alert.tags
    assert all("pingan" in s.tags for s in specs if s is not alert)
    assert automation.trigger.expect == set(WATCHED_STATES)


def test_cli_check_fails_on_a_stale_file_and_write_repairs_it(tmp_path):
    target = tmp_path / "prefect.yaml"
    target.write_text("name: stale\n", encoding="utf-8")
    runner = CliRunner()
    stale = runner.invoke(app, ["deployments", "check", "--path", str(target)])
    assert stale.exit_code == 2 and "pingan deployments write" in stale.output
    assert runner.invoke(app, ["deployments", "write", "--path", str(target)]).exit_code == 0
    assert runner.invoke(app, ["deployments", "check", "--path", str(target)]).exit_code == 0
