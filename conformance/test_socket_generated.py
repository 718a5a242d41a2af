"""Generated client frames thrown at the socket: valid ones get their documented answer, invalid
ones an `error` frame or a documented close code, and the server stays up.

Spec: asyncapi.yaml's client-to-server payloads (`auth`, `sync`, `ping`: the `receive`
operations), the `error` message and `x-close-codes`. Frames are generated from those schemas
with hypothesis-jsonschema; invalid ones are valid ones mutated (a required field dropped, a
field of another JSON type, a field the frame does not have, another `type`, not an object,
not JSON) and kept only when the schemas refuse them. IM_CONFORMANCE_EXAMPLES sets how many of each.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from conformance import socket_client
from conformance.settings import EXAMPLES
from conformance.socket_client import Closed, contract, open_socket

# The server allows 20 frames a second per socket (burst 40): stay well under it, or the
# answer to a frame would be 4429 rather than the one under test.
PACE = 1 / 12

CLIENT_FRAMES = contract().client_frames


def from_payload(schema: dict) -> st.SearchStrategy:
    """Values of a payload schema: hypothesis-jsonschema's `from_schema` for every value that
    is not an object; objects are put together here from their properties.

    hypothesis-jsonschema 0.23's own object strategy uses a Hypothesis internal
    (`many.more()`) that Hypothesis 6.1xx no longer has, and fails on every object schema.
    """
    if schema.get("type") != "object":
        return from_schema(schema)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    named = st.fixed_dictionaries(
        {key: from_payload(value) for key, value in properties.items() if key in required},
        optional={
            key: from_payload(value) for key, value in properties.items() if key not in required
        },
    )
    extra = schema.get("additionalProperties", True)
    if not isinstance(extra, dict):
        return named
    keys = from_schema({"type": "string", **schema.get("propertyNames", {})})
    others = st.dictionaries(keys.filter(lambda key: key not in properties), from_payload(extra))
    return st.tuples(named, others).map(lambda pair: {**pair[1], **pair[0]})


valid_frames = st.one_of([from_payload(frame.schema) for frame in CLIENT_FRAMES.values()])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    # Integral floats (1.0) are integers to JSON Schema and to most servers alike.
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def is_valid(frame) -> bool:
    """Whether some client frame of the contract accepts `frame`."""
    if not isinstance(frame, dict):
        return False
    kind = frame.get("type")
    return isinstance(kind, str) and kind in CLIENT_FRAMES and not CLIENT_FRAMES[kind].errors(frame)


@st.composite
def invalid_texts(draw) -> str:
    """The text of a frame the contract refuses, made by mutating a valid one."""
    frame = draw(valid_frames)
    how = draw(st.sampled_from(["drop", "retype", "extra", "type", "not-object", "not-json"]))
    if how == "extra":
        frame[draw(st.text(max_size=10).filter(lambda key: key not in frame))] = draw(json_values)
    elif how == "drop":
        frame.pop(draw(st.sampled_from(sorted(frame))))
    elif how == "retype":
        frame[draw(st.sampled_from(sorted(frame)))] = draw(json_values)
    elif how == "type":
        frame["type"] = draw(st.text(max_size=20) | json_values)
    elif how == "not-object":
        frame = draw(json_values.filter(lambda value: not isinstance(value, dict)))
    else:
        text = draw(st.text(min_size=1, max_size=40))
        try:
            json.loads(text)
        except ValueError:
            return text
        assume(False)
    assume(not is_valid(frame))
    return json.dumps(frame)


class Line:
    """An authenticated, synced socket of one fresh user without groups, reopened if closed."""

    def __init__(self, world):
        self.world = world
        self.account = world.account()
        self.socket = None
        self.last_sent = 0.0

    def open(self):
        if self.socket is None:
            self.socket = self.world.live_socket(self.account)
        return self.socket

    def exchange(self, text: str) -> dict:
        """Sends `text`; the frame it is answered with (Closed if the server closed)."""
        socket = self.open()
        time.sleep(max(0.0, self.last_sent + PACE - time.monotonic()))
        self.last_sent = time.monotonic()
        socket.send(text)
        try:
            return socket.recv(timeout=10)
        except Closed:
            self.socket = None
            raise


@pytest.fixture
def world():
    yield from socket_client.worlds()


def server_is_up(world) -> None:
    assert world.api.get("/health").status_code == 200
    socket = world.live_socket(world.account())
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)


def test_generated_valid_frames_get_their_documented_answer(world):
    """ping -> pong; sync -> ready (no conversations: nothing replayed); auth -> error 6003."""
    line = Line(world)

    @SETTINGS
    @given(frame=valid_frames)
    def check(frame):
        answer = line.exchange(json.dumps(frame))
        if frame["type"] == "ping":
            assert answer == {"type": "pong"}
        elif frame["type"] == "sync":
            # An account without conversations: every map of `ready` is empty; what a client
            # asked for (notices, group states) is there, and nothing it did not ask for.
            assert answer["type"] == "ready", answer
            assert (answer["groups"], answer["revs"], answer["reads"]) == ({}, {}, {}), answer
            assert ("notices" in answer) == ("notices" in frame), answer
            if "notices" in frame:
                assert answer["notices"] == 0 and answer["notices_complete"] is True, answer
            assert answer.get("states") == ({} if "states" in frame else None), answer
        else:
            assert answer["type"] == "error" and answer["code"] == 6003, answer

    check()
    server_is_up(world)


def test_generated_invalid_frames_get_an_error_frame_or_a_documented_close(world):
    """Each refused frame: `error` (6001, 6002 or 6003) with the socket open, or a close whose
    code asyncapi.yaml lists; never silence, never another frame."""
    line = Line(world)
    documented = contract().close_codes

    @SETTINGS
    @given(text=invalid_texts())
    def check(text):
        try:
            answer = line.exchange(text)
        except Closed as closed:
            assert closed.code in documented, f"closed with {closed.code} after {text!r}"
            return
        assert answer["type"] == "error", f"{text!r} answered {answer!r}"
        assert answer["code"] in (6001, 6002, 6003), answer

    check()
    server_is_up(world)


def test_generated_first_frames_without_a_token_close_with_4401(world):
    """Before authentication, any generated frame but a valid `auth` of the user closes 4401
    (a generated token is never one the server issued)."""
    account = world.account()
    url = world.server.user_socket_url(account["user"]["id"])

    @settings(SETTINGS, max_examples=max(5, EXAMPLES // 3))
    @given(text=valid_frames.map(json.dumps) | invalid_texts())
    def check(text):
        socket = open_socket(url)
        try:
            socket.send(text)
            assert socket.closed_with(timeout=10) == 4401
            assert socket.received == [], socket.received
        finally:
            socket.close()

    check()
    server_is_up(world)
