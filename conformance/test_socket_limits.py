"""What one user may hold and ask of the socket: sockets at once, and replays.

Spec: asyncapi.yaml, info "Close codes" (4409) and "Resume"; the server's documented
defaults (`IM_WS_MAX_SOCKETS_PER_USER` 20).
"""

from __future__ import annotations

import pytest

from conformance import socket_client
from conformance.socket_client import SOCKETS_PER_USER


@pytest.fixture
def world():
    yield from socket_client.worlds()


def answers(socket) -> bool:
    socket.send({"type": "ping"})
    return socket.recv() == {"type": "pong"}


def test_a_socket_past_the_limit_per_user_is_closed_with_4409(world):
    """IM_WS_MAX_SOCKETS_PER_USER sockets of one user (default 20) are served; one more,
    by header or by `auth` frame, is closed with 4409; once one of them ends, a new one is
    served again."""
    account = world.account()
    held = [world.live_socket(account) for _ in range(SOCKETS_PER_USER)]

    assert world.socket(account).closed_with() == 4409
    assert world.socket(account, by="frame").closed_with() == 4409
    assert all(answers(socket) for socket in held)

    held.pop().close()
    again = None
    for _ in range(50):  # the server notices the close a moment later
        candidate = world.socket(account)
        try:
            if answers(candidate):
                again = candidate
                break
        except socket_client.Closed as closed:
            assert closed.code == 4409, closed.code
    assert again is not None, "no socket was served after one of the user's closed"


def test_a_sync_while_a_replay_is_under_way_gets_6004_and_one_replay(world):
    """One replay at a time per socket: a second `sync` sent while the first one's replay is
    under way gets `error` 6004 (the socket stays open), and the history is replayed once,
    then one `ready`."""
    alice = world.account()
    group = world.group(alice)
    posted = [world.say(group, alice, f"m{n}") for n in range(250)]
    socket = world.socket(alice)

    socket.send({"type": "sync", "since": {str(group): 0}})
    socket.send({"type": "sync", "since": {str(group): 0}})
    replayed, errors = [], []
    while True:
        frame = socket.recv()
        if frame["type"] == "ready":
            break
        (errors if frame["type"] == "error" else replayed).append(frame)

    assert [error["code"] for error in errors] == [6004], errors
    assert [frame["message"]["seq"] for frame in replayed] == [m["seq"] for m in posted]
    socket.nothing_for()
    assert answers(socket)
