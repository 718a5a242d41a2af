"""Resume: a client that drops and comes back with its positions misses nothing.

Spec: asyncapi.yaml, info "Resume: catching up without a gap", the `sync` and `ready`
messages and the `receiveSync` operation; `seq` in openapi.yaml's Message.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from conformance import socket_client

TOTAL = 100  # messages posted while the client is away or reconnecting
GROUPS = 3
POSTERS = 4


@pytest.fixture
def world():
    yield from socket_client.worlds()


class Positions:
    """The client's side of resume: the last `seq` it has of each group, and what it got.

    Every `message.created` frame on one socket must be the next `seq` of its group: that is
    order, no gap and no duplicate at once.
    """

    def __init__(self, groups):
        self.last = dict.fromkeys(groups, 0)
        self.messages: dict[int, dict] = {}  # id -> the Message received

    def take(self, frame: dict) -> None:
        assert frame["type"] == "message.created", frame
        message = frame["message"]
        group, seq = message["group_id"], message["seq"]
        assert seq == self.last[group] + 1, (
            f"group {group}: seq {seq} after {self.last[group]} (a gap, a duplicate or out of "
            "order)"
        )
        self.last[group] = seq
        self.messages[message["id"]] = message


def test_sync_replays_what_was_missed_in_seq_order_then_ready_then_live(world):
    """sync with positions: missed messages in seq order, `ready` with every group, then live."""
    alice, bob = world.account(), world.account()
    groups = [world.group(alice, bob) for _ in range(2)]
    quiet = world.group(alice)  # not listed in `since`: not replayed, but in `ready`
    sent = {g: [world.say(g, bob, f"{g}/{n}") for n in range(3)] for g in groups}
    world.say(quiet, alice, "not replayed")

    socket = world.socket(alice)
    replayed, ready = socket.sync({groups[0]: 1, groups[1]: 0})

    assert [f["message"] for f in replayed if f["message"]["group_id"] == groups[0]] == sent[
        groups[0]
    ][1:]
    assert [f["message"] for f in replayed if f["message"]["group_id"] == groups[1]] == sent[
        groups[1]
    ]
    assert len(replayed) == 5
    assert ready["groups"] == {str(groups[0]): 3, str(groups[1]): 3, str(quiet): 1}
    live = world.say(groups[0], alice, "live")
    assert socket.expect("message.created")["message"] == live


def test_sync_ignores_groups_the_user_is_not_in(world):
    """`since` naming another group (or none that exists): nothing of it, and `ready` omits it."""
    alice, bob = world.account(), world.account()
    theirs = world.group(bob)
    world.say(theirs, bob, "private")
    socket = world.socket(alice)
    replayed, ready = socket.sync({theirs: 0, 9007199254740991: 0})
    assert replayed == []
    assert ready["groups"] == {}


def test_a_second_sync_restarts_the_replay_from_its_positions(world):
    """`sync` again on the same socket replays again from the positions it gives."""
    alice = world.account()
    group = world.group(alice)
    sent = [world.say(group, alice, str(n)) for n in range(3)]
    socket = world.socket(alice)
    replayed, _ = socket.sync({group: 0})
    assert [f["message"] for f in replayed] == sent
    replayed, ready = socket.sync({group: 1})
    assert [f["message"] for f in replayed] == sent[1:]
    assert ready["groups"] == {str(group): 3}


def test_resume_across_drops_while_a_hundred_messages_are_posted_at_once(world):
    """100 messages posted at once in 3 groups while the client drops and resumes: none lost.

    The client keeps dropping its socket and reconnecting with `sync` from the positions it
    reached, while four posters write into three groups; every frame must be the next `seq`
    of its group, and at the end it holds every message the posters made, as they made them.
    """
    alice, bob = world.account(), world.account()
    groups = [world.group(alice, bob) for _ in range(GROUPS)]
    positions = Positions(groups)
    first = world.live_socket(alice)
    warm_up = [world.say(g, alice, "before") for g in groups]
    for _ in groups:
        positions.take(first.recv())
    first.close()

    made: list[dict] = []
    failures: list[str] = []
    numbers = itertools.count()
    lock = threading.Lock()
    reconnected = threading.Event()

    def poster(sender):
        while True:
            with lock:
                n = next(numbers)
            if n >= TOTAL:
                return
            if n >= TOTAL // 2:
                # The second half goes while the client is reconnecting and reading.
                reconnected.wait(socket_client.WAIT)
            response = world.post(groups[n % GROUPS], sender, f"message {n}")
            if response.status_code != 201:
                failures.append(f"{response.status_code}: {response.text}")
                return
            with lock:
                made.append(response.json()["message"])

    threads = [threading.Thread(target=poster, args=((alice, bob)[i % 2],)) for i in range(POSTERS)]
    for thread in threads:
        thread.start()

    while True:
        finished = not any(thread.is_alive() for thread in threads)
        socket = world.socket(alice)
        replayed, ready = socket.sync(dict(positions.last))
        reconnected.set()
        for frame in replayed:
            positions.take(frame)
        assert set(ready["groups"]) == {str(g) for g in groups}
        for g in groups:
            # Whatever `ready` counts was committed before it, so it was replayed or will
            # come live on this socket.
            assert ready["groups"][str(g)] >= positions.last[g]
        if finished:
            break
        # Read a little of the live stream, then drop the socket while posting goes on.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            try:
                positions.take(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
        socket.close()

    assert not failures, failures
    assert len(made) == TOTAL
    last = {g: max(m["seq"] for m in [*made, *warm_up] if m["group_id"] == g) for g in groups}
    # Everything committed; what is not in yet must come live on this last socket.
    while positions.last != last:
        positions.take(socket.recv())
    socket.nothing_for(0.5)
    for message in [*made, *warm_up]:
        assert positions.messages.get(message["id"]) == message
    assert sum(last.values()) == TOTAL + GROUPS  # seq has no gap: 1..n in every group
