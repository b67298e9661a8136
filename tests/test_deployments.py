"""The deployments derived from the catalog, and prefect.yaml kept in step with them (no server)."""

from __future__ import annotations

import inspect

import pytest
import yaml
from typer.testing import CliRunner

from deployments.build import all_specs
from deployments.duties import ALERT_DEPLOYMENT, AUTOMATION_NAME, DUTY_ENTRYPOINT
from deployments.serve import runner_deployments
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
        assert spec.name == (duty.short or duty.name)
        assert duty.name in spec.description  # the full name, with the clause and document
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


def _flow_run_event(state: str, tags: list[str], name: str = "学校安全形势分析会 2026-11"):
    import datetime as dt
    import uuid

    from prefect.server.events.schemas.events import ReceivedEvent

    run_id = uuid.uuid4()
    return ReceivedEvent(
        occurred=dt.datetime.now(dt.timezone.utc), event=f"prefect.flow-run.{state}", id=uuid.uuid4(),
        resource={"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.name": name},
        related=[{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"} for tag in tags],
    )


def test_the_alert_is_a_trigger_of_the_alert_deployment_in_prefect_yaml(specs):
    """``prefect deploy --all`` reads the trigger from prefect.yaml: it must be a valid Prefect
    deployment trigger that runs the alert deployment when a pingan run fails, crashes or times
    out — and not when the alert itself fails, nor when a run completes."""
    import uuid

    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.server.events.schemas.automations import EventTrigger

    parsed = yaml.safe_load(render(specs))
    alert = next(d for d in parsed["deployments"] if d["name"] == ALERT_DEPLOYMENT)
    others = [d for d in parsed["deployments"] if d["name"] != ALERT_DEPLOYMENT]
    assert all("triggers" not in d for d in others) and len(alert["triggers"]) == 1
    trigger = DeploymentEventTrigger.model_validate(alert["triggers"][0])
    deployment_id = uuid.uuid4()
    trigger.set_deployment_id(deployment_id)
    automation = trigger.as_automation()
    assert automation.name == AUTOMATION_NAME and automation.enabled
    assert automation.actions[0].deployment_id == deployment_id
    assert set(automation.actions[0].parameters) == {"flow_run_id", "flow_run_name", "state"}

    server_side = EventTrigger.model_validate(automation.trigger.model_dump(mode="json"))
    for state in ("Failed", "Crashed", "TimedOut"):
        assert server_side.covers(_flow_run_event(state, ["pingan", "duty:x"])), state
    assert not server_side.covers(_flow_run_event("Completed", ["pingan"]))
    assert not server_side.covers(_flow_run_event("Failed", [*alert["tags"]], name="运行失败告警 x"))
    assert not server_side.covers(_flow_run_event("Failed", ["someone-else"]))


def test_served_deployments_carry_the_alert_trigger(specs):
    alert = next(s for s in specs if s.name == ALERT_DEPLOYMENT)
    (runner,) = runner_deployments([alert])
    assert [t.name for t in runner.triggers] == [AUTOMATION_NAME]
    served = runner.triggers[0].model_dump(mode="json", exclude={"id"})
    from_yaml = yaml.safe_load(render([alert]))["deployments"][0]["triggers"][0]
    assert {k: served[k] for k in ("match", "match_related", "parameters")} == {
        k: from_yaml[k] for k in ("match", "match_related", "parameters")}
    assert set(served["expect"]) == set(from_yaml["expect"]) == {
        "prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}


def test_cli_check_fails_on_a_stale_file_and_write_repairs_it(tmp_path):
    target = tmp_path / "prefect.yaml"
    target.write_text("name: stale\n", encoding="utf-8")
    runner = CliRunner()
    stale = runner.invoke(app, ["deployments", "check", "--path", str(target)])
    assert stale.exit_code == 2 and "pingan deployments write" in stale.output
    assert runner.invoke(app, ["deployments", "write", "--path", str(target)]).exit_code == 0
    assert runner.invoke(app, ["deployments", "check", "--path", str(target)]).exit_code == 0


# The Prefect UI's deployment list cuts names after about ten characters.
SHOWN = 10


def test_deployment_names_are_short_and_tell_apart_in_the_ui_list(specs):
    names = [s.name for s in specs]
    assert all(len(name) <= 12 for name in names), [n for n in names if len(n) > 12]
    assert len({name[:SHOWN] for name in names}) == len(names), "two deployments look alike in the list"


# Who carries a duty decides its 局 / 校 tag: units of these kinds are the bureau and its sections.
BUREAU_KINDS = {"bureau", "department"}


def test_the_operator_filters_deployments_by_chinese_tags(catalog, specs):
    for duty in catalog.planned:
        spec = next(s for s in specs if s.parameters.get("duty") == duty.key)
        kinds = {k.value for k in duty.carrier.unit_kinds}
        assert ("局" in spec.tags) == bool(kinds & BUREAU_KINDS), duty.key
        assert ("校" in spec.tags) == bool(kinds - BUREAU_KINDS), duty.key
        assert ("隐患" in spec.tags) == ("hazard" in duty.tags), duty.key
    by_flow = {}
    for spec in specs:
        by_flow.setdefault(spec.flow_name, set()).update(spec.tags)
    assert "事故" in by_flow["incident-clock"] and "事故" in by_flow["incident-sweep"]
    assert "值守" in by_flow["holiday-watch"] and "隐患" in by_flow["hazard-watch"]
    assert {"报告"} <= by_flow["compliance-report"] & by_flow["weekly-digest"] & by_flow["daily-summary"]
    parsed = yaml.safe_load(render(specs))
    assert {tuple(d["tags"]) for d in parsed["deployments"]} == {tuple(s.tags) for s in specs}


def _form(spec) -> dict:
    """The custom-run form of a deployment: the parameter schema Prefect builds from its flow."""
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(spec.load_flow().fn).model_dump()["properties"]


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_the_custom_run_forms_speak_chinese(specs):
    forms = {s.flow_name: _form(s) for s in specs if s.flow_name in {
        "sensitive-period", "incident-clock", "incident-sweep", "holiday-watch", "hazard-watch",
        "compliance-report", "weekly-digest", "daily-summary"}}
    assert len(forms) == 8
    for flow, fields in forms.items():
        for name, field in fields.items():
            assert field["title"] != name and _has_cjk(field["title"]), (flow, name, field["title"])
            assert _has_cjk(field.get("description", "")), (flow, name)


def _enum(field: dict) -> list:
    for option in field.get("anyOf", [field]):
        found = option.get("enum") or option.get("items", {}).get("enum")
        if found:
            return found
    return []


def test_the_sensitive_period_form_offers_the_catalog_s_duties_and_chinese_frequencies(catalog, specs):
    from pingan.duties.sensitive import FREQUENCIES

    form = _form(next(s for s in specs if s.flow_name == "sensitive-period"))
    assert sorted(_enum(form["duties"])) == sorted(d.short or d.name for d in catalog.planned)
    assert len(_enum(form["frequency"])) == len(FREQUENCIES) and all(_has_cjk(f) for f in _enum(form["frequency"]))
    assert form["start"]["format"] == "date" and form["end"]["format"] == "date"
    assert {"name", "start", "end"} <= set(form) and form["scope"]["default"] == "all"
    assert "kindergarten" in form["scope"]["description"]


def test_a_run_from_the_form_is_turned_into_keys_and_codes(monkeypatch):
    """What the form sends (short names, 每周) reaches the service as duty keys and frequency codes."""
    import flows.sensitive_period as sp
    from pingan.duties import service

    got = {}
    monkeypatch.setattr(service, "start_sensitive_period",
                        lambda rt, req, moment, actor: got.update(req=req) or {"id": 1, "planned": {}, "announced": 0})
    monkeypatch.setattr(sp, "dispatch_released", lambda moment, reason: {"dispatch_run": None})
    monkeypatch.setattr(sp, "load_org", lambda session: None)
    monkeypatch.setattr(sp, "session_scope", _nothing)
    monkeypatch.setattr(sp, "create_markdown_artifact", lambda *a, **k: None)
    monkeypatch.setattr(sp, "get_run_logger", lambda: _Quiet())
    catalog = sp.get_runtime().catalog
    duty = catalog.duty("bureau-principal-quarterly-inspection")
    sp.sensitive_period.fn(name="岁末年初", start=__import__("datetime").date(2026, 12, 14),
                           end=__import__("datetime").date(2026, 12, 31), scope="all",
                           duties=[duty.short], frequency="每周", as_of=None)
    assert got["req"].duties == ("bureau-principal-quarterly-inspection",) and got["req"].frequency == "weekly"


class _Quiet:
    def info(self, *args, **kwargs):
        pass


def _nothing():
    import contextlib

    return contextlib.nullcontext()
