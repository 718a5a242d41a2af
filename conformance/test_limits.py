"""Limits: failed passwords, and body sizes.

Spec: info "Decisions the sources left open" (at most 10 failed passwords per account and
client address per 15 minutes, then 429 with `Retry-After` from that address; at most 20
per account per hour from all addresses, then 429 from any address the account never
signed in from; the limit of logins per name likewise spares those addresses), POST
/user/login's 429, components.responses TooManyRequests and
PayloadTooLarge, and the 1007 / 1009 rows of ErrorCode.

Every request of the suite comes from an address of its own unless it names one
(`target.client_address`): the tests here name the addresses the rule is about.
"""

from __future__ import annotations

import json

from conformance.expect import TOO_LARGE, WRONG_PASSWORD, error, refused, succeed
from conformance.target import PASSWORD, bearer, client_address, unique_name

MAX_FAILURES = 10
WINDOW = 15 * 60
MAX_ACCOUNT_FAILURES = 20
ACCOUNT_WINDOW = 3600
SIGNED_IN = ("token", "expires_at", "ws_url", "user")


def login(api, name: str, password: str, address: str | None = None):
    return api.post(
        "/user/login",
        json={"name": name, "password": password},
        headers={"X-Forwarded-For": address or client_address()},
    )


def test_login_after_ten_failures_from_one_address_is_429_with_retry_after(api, users):
    """POST /api/user/login: 10 wrong passwords from one address are each 400 Wrong Password;
    the next attempt from there, even with the right password, is 429 with `Retry-After` and
    `retry_after` that agree."""
    account = users.register()
    address = client_address()
    for _ in range(MAX_FAILURES):
        refused(login(api, account["name"], "not the password", address), WRONG_PASSWORD)

    response = login(api, account["name"], PASSWORD, address)

    body = error(response, 429, 1009, None, "retry_after")
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= WINDOW
    assert response.headers["Retry-After"] == str(body["retry_after"])
    # Still locked: a locked address does not learn whether a password is right.
    error(login(api, account["name"], "not the password", address), 429, 1009, None, "retry_after")


def test_a_stranger_cannot_lock_the_owner_out(api):
    """POST /api/user/login: a stranger's 10 wrong passwords lock the stranger's address only;
    the owner signs in with the right password from the address it registered from, and from
    an address never seen before."""
    home, name = client_address(), unique_name()
    registered = api.post(
        "/user/register",
        json={"name": name, "password": PASSWORD},
        headers={"X-Forwarded-For": home},
    )
    assert registered.status_code == 200, registered.text
    stranger = client_address()
    for _ in range(MAX_FAILURES):
        refused(login(api, name, "a guess", stranger), WRONG_PASSWORD)
    error(login(api, name, PASSWORD, stranger), 429, 1009, None, "retry_after")

    succeed(login(api, name, PASSWORD, home), *SIGNED_IN)
    succeed(login(api, name, PASSWORD), *SIGNED_IN)


def test_guessing_from_many_addresses_locks_out_only_addresses_never_signed_in_from(api, users):
    """POST /api/user/login: 30 wrong passwords from 10 addresses (3 each, under the limit per
    address): the first 20 are Wrong Password, then the account is locked (429, `retry_after`
    within the hour) for every address it never signed in from, the right password
    included; from the address it signed in from before, the right password signs in."""
    home = client_address()
    account = users.register()
    succeed(login(api, account["name"], PASSWORD, home), *SIGNED_IN)
    guessers = [client_address() for _ in range(10)]
    answers = [
        login(api, account["name"], "a guess", guesser) for guesser in guessers for _ in range(3)
    ]

    for answer in answers[:MAX_ACCOUNT_FAILURES]:
        refused(answer, WRONG_PASSWORD)
    for answer in answers[MAX_ACCOUNT_FAILURES:]:
        error(answer, 429, 1009, None, "retry_after")
    body = error(login(api, account["name"], PASSWORD), 429, 1009, None, "retry_after")
    assert 1 <= body["retry_after"] <= ACCOUNT_WINDOW
    error(login(api, account["name"], PASSWORD, guessers[0]), 429, 1009, None, "retry_after")
    succeed(login(api, account["name"], PASSWORD, home), *SIGNED_IN)


def test_failed_logins_of_one_account_do_not_lock_another(api, users):
    """POST /api/user/login: the failure limit is per account."""
    locked, other = users.register(), users.register()
    address = client_address()
    for _ in range(MAX_FAILURES + 1):
        login(api, locked["name"], "not the password", address)

    succeed(login(api, other["name"], PASSWORD, address), *SIGNED_IN)


def test_fewer_than_ten_failures_do_not_lock(api, users):
    """POST /api/user/login: 9 failures, then the right password signs in, from one address."""
    account = users.register()
    address = client_address()
    for _ in range(MAX_FAILURES - 1):
        refused(login(api, account["name"], "not the password", address), WRONG_PASSWORD)

    succeed(login(api, account["name"], PASSWORD, address), *SIGNED_IN)


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


def change_password(api, token: str, old: str, address: str):
    return api.post(
        "/user/change_password",
        json={"old_password": old, "new_password": "a brand new password"},
        headers={**bearer(token), "X-Forwarded-For": address},
    )


def cancel_account(api, token: str, password: str, address: str):
    return api.post(
        "/user/cancel_account",
        json={"password": password},
        headers={**bearer(token), "X-Forwarded-For": address},
    )


def test_change_password_after_ten_wrong_passwords_is_429(api, users):
    """POST /api/user/change_password: a stolen token cannot try passwords without end: 10
    wrong old passwords from one address are each 400 Wrong Password, the next attempt (even
    the right password) is 429 with `Retry-After`, and so is login from there: one count per
    account and address."""
    account = users.register()
    address = client_address()
    for _ in range(MAX_FAILURES):
        refused(change_password(api, account["token"], "not the password", address), WRONG_PASSWORD)

    response = change_password(api, account["token"], PASSWORD, address)

    body = error(response, 429, 1009, None, "retry_after")
    assert response.headers["Retry-After"] == str(body["retry_after"])
    error(login(api, account["name"], PASSWORD, address), 429, 1009, None, "retry_after")


def test_cancel_account_after_ten_wrong_passwords_is_429(api, users):
    """POST /api/user/cancel_account: 10 wrong passwords, then even the right one is 429;
    the account is still there (its token still works)."""
    account = users.register()
    address = client_address()
    for _ in range(MAX_FAILURES):
        refused(cancel_account(api, account["token"], "not the password", address), WRONG_PASSWORD)

    error(cancel_account(api, account["token"], PASSWORD, address), 429, 1009, None, "retry_after")
    succeed(api.get("/user/me", headers=bearer(account["token"])), "user")


def test_wrong_passwords_of_login_change_password_and_cancel_account_add_up(api, users):
    """Wrong passwords count per account and address whichever operation they came with: 4
    at login, 3 at change_password and 3 at cancel_account lock login from that address."""
    account = users.register()
    address = client_address()
    for _ in range(4):
        refused(login(api, account["name"], "not the password", address), WRONG_PASSWORD)
    for _ in range(3):
        refused(change_password(api, account["token"], "not the password", address), WRONG_PASSWORD)
    for _ in range(3):
        refused(cancel_account(api, account["token"], "not the password", address), WRONG_PASSWORD)

    error(login(api, account["name"], PASSWORD, address), 429, 1009, None, "retry_after")
