"""Abuse limits per client address, account and target (models.throttle), with low limits.

Each limit is a setting `limit_<name>` = COUNT/SECONDS: past COUNT requests in a window of
SECONDS, 429 with `Retry-After` (the seconds left in the window). Client addresses come from
X-Forwarded-For only when the peer is a trusted proxy (`trusted_proxies`); the test client's
peer address is "testclient".
"""

from __future__ import annotations

import dataclasses

import media_samples as samples
import pytest

from conftest import Auth, empty_tables
from im_api.app import create_app
from im_core.config import SettingsError

PASSWORD = "correct horse"


@pytest.fixture
def make_client(settings):
    """A client of an app built with `settings` changed as given."""
    clients = []

    def make(**changes):
        app = create_app(dataclasses.replace(settings, **changes))
        empty_tables()
        client = app.test_client()
        clients.append(client.__enter__())
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def register(client, name, address=None):
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(
        "/api/user/register", json={"name": name, "password": PASSWORD}, headers=headers
    )


def assert_too_many(response, retry_after: int | None = None) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert set(body) == {"code", "info", "retry_after", "request_id"} and body["code"] == 1009
    assert response.headers["Retry-After"] == str(body["retry_after"])
    if retry_after is not None:
        assert body["retry_after"] == retry_after
    return body["retry_after"]


def test_register_past_the_limit_is_429_until_the_window_ends(make_client, clock):
    client = make_client(limit_register_per_address="3/60")
    clock.advance(seconds=15)  # 08:00:15: the minute's window ends in 45 s
    for index in range(3):
        assert register(client, f"user{index}").status_code == 200

    assert_too_many(register(client, "user3"), retry_after=45)
    clock.advance(seconds=44)
    assert_too_many(register(client, "user3"), retry_after=1)
    clock.advance(seconds=1)
    assert register(client, "user3").status_code == 200


def test_failed_requests_count_too(make_client):
    client = make_client(limit_register_per_address="2/60")
    assert register(client, "alice").status_code == 200
    assert register(client, "alice").status_code == 409
    assert_too_many(register(client, "bob"))


def test_an_empty_limit_is_no_limit(make_client):
    client = make_client(limit_register_per_address="")
    for index in range(40):
        assert register(client, f"user{index}").status_code == 200


def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(make_client):
    client = make_client(limit_register_per_address="2/60")
    assert register(client, "user0", "203.0.113.1").status_code == 200
    assert register(client, "user1", "203.0.113.2").status_code == 200
    assert_too_many(register(client, "user2", "203.0.113.3"))


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_count(make_client):
    client = make_client(limit_register_per_address="2/60", trusted_proxies=["testclient"])
    for index in range(2):
        assert register(client, f"first{index}", "203.0.113.1").status_code == 200
    assert_too_many(register(client, "first2", "203.0.113.1"))
    # The proxy appends the address it saw; the nearest untrusted one is the client.
    assert register(client, "second0", "198.51.100.9, 203.0.113.2").status_code == 200
    assert_too_many(register(client, "first3", "198.51.100.9, 203.0.113.1"))


def test_login_is_limited_per_address_and_per_name_asked_for(make_client):
    client = make_client(
        limit_login_per_address="3/60", limit_login_per_target="2/60", trusted_proxies=["*"]
    )

    def login(name, address):
        return client.post(
            "/api/user/login",
            json={"name": name, "password": PASSWORD},
            headers={"X-Forwarded-For": address},
        )

    assert login("nobody", "203.0.113.1").status_code == 400
    assert login("NOBODY", "203.0.113.2").status_code == 400  # names ignore case
    assert_too_many(login("Nobody", "203.0.113.3"))
    assert login("somebody", "203.0.113.1").status_code == 400
    assert login("someone", "203.0.113.1").status_code == 400
    assert_too_many(login("anybody", "203.0.113.1"))  # the 4th from that address


def test_email_codes_are_limited_per_mailbox_whatever_the_tag_and_case(make_client):
    client = make_client(limit_email_code_per_mailbox="2/3600", trusted_proxies=["*"])

    def ask(email, address):
        return client.post(
            "/api/user/email_code",
            json={"email": email, "purpose": "login"},
            headers={"X-Forwarded-For": address},
        )

    assert ask("victim+1@example.com", "203.0.113.1").status_code == 200
    assert ask("Victim+2@Example.com", "203.0.113.2").status_code == 200
    assert_too_many(ask("victim@example.com", "203.0.113.3"))
    assert ask("other@example.com", "203.0.113.4").status_code == 200


def test_email_codes_are_limited_per_client_address(make_client):
    client = make_client(limit_email_code_per_address="2/3600")
    for index in range(2):
        body = {"email": f"user{index}@example.com", "purpose": "login"}
        assert client.post("/api/user/email_code", json=body).status_code == 200
    body = {"email": "user9@example.com", "purpose": "login"}
    assert_too_many(client.post("/api/user/email_code", json=body))


def test_password_changes_are_limited_per_account(make_client):
    client = make_client(limit_password_per_account="2/3600")
    token = Auth(client).register("alice")["token"]
    for _ in range(2):
        response = client.post(
            "/api/user/change_password",
            json={"old_password": PASSWORD, "new_password": PASSWORD},
            headers=Auth.header(token),
        )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
    assert_too_many(
        client.post(
            "/api/user/cancel_account", json={"password": PASSWORD}, headers=Auth.header(token)
        )
    )


def test_uploads_and_avatars_are_limited_per_account(make_client):
    client = make_client(limit_upload_per_account="3/600")
    alice = Auth(client).new_user("alice")
    group = client.post("/api/groups", json={"name": "G"}, headers=alice).json()["group"]
    for _ in range(2):
        files = {"file": ("a.txt", b"hello")}
        uploaded = client.post(f"/api/groups/{group['id']}/upload_file", files=files, headers=alice)
        assert uploaded.status_code == 201, uploaded.text
    avatar = {"avatar": ("a.png", samples.png())}
    assert client.post("/api/user/change_image", files=avatar, headers=alice).status_code == 200

    files = {"image": ("a.png", samples.png())}
    assert_too_many(
        client.post(f"/api/groups/{group['id']}/upload_image", files=files, headers=alice)
    )
    bob = Auth(client).new_user("bob")  # another account is not limited
    assert client.post("/api/user/change_image", files=avatar, headers=bob).status_code == 200


@pytest.mark.parametrize("value", ["30", "30/", "/60", "0/60", "30/0", "x/y", "-1/60"])
def test_a_limit_that_is_not_count_slash_seconds_refuses_to_start(settings, value):
    with pytest.raises(SettingsError) as refused:
        create_app(dataclasses.replace(settings, limit_login_per_target=value))
    assert "IM_LIMIT_LOGIN_PER_TARGET" in str(refused.value)
