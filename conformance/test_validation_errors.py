"""A 1001 names each offending field and the rule it broke, so that a form can mark it.

Spec: components.schemas ApiError (`errors`) and FieldError; the request schemas of register
and login (RegisterRequest's two forms), PageLimit and GroupId.
"""

from __future__ import annotations

from conformance.expect import INVALID_REQUEST, refused
from conformance.target import PASSWORD, bearer, unique_name


def field_errors(response) -> list[tuple[str, str, str]]:
    """(in, field, rule) of each entry of a 1001's `errors`, in order."""
    body = refused(response, INVALID_REQUEST)
    assert "errors" in body, body
    return [(entry["in"], entry["field"], entry["rule"]) for entry in body["errors"]]


def test_a_short_password_is_named_not_a_mismatch_of_forms(api):
    """A registration without an email whose password is too short: the password, not
    "does not match any of the accepted forms"."""
    response = api.post("/user/register", json={"name": unique_name(), "password": "abc"})
    assert field_errors(response) == [("body", "/password", "minLength")]
    body = response.json()
    assert "password" in body["info"]
    assert body["errors"][0]["message"] == "must be at least 6 characters long"


def test_a_bad_name_and_a_short_password_are_both_named(api):
    response = api.post("/user/register", json={"name": "a b", "password": "abc"})
    assert sorted(field_errors(response)) == [
        ("body", "/name", "pattern"),
        ("body", "/password", "minLength"),
    ]


def test_a_missing_field_is_named_where_it_belongs(api):
    """A code without an email is a registration with an email that lacks the email."""
    response = api.post(
        "/user/register",
        json={"name": unique_name(), "password": PASSWORD, "security_code": "123456"},
    )
    assert field_errors(response) == [("body", "/email", "required")]


def test_an_unknown_field_is_named(api, users):
    response = api.post(
        "/user/change_name",
        json={"name": unique_name(), "nickname": "x"},
        headers=bearer(users.token()),
    )
    assert ("body", "/nickname", "additionalProperties") in field_errors(response)


def test_what_every_form_requires_is_named(api):
    """An empty registration lacks what both of its forms ask: a name and a password."""
    response = api.post("/user/register", json={})
    assert field_errors(response) == [
        ("body", "/name", "required"),
        ("body", "/password", "required"),
    ]


def test_a_body_that_fits_no_form_is_blamed_as_a_whole(api):
    response = api.post("/user/login", json={})
    assert field_errors(response) == [("body", "", "oneOf")]


def test_a_value_sent_is_never_quoted(api):
    """A message says what the rule asks, never the value: it may be a password."""
    secret = "sEcReT"
    response = api.post("/user/register", json={"name": unique_name(), "password": secret[:5]})
    assert secret[:5] not in response.text


def test_a_bad_query_parameter_is_named(api, users):
    token = users.token()
    response = api.get("/groups", params={"limit": 0}, headers=bearer(token))
    assert field_errors(response) == [("query", "limit", "minimum")]
    assert "'limit'" in response.json()["info"]


def test_every_bad_parameter_is_named_at_once(api, users):
    """An unknown parameter and a bad one: both, not only the first."""
    token = users.token()
    response = api.get("/groups", params={"limit": 1000, "colour": "red"}, headers=bearer(token))
    assert sorted(field_errors(response)) == [
        ("query", "colour", "unknown"),
        ("query", "limit", "maximum"),
    ]


def test_a_bad_path_parameter_is_named(api, users):
    token = users.token()
    response = api.get("/groups/0", headers=bearer(token))
    assert field_errors(response) == [("path", "group_id", "minimum")]
