"""Hostile and odd requests: each gets its documented 4xx in the `{code, info}` envelope.

Spec: info "Conventions" (the envelope; status follows meaning), components.schemas
ErrorCode (1001 invalid request, 1002 malformed body, 1005 no such path, 1006 wrong method
with `Allow`, 1008 wrong Content-Type), the request schemas of register and login, and the
Password schema (6 to 128 characters of any kind, never truncated).
"""

from __future__ import annotations

import re

import pytest

from conformance import contract
from conformance.expect import (
    INVALID_REQUEST,
    MALFORMED_BODY,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    UNSUPPORTED_CONTENT_TYPE,
    WRONG_PASSWORD,
    refused,
    succeed,
)
from conformance.target import PASSWORD, bearer, unique_name

SIGNED_IN_KEYS = ("token", "expires_at", "ws_url", "user")
JSON = {"Content-Type": "application/json"}


def register(api, body):
    return api.post("/user/register", json=body)


def login(api, name: str, password: str):
    return api.post("/user/login", json={"name": name, "password": password})


@pytest.mark.parametrize(
    "body",
    [
        {"name": 12345, "password": PASSWORD},
        {"name": "abcdef", "password": 12345678},
        {"name": None, "password": PASSWORD},
        {"name": ["abcdef"], "password": PASSWORD},
        {"name": {"first": "abc"}, "password": PASSWORD},
        {"name": True, "password": PASSWORD},
        {"name": "abcdef", "password": PASSWORD, "email": 42},
        ["abcdef", PASSWORD],
        "abcdef",
        42,
    ],
    ids=[
        "name-number",
        "password-number",
        "name-null",
        "name-array",
        "name-object",
        "name-boolean",
        "email-number",
        "body-array",
        "body-string",
        "body-number",
    ],
)
def test_register_refuses_wrong_types(api, body):
    """POST /api/user/register: a value of the wrong JSON type is 400, 1001."""
    refused(register(api, body), INVALID_REQUEST)


@pytest.mark.parametrize(
    "body",
    [{}, {"name": "abcdef"}, {"password": PASSWORD}, {"name": "abcdef", "email": "a@b.co"}],
    ids=["empty-object", "no-password", "no-name", "email-without-password"],
)
def test_register_refuses_missing_fields(api, body):
    """POST /api/user/register: a missing required field is 400, 1001."""
    refused(register(api, body), INVALID_REQUEST)


@pytest.mark.parametrize(
    "extra", [{"id": 1}, {"is_admin": True}, {"need_send": False}, {"": ""}], ids=str
)
def test_register_refuses_unknown_fields(api, extra):
    """POST /api/user/register: a field the schema does not name is 400, 1001
    (`additionalProperties: false`), document A's `need_send` included."""
    refused(register(api, {"name": unique_name(), "password": PASSWORD, **extra}), INVALID_REQUEST)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a" * 10_000, "password": PASSWORD},
        {"name": unique_name(), "password": "p" * 10_000},
        {"name": unique_name(), "password": PASSWORD, "email": "e" * 10_000 + "@example.com"},
        {"name": unique_name(), "password": PASSWORD, "security_code": "1" * 10_000},
    ],
    ids=["name", "password", "email", "security_code"],
)
def test_register_refuses_10000_character_strings(api, body):
    """POST /api/user/register: a 10 000-character string is 400, 1001, not a 5xx or a 413."""
    refused(register(api, body), INVALID_REQUEST)


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 17, "with space", "dash-name", "ünïcode", "semi;colon", "nul\u0000byte", ""],
    ids=["too-short", "too-long", "space", "dash", "non-ascii", "semicolon", "nul", "empty"],
)
def test_register_refuses_names_off_the_pattern(api, name):
    """POST /api/user/register: a name off `^[A-Za-z0-9_]{3,16}$` is 400, 1001."""
    refused(register(api, {"name": name, "password": PASSWORD}), INVALID_REQUEST)


@pytest.mark.parametrize("password", ["12345", "p" * 129], ids=["5-characters", "129-characters"])
def test_register_refuses_passwords_of_the_wrong_length(api, password):
    """POST /api/user/register: a password outside 6..128 characters is 400, 1001."""
    refused(register(api, {"name": unique_name(), "password": password}), INVALID_REQUEST)


@pytest.mark.parametrize(
    "password",
    [
        "p" * 73,
        "p" * 128,
        "密" * 40,  # 40 characters, 120 bytes of UTF-8
        "🔑" * 32,  # 32 characters, 128 bytes
        "\u0000" * 6,
        " " * 6,
    ],
    ids=["73-ascii", "128-ascii", "120-bytes-cjk", "128-bytes-emoji", "nul", "spaces"],
)
def test_long_and_odd_passwords_work_on_register_and_login(api, users, password):
    """POST /api/user/register and login: any 6..128-character password works, past bcrypt's
    72 bytes included, and only that exact password signs in."""
    account = users.register(password=password)

    succeed(login(api, account["name"], password), *SIGNED_IN_KEYS)
    if len(password.encode()) > 72:
        # Never truncated: the first 72 bytes alone, or with another tail, are wrong.
        prefix = password.encode()[:72].decode(errors="ignore")
        refused(login(api, account["name"], prefix), WRONG_PASSWORD)
        refused(login(api, account["name"], prefix + "tail!"), WRONG_PASSWORD)


def test_login_refuses_a_number_for_a_password(api, users):
    """POST /api/user/login: passwords are strings; document A's numeric ones are 400, 1001."""
    account = users.register(password="123456")

    response = api.post("/user/login", json={"name": account["name"], "password": 123456})

    refused(response, INVALID_REQUEST)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "abcdef"},
        {"name": "abcdef", "password": PASSWORD, "email": "a@b.co"},
        {"email": "a@b.co"},
        {"email": "a@b.co", "security_code": 123456},
        {"email": "a@b.co", "security_code": "12345"},
        {"name": "abcdef", "password": PASSWORD, "need_send": False},
    ],
    ids=["name-only", "both-forms", "email-only", "code-number", "code-5-digits", "need_send"],
)
def test_login_refuses_bodies_of_neither_form(api, body):
    """POST /api/user/login: a body that is exactly neither name+password nor
    email+security_code is 400, 1001."""
    refused(api.post("/user/login", json=body), INVALID_REQUEST)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\xff\xfe\xfd", "password": "correct horse"}',
        b'\xef\xbb\xbf{"name": "abcdef", "password": "correct horse"}',
        '{"name": "abcdef", "password": "correct horse"}'.encode("utf-16"),
        b'{"name": "abcdef", "password": "correct horse"',
        b'{"name": "abcdef", "password": \'correct horse\'}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
    ],
    ids=[
        "latin-bytes",
        "utf8-bom",
        "utf16",
        "truncated",
        "single-quotes",
        "deep-array",
        "deep-object",
    ],
)
def test_login_refuses_bodies_that_are_not_utf8_json(api, raw):
    """POST /api/user/login: a body that is not UTF-8 JSON is 400, 1002 (never a 5xx)."""
    refused(api.post("/user/login", content=raw, headers=JSON), MALFORMED_BODY)


@pytest.mark.parametrize("body", [b"", b"null"], ids=["empty", "null"])
def test_login_refuses_an_empty_body(api, body):
    """POST /api/user/login: the body is required; none (or JSON null) is 400, 1001."""
    refused(api.post("/user/login", content=body, headers=JSON), INVALID_REQUEST)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""],
    ids=["text", "form", "xml", "none"],
)
def test_json_operations_refuse_other_content_types(api, content_type):
    """POST /api/user/login: a body that is not declared JSON is 415, 1008."""
    response = api.post(
        "/user/login",
        content=b'{"name": "abcdef", "password": "correct horse"}',
        headers={"Content-Type": content_type},
    )

    refused(response, UNSUPPORTED_CONTENT_TYPE)


def test_register_accepts_a_chunked_body(api):
    """POST /api/user/register: a body sent with `Transfer-Encoding: chunked` (no
    Content-Length) is read like any other."""
    name = unique_name()

    def body():
        yield b'{"name": "' + name.encode() + b'", '
        yield b'"password": "' + PASSWORD.encode() + b'"}'

    response = api.post("/user/register", content=body(), headers=JSON)

    assert succeed(response, *SIGNED_IN_KEYS)["user"]["name"] == name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/user/nope"),
        ("GET", "/user/me/extra"),
        ("GET", "/groups/1/nope"),
        ("GET", "/../etc/passwd"),
        ("GET", "/%00"),
    ],
    ids=str,
)
def test_unknown_paths_are_404(api, method, path):
    """Any path the contract does not have is 404, 1005, in the envelope."""
    refused(api.request(method, path), NOT_FOUND)


def _wrong_methods():
    for path, methods in contract.paths().items():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method not in methods:
                yield pytest.param(path, method, methods, id=f"{method} /api{path}")


@pytest.mark.parametrize(("path", "method", "methods"), list(_wrong_methods()))
def test_wrong_methods_are_405_with_allow(api, users, path, method, methods):
    """Every path of the contract: a method it does not have is 405, 1006, and `Allow` lists
    the methods it has (HEAD with GET)."""
    url = re.sub(r"\{[a-z_]+\}", "1", path)  # every id of the path: {group_id}, {user_id} ...

    response = api.request(method, url, headers=bearer(users.token()))

    refused(response, METHOD_NOT_ALLOWED)
    allowed = {part.strip() for part in response.headers["Allow"].split(",")}
    assert allowed - {"HEAD", "OPTIONS"} == methods, response.headers["Allow"]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=abc", "cursor=x", "cursor=1234567890123456789"],
    ids=str,
)
def test_query_parameters_off_their_schema_are_400_in_one_line(api, users, query):
    """GET /api/groups/{group_id}/messages: a query parameter off its schema is 400, 1001, and
    `info` is one line (no schema dump)."""
    token = users.token()
    group = api.post("/groups", json={"name": "Params"}, headers=bearer(token)).json()["group"]

    response = api.get(f"/groups/{group['id']}/messages?{query}", headers=bearer(token))

    info = refused(response, INVALID_REQUEST)["info"]
    assert "\n" not in info and len(info) <= 300, info
