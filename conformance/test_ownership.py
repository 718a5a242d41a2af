"""Identity comes from the token: no user can act for another.

Spec: info "Conventions" (identity comes from the bearer token, never from a field of the
body), the change_* request schemas (`additionalProperties: false`, no `id`), and the
mapping table (document A's `id` on change_* is dropped).
"""

from __future__ import annotations

import pytest

from conformance.expect import (
    INVALID_REQUEST,
    USERNAME_DUPLICATE,
    WRONG_PASSWORD,
    refused,
    succeed,
)
from conformance.target import PASSWORD, bearer, unique_name


def profile(api, token: str) -> dict:
    return succeed(api.get("/user/me", headers=bearer(token)), "user")["user"]


def test_change_name_renames_the_owner_of_the_token_only(api, users):
    """POST /api/user/change_name renames the token's user; no one else changes."""
    alice, bob = users.register(), users.register()
    new_name = unique_name("r")

    renamed = api.post(
        "/user/change_name", json={"new_name": new_name}, headers=bearer(alice["token"])
    )

    succeed(renamed)
    assert profile(api, alice["token"])["name"] == new_name
    assert profile(api, bob["token"]) == bob["user"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/user/change_name", {"new_name": "takeover_name"}),
        ("/user/change_password", {"old_password": PASSWORD, "new_password": "taken over!"}),
        ("/user/cancel_account", {"password": PASSWORD}),
        ("/user/change_email", {"new_email": "taken.over@example.com", "security_code": "123456"}),
    ],
    ids=["change_name", "change_password", "cancel_account", "change_email"],
)
@pytest.mark.parametrize("field", ["id", "user_id"])
def test_change_bodies_carry_no_user_id(api, users, path, body, field):
    """POST /api/user/change_*, cancel_account: a body naming a user (`id`) is 400, 1001,
    and neither that user nor the caller changes."""
    alice, bob = users.register(), users.register()

    response = api.post(
        path, json={**body, field: bob["user"]["id"]}, headers=bearer(alice["token"])
    )

    refused(response, INVALID_REQUEST)
    assert profile(api, alice["token"]) == alice["user"]
    assert profile(api, bob["token"]) == bob["user"]
    users.login(bob["name"])
    users.login(alice["name"])


def test_cancel_account_with_another_users_password_cancels_nobody(api, users):
    """POST /api/user/cancel_account checks the token owner's password, not anyone's."""
    alice, bob = users.register(), users.register(password="bob's own password")

    response = api.post(
        "/user/cancel_account",
        json={"password": "bob's own password"},
        headers=bearer(alice["token"]),
    )

    refused(response, WRONG_PASSWORD)
    assert profile(api, alice["token"]) == alice["user"]
    assert profile(api, bob["token"]) == bob["user"]


def test_change_password_with_another_users_password_changes_nothing(api, users):
    """POST /api/user/change_password checks `old_password` against the token owner's."""
    alice, bob = users.register(), users.register(password="bob's own password")

    response = api.post(
        "/user/change_password",
        json={"old_password": "bob's own password", "new_password": "a brand new password"},
        headers=bearer(alice["token"]),
    )

    refused(response, WRONG_PASSWORD)
    users.login(alice["name"], PASSWORD)
    users.login(bob["name"], "bob's own password")


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower", "upper"])
def test_change_name_to_another_users_name_is_a_conflict(api, users, case):
    """POST /api/user/change_name: a name another account has, in any case, is 409, 2001."""
    alice, bob = users.register(), users.register()

    response = api.post(
        "/user/change_name", json={"new_name": case(bob["name"])}, headers=bearer(alice["token"])
    )

    refused(response, USERNAME_DUPLICATE)
    assert profile(api, alice["token"]) == alice["user"]
