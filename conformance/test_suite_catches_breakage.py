"""The suite itself: a server that breaks the contract makes it fail.

Each test builds an app in-process with one handler broken on purpose, runs the suite's
own checks (the code path of test_fuzz.py, or a scenario test) against it, and expects the
failure the breakage must cause. In-process only: the breakage is made with monkeypatch.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.failures import FailureGroup

import handlers.user
from conformance import auth, checks, test_sessions
from conformance import target as targets
from conformance.target import Users, bearer


@pytest.fixture
def breakable(target, monkeypatch):
    """`break_handler(name, replacement)` -> an in-process target whose handler is replaced."""
    if target.is_live:
        pytest.skip("checks the suite itself; runs in-process only")

    def break_handler(name: str, replacement):
        monkeypatch.setattr(handlers.user, name, replacement)
        # Connexion would turn a non-conforming response into a 500 itself: let it through,
        # as a server without response validation would send it.
        return targets.in_process(validate_responses=False)

    yield break_handler
    target.make_current()


def failures_of(operation_path: str, method: str, broken) -> list[str]:
    """Fuzz one operation of `broken` as test_fuzz.py does; the failures' class names."""
    schema = broken.load_schema()
    auth.install(schema, lambda: broken)
    operation = schema[operation_path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        checks.call_and_validate(case)

    with pytest.raises(FailureGroup) as caught:
        fuzz()
    return [type(failure).__name__ for failure in caught.value.exceptions]


def test_a_field_the_contract_does_not_have_is_caught(breakable):
    """GET /api/user/me answering an extra `password_hash` fails response_schema_conformance."""
    original = handlers.user.get_me

    def leaky_me(token_info):
        answer = original(token_info)
        answer["user"]["password_hash"] = "$2b$04$leaked"
        return answer

    broken = breakable("get_me", leaky_me)

    assert "JsonSchemaError" in failures_of("/user/me", "GET", broken)


def test_a_server_error_is_caught(breakable):
    """POST /api/user/change_name raising fails not_a_server_error, though the contract
    documents the 500 it answers (every operation can meet a bug)."""

    def crashing_change_name(body, token_info):
        raise RuntimeError("broken on purpose")

    broken = breakable("change_name", crashing_change_name)

    found = failures_of("/user/change_name", "POST", broken)
    assert "ServerError" in found, found


def test_an_undocumented_status_is_caught(breakable):
    """POST /api/user/logout answering 202 fails status_code_conformance."""

    def accepted_logout(token_info):
        return {"code": 0, "info": "Succeed"}, 202

    broken = breakable("logout", accepted_logout)

    assert "UndefinedStatusCode" in failures_of("/user/logout", "POST", broken)


def test_a_session_that_outlives_logout_is_caught(breakable):
    """POST /api/user/logout that ends nothing fails the scenario that checks revocation."""
    broken = breakable("logout", lambda token_info: {"code": 0, "info": "Succeed"})

    with broken.client() as api, pytest.raises(AssertionError):
        test_sessions.test_logout_ends_the_session_of_its_token_only(api, Users(api))


def test_the_unbroken_app_passes_the_same_checks(target):
    """Control: the same checks pass on the real handlers (so the failures above are theirs)."""
    if target.is_live:
        pytest.skip("checks the suite itself; runs in-process only")
    schema = target.load_schema()
    auth.install(schema, lambda: target)
    with target.client() as api:
        users = Users(api)
        for path, method, body in [
            ("/user/me", "GET", None),
            ("/user/change_name", "POST", {"new_name": targets.unique_name()}),
            ("/user/logout", "POST", None),
        ]:
            extra = {} if body is None else {"body": body, "media_type": "application/json"}
            case = schema[path][method].Case(headers=bearer(users.token()), **extra)
            checks.call_and_validate(case)
