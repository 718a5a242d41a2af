"""Sessions and tokens: what ends a session, and which tokens are refused.

Spec: info "Decisions the sources left open" (a token names a server-side session; logout
ends that session only, change_password ends the others and returns a fresh token,
cancel_account ends them all; tokens expire), components.responses.Unauthorized, and the
1003 / 1004 rows of components.schemas.ErrorCode.
"""

from __future__ import annotations

import pytest

from conformance import contract, media, tokens
from conformance.expect import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    USERNAME_NOT_FOUND,
    WRONG_PASSWORD,
    json_body,
    refused,
    succeed,
)
from conformance.target import PASSWORD, bearer

PROFILE_KEYS = {"id", "name", "email", "avatar_url", "created_at"}
SIGNED_IN_KEYS = ("token", "expires_at", "ws_url", "user")


def me(api, token: str):
    return api.get("/user/me", headers=bearer(token))


def test_the_account_chain_register_login_me_change_name_logout(api, users):
    """POST register, POST login, GET me, POST change_name, POST logout: the linked chain."""
    account = users.register()
    registered = account["token"]
    assert set(account["user"]) == PROFILE_KEYS
    assert account["ws_url"] == f"ws/user/{account['user']['id']}/"

    login = api.post("/user/login", json={"name": account["name"], "password": PASSWORD})
    signed_in = succeed(login, *SIGNED_IN_KEYS)
    assert signed_in["user"] == account["user"]
    token = signed_in["token"]
    assert token != registered

    profile = succeed(me(api, token), "user")["user"]
    assert profile == account["user"]

    new_name = "N" + account["name"][1:]
    renamed = api.post("/user/change_name", json={"new_name": new_name}, headers=bearer(token))
    succeed(renamed)
    assert succeed(me(api, registered), "user")["user"]["name"] == new_name

    succeed(api.post("/user/logout", headers=bearer(token)))
    refused(me(api, token), INVALID_TOKEN)
    assert succeed(me(api, registered), "user")["user"]["name"] == new_name


def test_logout_ends_the_session_of_its_token_only(api, users):
    """POST /api/user/logout: the token used stops working; the user's other sessions go on."""
    account = users.register()
    other = users.login(account["name"])

    succeed(api.post("/user/logout", headers=bearer(account["token"])))

    refused(me(api, account["token"]), INVALID_TOKEN)
    refused(api.post("/user/logout", headers=bearer(account["token"])), INVALID_TOKEN)
    succeed(me(api, other), "user")


def test_change_password_ends_every_other_session_and_returns_a_fresh_token(api, users):
    """POST /api/user/change_password: every earlier token ends; the one returned works."""
    account = users.register()
    other = users.login(account["name"])

    response = api.post(
        "/user/change_password",
        json={"old_password": PASSWORD, "new_password": "a brand new password"},
        headers=bearer(account["token"]),
    )
    fresh = succeed(response, "token", "expires_at")["token"]

    refused(me(api, account["token"]), INVALID_TOKEN)
    refused(me(api, other), INVALID_TOKEN)
    succeed(me(api, fresh), "user")
    old = api.post("/user/login", json={"name": account["name"], "password": PASSWORD})
    refused(old, WRONG_PASSWORD)
    users.login(account["name"], "a brand new password")


def test_change_password_with_a_wrong_old_password_changes_nothing(api, users):
    """POST /api/user/change_password: a wrong `old_password` is 400 Wrong Password, not 401."""
    account = users.register()

    response = api.post(
        "/user/change_password",
        json={"old_password": "not the password", "new_password": "a brand new password"},
        headers=bearer(account["token"]),
    )

    refused(response, WRONG_PASSWORD)
    succeed(me(api, account["token"]), "user")
    users.login(account["name"], PASSWORD)


def test_cancel_account_ends_every_session_and_frees_the_name(api, users):
    """POST /api/user/cancel_account: all sessions end, login fails, the name is free again."""
    account = users.register()
    other = users.login(account["name"])

    response = api.post(
        "/user/cancel_account", json={"password": PASSWORD}, headers=bearer(account["token"])
    )

    succeed(response)
    refused(me(api, account["token"]), INVALID_TOKEN)
    refused(me(api, other), INVALID_TOKEN)
    login = api.post("/user/login", json={"name": account["name"], "password": PASSWORD})
    refused(login, USERNAME_NOT_FOUND)
    again = users.register(account["name"])
    assert again["user"]["id"] != account["user"]["id"]


def test_cancel_account_with_a_wrong_password_keeps_the_account(api, users):
    """POST /api/user/cancel_account asks for the password again; a wrong one changes nothing."""
    account = users.register()

    response = api.post(
        "/user/cancel_account",
        json={"password": "not the password"},
        headers=bearer(account["token"]),
    )

    refused(response, WRONG_PASSWORD)
    succeed(me(api, account["token"]), "user")


TOKEN_OPERATIONS = [operation for operation in contract.operations() if operation.needs_token]


def _call(api, operation: contract.Operation, headers: dict):
    """The operation with a valid body (if it takes one), so that only the token can be wrong."""
    if operation.file_part is not None:
        files = {operation.file_part: ("pixel.png", media.PNG, "image/png")}
        return api.request(operation.method, operation.url, files=files, headers=headers)
    body = operation.json_example
    return api.request(operation.method, operation.url, json=body, headers=headers)


def _refused_or_not_built(response, operation: contract.Operation, kind) -> None:
    if response.status_code == 501 and operation.documents(501):
        pytest.skip(f"{operation} is not implemented by this server yet (501)")
    refused(response, kind)


@pytest.mark.parametrize("operation", TOKEN_OPERATIONS, ids=str)
def test_every_operation_that_needs_a_token_refuses_a_missing_one(api, operation):
    """Operations with bearerAuth security: no `Authorization: Bearer` header is 401, 1003."""
    _refused_or_not_built(_call(api, operation, {}), operation, MISSING_TOKEN)


@pytest.mark.parametrize("operation", TOKEN_OPERATIONS, ids=str)
def test_every_operation_that_needs_a_token_refuses_another_scheme(api, operation):
    """Operations with bearerAuth security: `Authorization: Basic ...` is no bearer token."""
    headers = {"Authorization": "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="}
    _refused_or_not_built(_call(api, operation, headers), operation, MISSING_TOKEN)


@pytest.mark.parametrize("operation", TOKEN_OPERATIONS, ids=str)
@pytest.mark.parametrize(
    "garbage",
    ["garbage", "a.b.c", "x" * 10_000, "Bearer", "ünïcödé"],
    ids=["word", "dots", "10000-chars", "doubled-scheme", "non-ascii"],
)
def test_every_operation_that_needs_a_token_refuses_a_garbage_one(api, operation, garbage):
    """Operations with bearerAuth security: a token that is not one of ours is 401, 1004."""
    headers = {"Authorization": f"Bearer {garbage}".encode()}
    _refused_or_not_built(_call(api, operation, headers), operation, INVALID_TOKEN)


@pytest.mark.parametrize("operation", TOKEN_OPERATIONS, ids=str)
def test_every_operation_that_needs_a_token_refuses_the_scheme_alone(api, operation):
    """Operations with bearerAuth security: `Authorization: Bearer` with no token is 401,
    as missing (1003) or as invalid (1004)."""
    response = _call(api, operation, {"Authorization": "Bearer"})
    if response.status_code == 501 and operation.documents(501):
        pytest.skip(f"{operation} is not implemented by this server yet (501)")
    assert response.status_code == 401, response.text
    body = json_body(response)
    assert set(body) - {"request_id"} == {"code", "info"} and body["code"] in (1003, 1004), body


@pytest.fixture(scope="module")
def ended_token(target) -> str:
    target.make_current()
    with target.client() as client:
        from conformance.target import Users

        token = Users(client).token()
        assert client.post("/user/logout", headers=bearer(token)).status_code == 200
    return token


@pytest.mark.parametrize("operation", TOKEN_OPERATIONS, ids=str)
def test_every_operation_that_needs_a_token_refuses_a_revoked_one(api, operation, ended_token):
    """Operations with bearerAuth security: the token of a session logout ended is 401, 1004."""
    _refused_or_not_built(_call(api, operation, bearer(ended_token)), operation, INVALID_TOKEN)


def test_me_refuses_a_token_signed_with_another_key(api, users):
    """GET /api/user/me: a well-formed token for a live session, signed with a key the server
    does not have, is 401, 1004."""
    token = users.token()

    refused(me(api, tokens.signed_with_another_key(token)), INVALID_TOKEN)
    succeed(me(api, token), "user")


def test_me_refuses_an_expired_token(api, users, target):
    """GET /api/user/me: a token older than its lifetime (7 days by default) is 401, 1004."""
    if not target.secret_keys:
        pytest.skip("IM_CONFORMANCE_SECRET_KEYS is not set: cannot date a token in the past")
    token = users.token()
    # Signed now with the same keys, the forgery must work: else the test proves nothing.
    succeed(me(api, tokens.expired(token, target.secret_keys, age=0)), "user")

    refused(me(api, tokens.expired(token, target.secret_keys)), INVALID_TOKEN)
