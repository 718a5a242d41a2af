"""Assertions on the contract's envelope, with exact keys."""

from __future__ import annotations

import httpx

SUCCEED = {"code": 0, "info": "Succeed"}
FIELD_ERROR_KEYS = {"in", "field", "rule", "message"}


def _show(response: httpx.Response) -> str:
    return (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        + (response.text[:500])
    )


def json_body(response: httpx.Response) -> dict:
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", _show(response)
    body = response.json()
    assert isinstance(body, dict), _show(response)
    return body


def succeed(response: httpx.Response, *data_keys: str, status: int = 200) -> dict:
    """A success: `status`, and exactly `code: 0`, `info: Succeed` and `data_keys`."""
    assert response.status_code == status, _show(response)
    body = json_body(response)
    assert set(body) == {"code", "info", *data_keys}, _show(response)
    assert body["code"] == 0 and body["info"] == "Succeed", _show(response)
    return body


def error(
    response: httpx.Response, status: int, code: int, info: str | None = None, *extra_keys: str
) -> dict:
    """An error: `status` and exactly `{code, info}` (plus `extra_keys`), `code` as given;
    the `request_id` the contract allows beside them, when there, is the `X-Request-ID`
    the response answers, and the `errors` list it allows with 1001 holds field errors."""
    assert response.status_code == status, _show(response)
    body = json_body(response)
    allowed = {"request_id", "errors"} if code == 1001 else {"request_id"}
    assert set(body) - allowed == {"code", "info", *extra_keys}, _show(response)
    for entry in body.get("errors", []):
        assert set(entry) == FIELD_ERROR_KEYS, _show(response)
    if "request_id" in body and "x-request-id" in response.headers:
        assert body["request_id"] == response.headers["x-request-id"], _show(response)
    assert body["code"] == code, _show(response)
    assert isinstance(body["info"], str) and body["info"], _show(response)
    if info is not None:
        assert body["info"] == info, _show(response)
    return body


# The error table of the contract (components.schemas.ErrorCode): code, status and, where the
# table gives it in full, the exact `info`.
INVALID_REQUEST = (400, 1001, None)
MALFORMED_BODY = (400, 1002, None)
MISSING_TOKEN = (401, 1003, "Missing token")
INVALID_TOKEN = (401, 1004, "Invalid or expired token")
NOT_FOUND = (404, 1005, "Not found")
METHOD_NOT_ALLOWED = (405, 1006, "Method not allowed")
TOO_LARGE = (413, 1007, None)
UNSUPPORTED_CONTENT_TYPE = (415, 1008, None)
USERNAME_DUPLICATE = (409, 2001, "Username duplicate")
USERNAME_NOT_FOUND = (400, 2003, "Username not found")
WRONG_PASSWORD = (400, 2004, "Wrong Password")


def refused(response: httpx.Response, kind: tuple[int, int, str | None]) -> dict:
    """An error of one row of the table: `refused(response, INVALID_TOKEN)`."""
    status, code, info = kind
    return error(response, status, code, info)
