"""The evidence page fuzzed from its own OpenAPI schema (schemathesis, property-based): every route,
with parameters and form bodies valid and invalid, signed out and signed in, and the hand-in form
behind a real link — and not one answer is a server error (5xx).

The run is bounded (a fixed number of examples per pass, no Hypothesis database), so it takes
seconds, not minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
import test_web
from test_web import login

# test_web's fixtures, used here under their own names
catalog, quick_hashes, site, template_db = test_web.catalog, test_web.quick_hashes, test_web.site, test_web.template_db

EXAMPLES = 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def run(strategy, **call) -> list[tuple[str, str, int]]:
    """Every generated request sent to the app; returns what was sent and answered."""
    seen: list[tuple[str, str, int]] = []

    @FUZZ
    @given(case=strategy)
    def one(case):
        response = case.call(**call)
        seen.append((case.method, case.path, response.status_code))
        case.validate_response(response, checks=[not_a_server_error])

    one()
    return seen


@pytest.fixture
def schema(site):
    loaded = schemathesis.openapi.from_dict(site.client.app.openapi())
    loaded.app = site.client.app
    return loaded


def test_the_schema_covers_every_route_and_promises_no_json_error(schema, site):
    operations = sorted(f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations())
    assert operations == [
        "GET /account/password", "GET /c/{token}.ics", "GET /c/{token}/unit/{unit_id}.ics", "GET /e/{token}", "GET /e/{token}/incident", "GET /login",
        "GET /m/{token}", "GET /m/{token}/hazard/{hazard_id}", "GET /m/{token}/lead", "GET /m/{token}/task/{task_id}", "GET /review",
        "GET /review/files/{file_id}", "GET /review/{evidence_id}", "POST /account/password", "POST /e/{token}",
        "POST /e/{token}/incident", "POST /e/{token}/roster", "POST /e/{token}/zero", "POST /login", "POST /logout",
        "POST /m/{token}/hazard/{hazard_id}", "POST /m/{token}/lead/remind", "POST /review/{evidence_id}/accept",
        "POST /review/{evidence_id}/reject",
    ]
    assert "422" not in str(site.client.app.openapi()) and "HTTPValidationError" not in str(site.client.app.openapi())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_signed_out_or_in_gets_a_server_error(schema, site, mode):
    anonymous = run(schema.as_strategy(generation_mode=mode))
    assert login(site, site.client).status_code == 303
    cookie = {"pingan_session": site.client.cookies.get("pingan_session")}
    signed_in = run(schema.as_strategy(generation_mode=mode), cookies=cookie)
    assert len(anonymous) >= EXAMPLES // 2 and len(signed_in) >= EXAMPLES // 2
    # signed in, the review pages were reached, not only the sign-in redirect
    assert any(path.startswith("/review") and status in (200, 400, 403, 404, 409) for _, path, status in signed_in)


def test_no_hand_in_behind_a_real_link_gets_a_server_error(schema, site):
    hand_in = schema.include(path_regex=r"^/e/").as_strategy(path_parameters={"token": site.token})
    seen = run(hand_in)
    assert {status for _, _, status in seen} - {200, 303, 400, 403, 409, 413, 415} == set()
