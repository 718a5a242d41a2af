"""Account operations by password: register, login, me, changes, logout, cancel."""

from __future__ import annotations

import pytest
from envelope import error_body

from im_core import security
from im_core.config import Settings

SUCCEED = {"code": 0, "info": "Succeed"}


def test_register_signs_the_new_account_in(client):
    response = client.post("/api/user/register", json={"name": "alice", "password": "secret1"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"code", "info", "token", "expires_at", "ws_url", "user"}
    assert body["ws_url"] == f"ws/user/{body['user']['id']}/"
    me = client.get("/api/user/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["user"]["name"] == "alice"


def test_register_refuses_a_name_taken_in_another_case(client, auth):
    auth.register("alice")
    response = client.post("/api/user/register", json={"name": "ALICE", "password": "secret1"})
    assert response.status_code == 409
    assert error_body(response) == {"code": 2001, "info": "Username duplicate"}


def test_register_keeps_the_name_as_written(client, auth):
    assert auth.register("Alice_01")["user"]["name"] == "Alice_01"


@pytest.mark.parametrize(
    "password",
    [
        "x" * 73,  # over bcrypt's 72 bytes: must neither be truncated nor crash
        "é" * 128,  # 256 bytes of UTF-8
        "\U0001f600" * 20,
        "pass\x00word",
    ],
)
def test_any_password_of_6_to_128_characters_works(client, auth, password):
    auth.register("alice", password)
    assert (
        client.post("/api/user/login", json={"name": "alice", "password": password}).status_code
        == 200
    )


def test_a_long_password_is_not_truncated(client, auth):
    auth.register("alice", "a" * 100)
    response = client.post("/api/user/login", json={"name": "alice", "password": "a" * 99 + "b"})
    assert error_body(response) == {"code": 2004, "info": "Wrong Password"}


def test_login_by_name_is_case_insensitive(client, auth):
    auth.register("alice")
    assert auth.login("ALICE")


def test_login_with_an_unknown_name_says_username_not_found(client):
    response = client.post("/api/user/login", json={"name": "nobody", "password": "secret1"})
    assert response.status_code == 400
    assert error_body(response) == {"code": 2003, "info": "Username not found"}


def test_login_with_a_wrong_password_is_400_not_401(client, auth):
    auth.register("alice")
    response = client.post("/api/user/login", json={"name": "alice", "password": "wrong one"})
    assert response.status_code == 400
    assert error_body(response) == {"code": 2004, "info": "Wrong Password"}


def test_login_after_ten_failures_answers_429_until_the_window_passes(
    client, auth, clock, settings
):
    auth.register("alice")
    wrong = {"name": "alice", "password": "wrong one"}
    for _ in range(settings.login_max_failures):
        assert client.post("/api/user/login", json=wrong).status_code == 400
    # Even the right password is refused while the account is locked.
    locked = client.post("/api/user/login", json={"name": "alice", "password": "correct horse"})
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(settings.login_failure_window)
    assert locked.json()["retry_after"] == settings.login_failure_window
    assert locked.json()["code"] == 1009

    clock.advance(seconds=settings.login_failure_window + 1)
    assert auth.login("alice")


def test_a_successful_login_clears_earlier_failures(client, auth, settings):
    auth.register("alice")
    for _ in range(settings.login_max_failures - 1):
        client.post("/api/user/login", json={"name": "alice", "password": "wrong one"})
    auth.login("alice")
    for _ in range(settings.login_max_failures - 1):
        client.post("/api/user/login", json={"name": "alice", "password": "wrong one"})
    assert auth.login("alice")


def test_failures_on_one_account_do_not_lock_another(client, auth, settings):
    auth.register("alice")
    auth.register("bob")
    for _ in range(settings.login_max_failures + 1):
        client.post("/api/user/login", json={"name": "alice", "password": "wrong one"})
    assert auth.login("bob")


def test_me_shows_the_profile_of_the_token_owner(client, auth):
    headers = auth.new_user("alice")
    auth.new_user("bob")
    user = client.get("/api/user/me", headers=headers).json()["user"]
    assert user == {
        "id": user["id"],
        "name": "alice",
        "email": None,
        "avatar_url": None,
        "created_at": "2026-11-20T08:00:00Z",
    }


def test_change_name_renames_only_the_token_owner(client, auth):
    alice = auth.new_user("alice")
    bob = auth.new_user("bob")
    response = client.post("/api/user/change_name", headers=alice, json={"new_name": "alicia"})
    assert response.json() == SUCCEED
    assert client.get("/api/user/me", headers=alice).json()["user"]["name"] == "alicia"
    assert client.get("/api/user/me", headers=bob).json()["user"]["name"] == "bob"
    assert auth.login("alicia")


def test_change_name_ignores_an_id_in_the_body(client, auth):
    """Document A's `id` field is not part of the contract: identity is the token's."""
    alice = auth.new_user("alice")
    response = client.post(
        "/api/user/change_name", headers=alice, json={"id": 2, "new_name": "x_x"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 1001


def test_change_name_to_a_taken_name_is_409(client, auth):
    alice = auth.new_user("alice")
    auth.new_user("bob")
    response = client.post("/api/user/change_name", headers=alice, json={"new_name": "Bob"})
    assert response.status_code == 409
    assert error_body(response) == {"code": 2001, "info": "Username duplicate"}


def test_change_name_to_another_case_of_ones_own_name_works(client, auth):
    alice = auth.new_user("alice")
    assert (
        client.post("/api/user/change_name", headers=alice, json={"new_name": "ALICE"}).json()
        == SUCCEED
    )


def test_change_password_ends_other_sessions_and_returns_a_fresh_token(client, auth):
    first = auth.new_user("alice")
    second = auth.header(auth.login("alice"))
    response = client.post(
        "/api/user/change_password",
        headers=first,
        json={"old_password": "correct horse", "new_password": "battery staple"},
    )
    assert response.status_code == 200
    fresh = auth.header(response.json()["token"])
    assert client.get("/api/user/me", headers=first).status_code == 401
    assert client.get("/api/user/me", headers=second).status_code == 401
    assert client.get("/api/user/me", headers=fresh).status_code == 200
    assert auth.login("alice", "battery staple")


def test_change_password_with_a_wrong_old_password_changes_nothing(client, auth):
    headers = auth.new_user("alice")
    response = client.post(
        "/api/user/change_password",
        headers=headers,
        json={"old_password": "not it at all", "new_password": "battery staple"},
    )
    assert error_body(response) == {"code": 2004, "info": "Wrong Password"}
    assert client.get("/api/user/me", headers=headers).status_code == 200
    assert auth.login("alice", "correct horse")


def test_logout_ends_only_that_session(client, auth):
    first = auth.new_user("alice")
    second = auth.header(auth.login("alice"))
    assert client.post("/api/user/logout", headers=first).json() == SUCCEED
    response = client.get("/api/user/me", headers=first)
    assert response.status_code == 401
    assert error_body(response) == {"code": 1004, "info": "Invalid or expired token"}
    assert client.get("/api/user/me", headers=second).status_code == 200


def test_cancel_account_needs_the_password(client, auth):
    headers = auth.new_user("alice")
    response = client.post(
        "/api/user/cancel_account", headers=headers, json={"password": "wrong one"}
    )
    assert error_body(response) == {"code": 2004, "info": "Wrong Password"}
    assert client.get("/api/user/me", headers=headers).status_code == 200


def test_cancel_account_ends_every_session_and_frees_the_name(client, auth):
    first = auth.new_user("alice")
    second = auth.header(auth.login("alice"))
    response = client.post(
        "/api/user/cancel_account", headers=first, json={"password": "correct horse"}
    )
    assert response.json() == SUCCEED
    assert client.get("/api/user/me", headers=first).status_code == 401
    assert client.get("/api/user/me", headers=second).status_code == 401
    assert error_body(
        client.post("/api/user/login", json={"name": "alice", "password": "correct horse"})
    ) == {"code": 2003, "info": "Username not found"}
    assert auth.register("alice", "another pass")


def test_a_token_expires_after_its_lifetime(client, auth, clock, settings):
    headers = auth.new_user("alice")
    clock.advance(seconds=settings.token_ttl + 1)
    assert client.get("/api/user/me", headers=headers).status_code == 401


def test_a_token_signed_with_another_key_is_refused(client, auth):
    auth.register("alice")
    other = Settings.from_env(environ={}, secret_keys=["some other key"])
    security.configure(other)
    forged = security.issue_token("any session")
    response = client.get("/api/user/me", headers=auth.header(forged))
    assert response.status_code == 401
    assert error_body(response) == {"code": 1004, "info": "Invalid or expired token"}


OLD_KEY, NEW_KEY = "old key " * 5, "new key " * 5


def test_tokens_signed_with_a_retired_key_still_verify_while_it_is_listed(
    app, tmp_path, database_url
):
    from im_api.app import create_app

    old = Settings.from_env(
        environ={}, instance_dir=tmp_path / "a", database_url=database_url, secret_keys=[OLD_KEY]
    )
    client = create_app(old).test_client()
    token = client.post(
        "/api/user/register", json={"name": "rotator", "password": "secret1"}
    ).json()["token"]

    rotated = Settings.from_env(
        environ={},
        instance_dir=tmp_path / "a",
        database_url=database_url,
        secret_keys=[NEW_KEY, OLD_KEY],
    )
    client = create_app(rotated).test_client()
    assert (
        client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    fresh = client.post("/api/user/login", json={"name": "rotator", "password": "secret1"}).json()[
        "token"
    ]

    retired = Settings.from_env(
        environ={}, instance_dir=tmp_path / "a", database_url=database_url, secret_keys=[NEW_KEY]
    )
    client = create_app(retired).test_client()
    assert (
        client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert (
        client.get("/api/user/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    )


@pytest.fixture
def bcrypt_checks(monkeypatch) -> list[int]:
    """The cost of every hash a password is checked against (bcrypt's `$2b$NN$` prefix)."""
    from models import users

    costs: list[int] = []
    real = users.check_password

    def recording(password, password_hash):
        costs.append(int(password_hash.split("$")[2]))
        return real(password, password_hash)

    monkeypatch.setattr(users, "check_password", recording)
    return costs


def test_login_with_an_unknown_name_costs_one_bcrypt_check_as_a_known_one(
    client, auth, settings, bcrypt_checks
):
    """The time login takes must not tell which names exist: an unknown name is checked
    against a hash of the configured cost, as a known name with a wrong password is."""
    settings.bcrypt_rounds = 5  # not the hash cost of any account here (tests register at 4)
    auth.register("alice")
    client.post("/api/user/login", json={"name": "nobody", "password": "secret1"})
    unknown = list(bcrypt_checks)
    bcrypt_checks.clear()
    client.post("/api/user/login", json={"name": "alice", "password": "wrong one"})

    assert unknown == [5]
    assert bcrypt_checks == [5]  # alice registered after the change: her hash is at 5 too
