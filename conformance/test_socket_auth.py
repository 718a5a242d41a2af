"""The socket's authentication: both ways in, and every refusal's close code.

Spec: asyncapi.yaml, info "Authenticating" and "Close codes" (the channel's `x-close-codes`:
4400, 4401, 4403), the `bearerHeader` security scheme, the `auth` message, and
`session.ended`'s reason `token_exposed`.
"""

from __future__ import annotations

import time

import pytest

from conformance import socket_client, tokens
from conformance.socket_client import AUTH_TIMEOUT, Closed, open_socket
from conformance.target import PASSWORD


@pytest.fixture
def world():
    yield from socket_client.worlds()


def refused_with(socket, code: int, timeout: float = 5.0) -> None:
    """The server closes `socket` with `code` within `timeout` seconds, sending no event."""
    try:
        closed = socket.closed_with(timeout)
    finally:
        socket.close()
    assert closed == code, f"closed with {closed}, expected {code}"
    assert not [f for f in socket.received if f["type"] not in ("error",)], socket.received


def refused_by_header_and_by_frame(url: str, token: str, code: int) -> None:
    """`token` on the upgrade's header, then in a first `auth` frame: each closed with `code`."""
    refused_with(open_socket(url, token), code)
    socket = open_socket(url)
    socket.send({"type": "auth", "token": token})
    refused_with(socket, code)


def assert_authenticated(socket) -> None:
    """An authenticated socket answers `ping` with `pong`, and `sync` with `ready`."""
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}
    _, ready = socket.sync()
    assert ready["groups"] == {}


def test_socket_authenticates_by_the_authorization_header(world):
    """`Authorization: Bearer` on the upgrade: the socket is authenticated at once."""
    account = world.account()
    socket = world.socket(account, by="header")
    assert_authenticated(socket)


def test_socket_authenticates_by_a_first_auth_frame(world):
    """A first frame `{"type": "auth", "token": ...}` authenticates the socket (no answer)."""
    account = world.account()
    socket = world.socket(account, by="frame")
    assert_authenticated(socket)


def test_ws_url_of_login_reaches_the_users_socket(world):
    """POST /user/login answers `ws_url`; resolved against /api/ it is the user's socket."""
    account = world.account()
    login = world.api.post("/user/login", json={"name": account["name"], "password": PASSWORD})
    body = login.json()
    assert body["ws_url"] == f"ws/user/{account['user']['id']}/"
    socket = open_socket(world.server.ws_url(body["ws_url"]), body["token"])
    world.sockets.append(socket)
    assert_authenticated(socket)


@pytest.mark.parametrize("parameter", ["token", "access_token"])
def test_a_token_in_the_query_string_is_refused_with_4400(world, parameter):
    """A `token`/`access_token` query parameter: close 4400, even beside a valid header."""
    account = world.account()
    url = world.server.user_socket_url(account["user"]["id"], f"{parameter}={account['token']}")
    refused_with(open_socket(url), 4400)
    refused_with(open_socket(url, account["token"]), 4400)


@pytest.mark.parametrize("parameter", ["token", "access_token"])
def test_a_token_in_the_query_string_ends_its_session(world, parameter):
    """A token seen in a query is taken as leaked (URLs land in logs): its session ends, so
    its sockets get `session.ended` (token_exposed) and 4410 and the token answers 401
    (1004); the account's other sessions go on."""
    account = world.account()
    other_token = world.users.login(account["name"], account["password"])
    live = world.live_socket(account)
    url = world.server.user_socket_url(account["user"]["id"], f"{parameter}={account['token']}")
    refused_with(open_socket(url), 4400)

    assert live.recv() == {"type": "session.ended", "reason": "token_exposed"}
    assert live.closed_with() == 4410
    me = world.api.get("/user/me", headers=socket_client.bearer(account["token"]))
    assert me.status_code == 401 and me.json()["code"] == 1004, me.text
    other = world.api.get("/user/me", headers=socket_client.bearer(other_token))
    assert other.status_code == 200, other.text


def test_an_invalid_header_token_is_refused_with_4401(world):
    """A bearer token the server never issued: close 4401."""
    account = world.account()
    url = world.server.user_socket_url(account["user"]["id"])
    refused_with(open_socket(url, "not-a-token"), 4401)
    refused_with(open_socket(url, tokens.signed_with_another_key(account["token"])), 4401)


def test_an_invalid_frame_token_is_refused_with_4401(world):
    """An `auth` frame with a token the server never issued: close 4401."""
    account = world.account()
    socket = open_socket(world.server.user_socket_url(account["user"]["id"]))
    socket.send({"type": "auth", "token": tokens.signed_with_another_key(account["token"])})
    refused_with(socket, 4401)


def test_a_revoked_token_is_refused_with_4401(world):
    """A token whose session logged out: close 4401, by header and by frame."""
    account = world.account()
    assert world.api.post("/user/logout", headers=socket_client.bearer(account["token"])).is_success
    refused_by_header_and_by_frame(
        world.server.user_socket_url(account["user"]["id"]), account["token"], 4401
    )


def test_an_expired_token_is_refused_with_4401(world):
    """A token signed with the server's key ten years ago: close 4401."""
    keys = world.server.secret_keys
    if not keys:
        pytest.skip("IM_CONFORMANCE_SECRET_KEYS not set: cannot sign an expired token")
    account = world.account()
    expired = tokens.expired(account["token"], keys)
    refused_with(open_socket(world.server.user_socket_url(account["user"]["id"]), expired), 4401)


@pytest.mark.parametrize(
    "first",
    [
        {"type": "ping"},
        {"type": "sync", "since": {}},
        {"type": "auth"},
        {"type": "auth", "token": 7},
        "not json",
    ],
    ids=["ping", "sync", "auth-without-token", "auth-token-not-a-string", "not-json"],
)
def test_a_first_frame_other_than_a_valid_auth_is_refused_with_4401(world, first):
    """Without a header, a first frame that is not a well-formed `auth`: close 4401."""
    account = world.account()
    socket = open_socket(world.server.user_socket_url(account["user"]["id"]))
    socket.send(first)
    refused_with(socket, 4401)


def test_no_auth_frame_within_the_timeout_is_refused_with_4401(world):
    """No header and no frame: close 4401 once IM_WS_AUTH_TIMEOUT (5 s) has passed, not before."""
    account = world.account()
    socket = open_socket(world.server.user_socket_url(account["user"]["id"]))
    started = time.monotonic()
    try:
        code = socket.closed_with(AUTH_TIMEOUT + 5)
    finally:
        socket.close()
    waited = time.monotonic() - started
    assert code == 4401
    # Closing at once would refuse browsers that need a moment to send their `auth` frame.
    assert waited >= AUTH_TIMEOUT * 0.8, f"closed after {waited:.1f} s"


def test_a_token_of_another_user_is_refused_with_4403(world):
    """A valid token on another user's socket: close 4403, by header and by frame."""
    alice, bob = world.account(), world.account()
    refused_by_header_and_by_frame(
        world.server.user_socket_url(bob["user"]["id"]), alice["token"], 4403
    )


def test_a_socket_of_a_user_that_does_not_exist_is_refused(world):
    """A valid token on the socket of an id nobody has: 4403 (the token's user is not {id})."""
    alice = world.account()
    url = world.server.user_socket_url(9007199254740991)
    refused_with(open_socket(url, alice["token"]), 4403)


def test_auth_on_an_authenticated_socket_is_an_error_frame_6003(world):
    """`auth` once authenticated: error 6003, and the socket stays open."""
    account = world.account()
    for by in ("header", "frame"):
        socket = world.socket(account, by=by)
        socket.send({"type": "auth", "token": account["token"]})
        error = socket.expect("error")
        assert error["code"] == 6003, error
        assert_authenticated(socket)


def test_a_refused_socket_is_not_subscribed(world):
    """A refused socket gets none of the user's events before it closes."""
    alice, bob = world.account(), world.account()
    group = world.group(alice)
    socket = open_socket(world.server.user_socket_url(alice["user"]["id"]), bob["token"])
    world.say(group, alice, "not for bob")
    with pytest.raises(Closed) as closed:
        while True:
            frame = socket.recv(timeout=5)
            assert frame["type"] != "message.created", frame
    assert closed.value.code == 4403
