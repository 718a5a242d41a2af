"""Limits: failed logins, and body sizes.

Spec: info "Decisions the sources left open" (at most 10 failed logins per account per
15 minutes, then 429 with `Retry-After`), POST /user/login's 429, components.responses
TooManyRequests and PayloadTooLarge, and the 1007 / 1009 rows of ErrorCode.
"""

from __future__ import annotations

import json

from conformance.expect import TOO_LARGE, WRONG_PASSWORD, error, refused, succeed
from conformance.target import PASSWORD, bearer

MAX_FAILURES = 10
WINDOW = 15 * 60


def login(api, name: str, password: str):
    return api.post("/user/login", json={"name": name, "password": password})


def test_login_after_ten_failures_is_429_with_retry_after(api, users):
    """POST /api/user/login: 10 wrong passwords are each 400 Wrong Password; the next attempt,
    even with the right password, is 429 with `Retry-After` and `retry_after` that agree."""
    account = users.register()
    for _ in range(MAX_FAILURES):
        refused(login(api, account["name"], "not the password"), WRONG_PASSWORD)

    response = login(api, account["name"], PASSWORD)

    body = error(response, 429, 1009, None, "retry_after")
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= WINDOW
    assert response.headers["Retry-After"] == str(body["retry_after"])
    # Still locked: a locked account does not reveal whether a password is right.
    error(login(api, account["name"], "not the password"), 429, 1009, None, "retry_after")


def test_failed_logins_of_one_account_do_not_lock_another(api, users):
    """POST /api/user/login: the failure limit is per account."""
    locked, other = users.register(), users.register()
    for _ in range(MAX_FAILURES + 1):
        login(api, locked["name"], "not the password")

    succeed(login(api, other["name"], PASSWORD), "token", "expires_at", "ws_url", "user")


def test_fewer_than_ten_failures_do_not_lock(api, users):
    """POST /api/user/login: 9 failures, then the right password signs in."""
    account = users.register()
    for _ in range(MAX_FAILURES - 1):
        refused(login(api, account["name"], "not the password"), WRONG_PASSWORD)

    succeed(login(api, account["name"], PASSWORD), "token", "expires_at", "ws_url", "user")


def test_a_json_body_over_the_limit_is_413(api):
    """POST /api/user/register: a 1 MiB JSON body is 413, 1007, with the limit in `info`."""
    body = json.dumps({"name": "abc", "password": "x" * (1 << 20)})

    response = api.post(
        "/user/register", content=body, headers={"Content-Type": "application/json"}
    )

    info = refused(response, TOO_LARGE)["info"]
    assert any(word.isdigit() for word in info.split()), info


def test_a_chunked_json_body_over_the_limit_is_413(api):
    """POST /api/user/register: an over-limit body without Content-Length is cut off, 413."""
    chunk = b"x" * 65536

    def body():
        yield b'{"name": "abc", "password": "'
        for _ in range(16):
            yield chunk
        yield b'"}'

    response = api.post(
        "/user/register", content=body(), headers={"Content-Type": "application/json"}
    )

    refused(response, TOO_LARGE)


def change_password(api, token: str, old: str):
    return api.post(
        "/user/change_password",
        json={"old_password": old, "new_password": "a brand new password"},
        headers=bearer(token),
    )


def cancel_account(api, token: str, password: str):
    return api.post("/user/cancel_account", json={"password": password}, headers=bearer(token))


def test_change_password_after_ten_wrong_passwords_is_429(api, users):
    """POST /api/user/change_password: a stolen token cannot try passwords without end: 10
    wrong old passwords are each 400 Wrong Password, the next attempt (even the right
    password) is 429 with `Retry-After`, and so is login: one count per account."""
    account = users.register()
    for _ in range(MAX_FAILURES):
        refused(change_password(api, account["token"], "not the password"), WRONG_PASSWORD)

    response = change_password(api, account["token"], PASSWORD)

    body = error(response, 429, 1009, None, "retry_after")
    assert response.headers["Retry-After"] == str(body["retry_after"])
    error(login(api, account["name"], PASSWORD), 429, 1009, None, "retry_after")


def test_cancel_account_after_ten_wrong_passwords_is_429(api, users):
    """POST /api/user/cancel_account: 10 wrong passwords, then even the right one is 429;
    the account is still there (its token still works)."""
    account = users.register()
    for _ in range(MAX_FAILURES):
        refused(cancel_account(api, account["token"], "not the password"), WRONG_PASSWORD)

    error(cancel_account(api, account["token"], PASSWORD), 429, 1009, None, "retry_after")
    succeed(api.get("/user/me", headers=bearer(account["token"])), "user")


def test_wrong_passwords_of_login_change_password_and_cancel_account_add_up(api, users):
    """Wrong passwords count per account whichever operation they came with: 4 at login,
    3 at change_password and 3 at cancel_account lock login."""
    account = users.register()
    for _ in range(4):
        refused(login(api, account["name"], "not the password"), WRONG_PASSWORD)
    for _ in range(3):
        refused(change_password(api, account["token"], "not the password"), WRONG_PASSWORD)
    for _ in range(3):
        refused(cancel_account(api, account["token"], "not the password"), WRONG_PASSWORD)

    error(login(api, account["name"], PASSWORD), 429, 1009, None, "retry_after")
