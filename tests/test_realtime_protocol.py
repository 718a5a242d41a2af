"""The socket's frame rules on their own (im_api/realtime/protocol.py): no server needed."""

from __future__ import annotations

import contextlib
import threading

import pytest

from im_api.realtime import protocol
from im_api.realtime.protocol import Auth, BadFrame, Ping, Sync
from models import frames


def test_client_frames_parse_to_what_they_ask():
    assert protocol.parse('{"type": "auth", "token": "t"}') == Auth("t")
    assert protocol.parse('{"type": "ping"}') == Ping()
    assert protocol.parse('{"type": "sync", "since": {"3": 0, "12": 7}}') == Sync({3: 0, 12: 7})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, 6001),
        ("", 6001),
        ("nan", 6001),
        ('"ping"', 6001),
        ('{"type": null}', 6001),
        ('{"type": "sync", "since": {"01": 1}}', 6001),
        ('{"type": "sync", "since": {"1": 1e3}}', 6001),
        ('{"type": "sync", "since": {"1": 1}, "x": 0}', 6001),
        ('{"type": "ready"}', 6002),
        ('{"type": "PING"}', 6002),
    ],
)
def test_bad_frames_say_why(text, code):
    with pytest.raises(BadFrame) as raised:
        protocol.parse(text)
    assert raised.value.error.code == code
    frame = protocol.error_frame(raised.value)
    assert frame.startswith(f'{{"type":"error","code":{code},"info":')


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (b"", False),
        (b"tokens=1", False),
        (b"x=token", False),
        (b"token=abc", True),
        (b"a=1&access_token=abc", True),
        (b"TOKEN", True),
        (b"access%5Ftoken=abc", True),
    ],
)
def test_a_token_in_the_query_string_is_found_however_written(query, found):
    assert protocol.token_in_query(query) is found


def test_the_frame_rate_allows_a_burst_then_the_rate():
    now = [0.0]
    rate = protocol.FrameRate(20, 40, clock=lambda: now[0])
    assert all(rate.allow() for _ in range(40))
    assert not rate.allow()
    now[0] += 0.5  # ten more frames' worth
    assert sum(rate.allow() for _ in range(20)) == 10


def test_a_message_is_serialized_once_however_many_sockets_get_it(client, auth, monkeypatch):
    """The in-process app (the test client's sockets): three members' sockets, one post,
    one `message.created` frame rendered."""
    rendered = []
    render = frames.message_created

    def counting(message):
        rendered.append(message["id"])
        return render(message)

    monkeypatch.setattr(frames, "message_created", counting)
    users = [auth.register(name) for name in ("alice", "bob", "carol")]
    owner = auth.header(users[0]["token"])
    group_id = client.post("/api/groups", json={"name": "g"}, headers=owner).json()["group"]["id"]
    for user in users[1:]:
        added = client.post(
            f"/api/groups/{group_id}/members", json={"name": user["user"]["name"]}, headers=owner
        )
        assert added.status_code == 200, added.text
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(
                client.websocket_connect(
                    f"/api/ws/user/{user['user']['id']}/", headers=auth.header(user["token"])
                )
            )
            for user in users
        ]
        for socket in sockets:
            socket.send_json({"type": "sync", "since": {}})
            assert socket.receive_json()["type"] == "ready"
        posted = client.post(f"/api/groups/{group_id}/messages", json={"text": "hi"}, headers=owner)
        assert posted.status_code == 201, posted.text
        for socket in sockets:
            assert socket.receive_json() == {
                "type": "message.created",
                "message": posted.json()["message"],
            }
            socket.close()  # a client's close, before the test client's exit cancels the app
    assert rendered == [posted.json()["message"]["id"]]


def test_test_clients_of_one_app_may_overlap_and_follow_each_other(app):
    """Each in-process test client runs the app's lifespan on an event loop of its own; the
    realtime endpoint's startup and shutdown belong to the loop that started it, so clients
    used at once (the race tests) and one after the other all start and stop cleanly."""
    with app.test_client() as first:
        with app.test_client() as second:
            assert second.get("/api/health").status_code == 200
        assert first.get("/api/health").status_code == 200
    with app.test_client() as third:
        assert third.get("/api/health").status_code == 200
        with third.websocket_connect("/api/ws/user/1/") as socket:
            socket.send_json({"type": "auth", "token": "not a token"})
            assert socket.receive()["code"] == 4401


def test_a_replay_that_fails_on_the_server_closes_4503_for_the_client_to_resume(
    client, auth, monkeypatch
):
    """A database read failing during `sync` is not the client's doing: the socket is closed
    with 4503 (reconnect and resume), not dropped without a close frame."""
    from im_api.realtime import store

    def failing(user_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "ready_state", failing)
    user = auth.register("alice")
    received = []
    with client.websocket_connect(
        f"/api/ws/user/{user['user']['id']}/", headers=auth.header(user["token"])
    ) as socket:
        socket.send_json({"type": "sync", "since": {}})
        # On a thread, so that a socket left open without a close frame fails the test
        # instead of hanging it.
        reader = threading.Thread(target=lambda: received.append(socket.receive()), daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert received == [
            {"type": "websocket.close", "code": 4503, "reason": "Reconnect and resume"}
        ]
