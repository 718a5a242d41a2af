"""Bad input on the socket: error frames that leave it open, and the closes that end it.

Spec: asyncapi.yaml, the `error` message (codes 6001, 6002 of openapi.yaml's ErrorCode), info
"Frames" and "Close codes" (1009, 4429, 4503); the server stays up for everyone else.
"""

from __future__ import annotations

import json
import threading

import pytest

from conformance import socket_client
from conformance.socket_client import FRAME_BURST, MAX_FRAME, QUEUE


@pytest.fixture
def world():
    yield from socket_client.worlds()


def still_open(socket) -> None:
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}


# Sent as written: the raw text of each frame.
BAD_FRAMES = {
    "not-json": ("{type: ping", 6001),
    "truncated-json": ('{"type": "ping"', 6001),
    "json-array": ('[{"type": "ping"}]', 6001),
    "json-string": ('"ping"', 6001),
    "json-number": ("7", 6001),
    "json-null": ("null", 6001),
    "no-type": ('{"since": {}}', 6001),
    "type-not-a-string": ('{"type": 7}', 6001),
    "sync-without-since": ('{"type": "sync"}', 6001),
    "since-not-an-object": ('{"type": "sync", "since": [1, 2]}', 6001),
    "since-seq-not-an-integer": ('{"type": "sync", "since": {"1": "3"}}', 6001),
    "since-seq-negative": ('{"type": "sync", "since": {"1": -1}}', 6001),
    "since-key-not-an-id": ('{"type": "sync", "since": {"abc": 1}}', 6001),
    "field-it-does-not-have": ('{"type": "ping", "since": {}}', 6001),
    "states-not-an-object": ('{"type": "sync", "since": {}, "states": [4]}', 6001),
    "states-version-not-an-integer": ('{"type": "sync", "since": {}, "states": {"1": 1.5}}', 6001),
    "states-key-not-an-id": ('{"type": "sync", "since": {}, "states": {"01": 1}}', 6001),
    # A key twice: which one counts is for no reader to guess (REST refuses such bodies).
    "type-twice": ('{"type": "sync", "type": "ping"}', 6001),
    "type-twice-same-value": ('{"type": "ping", "type": "ping"}', 6001),
    "since-key-twice": ('{"type": "sync", "since": {"1": 0, "1": 5}}', 6001),
    "unknown-type": ('{"type": "subscribe"}', 6002),
    "server-frame-type": ('{"type": "pong"}', 6002),
}


@pytest.mark.parametrize("text, code", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_a_bad_frame_gets_an_error_frame_and_the_socket_stays_open(world, text, code):
    """Malformed (6001) or unknown (6002) frames: an `error` frame, then the socket works on."""
    socket = world.live_socket(world.account())
    socket.send(text)
    error = socket.expect("error")
    assert error["code"] == code, error
    assert error["info"], error
    # Said for the client: no stack trace or exception name of the server's.
    assert "Traceback" not in error["info"] and "Error(" not in error["info"], error
    still_open(socket)


def test_a_binary_frame_gets_an_error_frame_or_closes_with_a_documented_code(world):
    """A binary frame is not a JSON text frame: `error` 6001 (socket open) or a documented close."""
    socket = world.live_socket(world.account())
    socket.send(b'{"type": "ping"}')
    try:
        frame = socket.recv()
    except socket_client.Closed as closed:
        assert closed.code in socket_client.contract().close_codes, closed.code
        return
    assert frame["type"] == "error" and frame["code"] == 6001, frame
    still_open(socket)


def test_a_frame_over_the_size_limit_closes_with_1009(world):
    """A frame larger than IM_WS_MAX_FRAME (65536 bytes): close 1009."""
    socket = world.live_socket(world.account())
    socket.send({"type": "ping", "padding": "x" * MAX_FRAME})
    assert socket.closed_with() == 1009


def test_a_frame_at_the_size_limit_is_read(world):
    """A frame just under IM_WS_MAX_FRAME is read (here: a `sync` naming many groups)."""
    socket = world.live_socket(world.account())
    since = {}
    group = 1
    while len(json.dumps({"type": "sync", "since": since})) < MAX_FRAME - 32:
        since[str(group)] = 0
        group += 1
    _, ready = socket.sync({int(g): 0 for g in since})
    assert ready["groups"] == {}


def test_a_flood_of_frames_closes_with_4429(world):
    """Far more than IM_WS_FRAME_RATE frames at once (burst 40): close 4429; others unharmed."""
    account = world.account()
    bystander = world.live_socket(world.account())
    socket = world.live_socket(account)
    for _ in range(FRAME_BURST * 5):
        try:
            socket.send({"type": "ping"})
        except Exception:
            break  # closed by the server mid-flood
    assert socket.closed_with() == 4429
    assert sum(f["type"] == "pong" for f in socket.received) <= FRAME_BURST * 2
    still_open(bystander)
    assert world.api.get("/health").status_code == 200


def test_frames_within_the_rate_are_all_answered(world):
    """Pings under the burst (30): every one answered, nothing closed."""
    socket = world.live_socket(world.account())
    for _ in range(30):
        socket.send({"type": "ping"})
    for _ in range(30):
        assert socket.recv() == {"type": "pong"}


def test_a_client_that_stops_reading_is_closed_with_4503(world):
    """A socket that reads nothing while messages pour in: closed with 4503 once its queue fills.

    The client shrinks its receive buffer and its library's queue so that the server feels it
    at once; then twice IM_WS_QUEUE (1000) big frames' worth of messages are posted (4000
    four-byte characters each, by several senders, to stay under the posting limits). When
    the client reads again it finds the frames that were in flight, then close 4503: the code
    that tells it to resume. The server still serves others.
    """
    poster_count = 8
    accounts = [world.account() for _ in range(poster_count)]
    slow_account = world.account()
    group = world.group(accounts[0], *accounts[1:], slow_account)
    slow = world.live_socket(slow_account, receive_buffer=4096, max_queue=1)
    text = "\U0001f600" * 4000
    per_poster = 2 * QUEUE // poster_count
    failures = []

    def post(sender):
        for _ in range(per_poster):
            response = world.post(group, sender, text)
            if response.status_code != 201:
                failures.append(f"{response.status_code}: {response.text[:200]}")
                return

    threads = [threading.Thread(target=post, args=(a,)) for a in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert world.api.get("/health").status_code == 200

    try:
        code = slow.closed_with(timeout=60)
    except AssertionError:
        got = sum(f["type"] == "message.created" for f in slow.received)
        raise AssertionError(
            f"{got} of {per_poster * poster_count} message frames, then neither a frame nor "
            "a close for 60 s: the client is never told to resume"
        ) from None
    assert code == 4503
    got = sum(f["type"] == "message.created" for f in slow.received)
    assert got < per_poster * poster_count, "every frame arrived: the queue never filled"
