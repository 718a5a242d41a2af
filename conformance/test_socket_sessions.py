"""Authorization stays live: ending a session closes its sockets within a second.

Spec: asyncapi.yaml, info "Authorization stays live", the `session.ended` message and close
code 4410; openapi.yaml's logout, change_password and cancel_account (which sessions each
ends).
"""

from __future__ import annotations

import time

import pytest

from conformance import socket_client
from conformance.socket_client import bearer
from conformance.target import PASSWORD

# How soon after the REST call answers the socket must be closed ("within a second").
WITHIN = 1.0


@pytest.fixture
def world():
    yield from socket_client.worlds()


def ended(socket, reason: str, since: float) -> None:
    """`socket` gets `session.ended` with `reason`, then close 4410, within WITHIN of `since`."""
    frame = socket.recv(timeout=WITHIN + 2)
    assert frame == {"type": "session.ended", "reason": reason}, frame
    code = socket.closed_with(timeout=WITHIN + 2)
    took = time.monotonic() - since
    assert code == 4410
    assert took <= WITHIN, f"closed {took:.2f} s after the session ended"


def test_logout_closes_the_sockets_of_that_session_only(world):
    """POST /user/logout: its session's sockets get session.ended(logout) and 4410; others stay."""
    account = world.account()
    other_token = world.users.login(account["name"])
    by_header = world.live_socket(account)
    by_frame = world.socket(account, by="frame")
    by_frame.sync()
    other = world.live_socket({**account, "token": other_token})

    response = world.api.post("/user/logout", headers=bearer(account["token"]))
    assert response.status_code == 200, response.text
    now = time.monotonic()
    ended(by_header, "logout", now)
    ended(by_frame, "logout", now)
    other.send({"type": "ping"})
    assert other.recv() == {"type": "pong"}


def test_change_password_closes_the_sockets_of_the_sessions_it_ends(world):
    """POST /user/change_password: the other sessions' sockets get password_changed and 4410."""
    account = world.account()
    other_token = world.users.login(account["name"])
    other = world.live_socket({**account, "token": other_token})

    response = world.api.post(
        "/user/change_password",
        json={"old_password": PASSWORD, "new_password": "another password"},
        headers=bearer(account["token"]),
    )
    assert response.status_code == 200, response.text
    ended(other, "password_changed", time.monotonic())
    fresh = world.live_socket({**account, "token": response.json()["token"]})
    fresh.send({"type": "ping"})
    assert fresh.recv() == {"type": "pong"}


def test_cancel_account_closes_every_socket_of_the_account(world):
    """POST /user/cancel_account: every session's sockets get account_cancelled and 4410."""
    account = world.account()
    other_token = world.users.login(account["name"])
    sockets = [world.live_socket(account), world.live_socket({**account, "token": other_token})]

    response = world.api.post(
        "/user/cancel_account", json={"password": PASSWORD}, headers=bearer(account["token"])
    )
    assert response.status_code == 200, response.text
    now = time.monotonic()
    for socket in sockets:
        ended(socket, "account_cancelled", now)


def test_a_socket_waiting_for_sync_is_closed_too(world):
    """A socket that has not sent `sync` yet is closed with 4410 at logout, within a second.

    Live events wait for `sync`, so whether `session.ended` comes first is not fixed here;
    if it comes, it says `logout`.
    """
    account = world.account()
    socket = world.socket(account)
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}
    response = world.api.post("/user/logout", headers=bearer(account["token"]))
    assert response.status_code == 200, response.text
    now = time.monotonic()
    code = socket.closed_with(timeout=WITHIN + 2)
    took = time.monotonic() - now
    assert code == 4410
    assert took <= WITHIN, f"closed {took:.2f} s after the session ended"
    assert socket.received[1:] in ([], [{"type": "session.ended", "reason": "logout"}])
