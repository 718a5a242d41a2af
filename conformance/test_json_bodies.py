"""What a JSON request body is: UTF-8 text, each key once, numbers of sane length, under one
Content-Type header. Anything else is refused before a handler sees it, so the object a
handler acts on is the one the contract's schema accepted.

Spec: info "Conventions" (JSON bodies), components.responses.UnsupportedMediaType, and the
1001 / 1002 / 1008 rows of components.schemas.ErrorCode. RFC 8259 §8.1 (JSON exchanged
between systems is UTF-8) and §4 (names within an object should be unique).
"""

from __future__ import annotations

import json

import pytest

from conformance import contract
from conformance.expect import (
    INVALID_REQUEST,
    MALFORMED_BODY,
    UNSUPPORTED_CONTENT_TYPE,
    refused,
    succeed,
)
from conformance.target import PASSWORD, bearer, unique_name

SIGNED_IN_KEYS = ("token", "expires_at", "ws_url", "user")


def post(
    api,
    path: str,
    raw: bytes,
    content_type: str | None = "application/json",
    method: str = "POST",
    **headers,
):
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.request(method, path, content=raw, headers=headers)


def register_body(name: str) -> bytes:
    return b'{"name": "%s", "password": "%s"}' % (name.encode(), PASSWORD.encode())


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json;charset=utf-7",
        "application/json; charset=utf-7",
        "application/json; charset=UTF-7",
        'application/json; charset="utf-7"',
        "application/json;charset=unicode_escape",
        "application/json; charset=latin-1",
        "application/json; charset=iso-8859-1",
        "application/json; charset=us-ascii",
        "application/json; charset=utf-16",
        "application/json; charset=punycode",
        "application/json; charset=no-such-charset",
        "application/json; charset=",
        "application/json; charset=utf-8; charset=utf-7",
    ],
    ids=str,
)
def test_register_refuses_json_declared_in_another_charset(api, content_type):
    """POST /api/user/register: a JSON body declared in any charset but UTF-8 is 415, 1008,
    whatever the bytes (here plain ASCII, valid in most of them)."""
    response = post(api, "/user/register", register_body(unique_name()), content_type)

    refused(response, UNSUPPORTED_CONTENT_TYPE)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "APPLICATION/JSON; Charset=Utf-8",
    ],
    ids=str,
)
def test_register_accepts_json_declared_utf8_or_undeclared(api, content_type):
    """POST /api/user/register: JSON without a charset, or declared UTF-8 in any spelling
    RFC 9110 allows (case, quotes), is read as UTF-8."""
    name = unique_name()

    response = post(api, "/user/register", register_body(name), content_type)

    assert succeed(response, *SIGNED_IN_KEYS)["user"]["name"] == name


def test_register_with_a_body_two_decoders_read_differently_creates_nothing(api):
    """POST /api/user/register: a body that reads as one object in UTF-7 and as another in
    UTF-8 (the name '<i>', off the pattern, hidden from a UTF-7 reader) is 415, 1008: no
    account, no token."""
    hidden = b"+ACIAOgAi-"  # UTF-7 for '":"'
    comma = b"+ACIALAAi-"  # UTF-7 for '","'
    raw = b'{"password": "%s", "name": "<i>", "name%sbob%spassword": "%s"}' % (
        PASSWORD.encode(),
        hidden,
        comma,
        PASSWORD.encode(),
    )

    response = post(api, "/user/register", raw, "application/json;charset=utf-7")

    refused(response, UNSUPPORTED_CONTENT_TYPE)
    assert "token" not in response.json()


def _json_operations():
    for operation in contract.operations():
        if operation.json_example is not None:
            yield pytest.param(operation, id=str(operation))


@pytest.mark.parametrize("operation", list(_json_operations()))
def test_every_json_operation_refuses_another_charset(api, users, operation):
    """Every operation with a JSON body: its own example, declared UTF-7, is 415, 1008."""
    raw = json.dumps(operation.json_example).encode()
    headers = bearer(users.token()) if operation.security else {}

    response = post(
        api, operation.url, raw, "application/json;charset=utf-7", operation.method, **headers
    )

    refused(response, UNSUPPORTED_CONTENT_TYPE)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "abc", "name": "%s", "password": "%s"}',
        b'{"name": "%s", "password": "x", "password": "%s"}',
        b'{"name": "%s", "password": "%s", "name": "%s"}',
    ],
    ids=["name-twice", "password-twice", "same-value-twice"],
)
def test_register_refuses_a_key_given_twice(api, raw):
    """POST /api/user/register: an object naming one key twice is 400, 1002: which of the
    two values counts is not for a reader to guess."""
    name = unique_name()
    values = (name.encode(), PASSWORD.encode(), name.encode())[: raw.count(b"%s")]

    response = post(api, "/user/register", raw % values)

    refused(response, MALFORMED_BODY)


@pytest.mark.parametrize(
    "number",
    [
        b"1" * 5000,
        b"-" + b"9" * 5000,
        b"1" * 5000 + b".5",
        b"0." + b"1" * 5000,
        b"1e999999",
        b"NaN",
        b"Infinity",
        b"-Infinity",
    ],
    ids=[
        "int-5000",
        "negative-5000",
        "float-5000",
        "fraction-5000",
        "overflow",
        "nan",
        "inf",
        "-inf",
    ],
)
def test_login_refuses_numbers_json_cannot_carry(api, number):
    """POST /api/user/login: a number of thousands of digits, one past a double's range, or
    JavaScript's NaN and Infinity (not JSON) is 400, 1002, never a 5xx."""
    raw = b'{"name": ' + number + b', "password": "%s"}' % PASSWORD.encode()

    refused(post(api, "/user/login", raw), MALFORMED_BODY)


def test_register_refuses_a_body_without_content_type(api):
    """POST /api/user/register: a body with no Content-Type header at all is 415, 1008."""
    response = post(api, "/user/register", register_body(unique_name()), content_type=None)

    refused(response, UNSUPPORTED_CONTENT_TYPE)


@pytest.mark.parametrize(
    "content_types",
    [
        ["application/json", "application/json"],
        ["application/json", "text/plain"],
        ["application/json; charset=utf-8", "application/json; charset=utf-7"],
    ],
    ids=["same-twice", "json-then-text", "utf8-then-utf7"],
)
def test_register_refuses_two_content_type_headers(api, content_types):
    """POST /api/user/register: two Content-Type headers are 400, 1001: which one counts is
    not for a reader to guess."""
    headers = [("Content-Type", value) for value in content_types]

    response = api.post("/user/register", content=register_body(unique_name()), headers=headers)

    refused(response, INVALID_REQUEST)


def test_add_member_refuses_another_charset_on_the_generic_path(api, users):
    """POST /api/groups/{group_id}/members (an operation with path parameters): a body
    declared UTF-7 is 415, 1008, like on operations without any."""
    token = users.token()
    group = api.post("/groups", json={"name": "Charsets"}, headers=bearer(token)).json()["group"]
    member = users.register()["name"]
    raw = b'{"name": "%s"}' % member.encode()

    response = post(
        api,
        f"/groups/{group['id']}/members",
        raw,
        "application/json;charset=utf-7",
        **bearer(token),
    )

    refused(response, UNSUPPORTED_CONTENT_TYPE)


@pytest.mark.parametrize(
    "content_type", ["APPLICATION/JSON", "Application/Json; charset=utf-8"], ids=str
)
def test_register_validates_a_body_whatever_the_case_of_its_media_type(api, content_type):
    """POST /api/user/register: media types are case-insensitive, and so is validation: a
    name off the pattern under `APPLICATION/JSON` is 400, 1001, like under any spelling."""
    response = post(api, "/user/register", register_body("<b>x</b>"), content_type)

    refused(response, INVALID_REQUEST)


def test_upload_refuses_two_content_type_headers(api, users):
    """POST /api/groups/{group_id}/upload_file: two Content-Type headers are 400, 1001, on a
    multipart operation too."""
    token = users.token()
    group = api.post("/groups", json={"name": "Headers"}, headers=bearer(token)).json()["group"]
    boundary = "conformance-boundary"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    headers = [
        ("Content-Type", f"multipart/form-data; boundary={boundary}"),
        ("Content-Type", "multipart/form-data; boundary=other"),
        *bearer(token).items(),
    ]

    response = api.post(f"/groups/{group['id']}/upload_file", content=raw, headers=headers)

    refused(response, INVALID_REQUEST)
