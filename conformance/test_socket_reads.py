"""Read state on the socket: `ready` gives every conversation's position and counts, and a
position marked on one device reaches the member's other devices and, as a receipt, the
other members.

Spec: asyncapi.yaml, info "Read state", the `read` frame and `ready.reads`; openapi.yaml's
markRead. Every frame received is checked against asyncapi.yaml.
"""

from __future__ import annotations

import pytest

from conformance import socket_client
from conformance.socket_client import bearer


@pytest.fixture
def world():
    yield from socket_client.worlds()


def mark(world, who: dict, group_id: int, seq: int) -> dict:
    answer = world.api.put(
        f"/groups/{group_id}/read", json={"seq": seq}, headers=bearer(who["token"])
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["read"]


def test_ready_gives_each_conversations_read_state(world):
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    quiet = world.group(alice)
    for n in range(3):
        world.say(group, bob, f"@{alice['name']} {n}" if n == 0 else f"m{n}")
    mark(world, alice, group, 1)
    _, ready = world.socket(alice).sync()
    assert ready["reads"] == {
        str(group): {"read_seq": 1, "unread_count": 2, "mention_count": 0},
        str(quiet): {"read_seq": 0, "unread_count": 0, "mention_count": 0},
    }
    _, theirs = world.socket(bob).sync()
    assert theirs["reads"][str(group)] == {"read_seq": 0, "unread_count": 0, "mention_count": 0}


def test_a_position_reaches_the_readers_other_devices_and_the_other_members(world):
    """alice reads on one device: her other socket gets `read` with her counts (badges
    agree), bob's gets the receipt without counts, an outsider nothing."""
    alice, bob, carol = world.account(), world.account(), world.account()
    group = world.group(alice, bob)
    world.say(group, bob, f"hi @{alice['name']}")
    world.say(group, bob, "there?")
    other_device = world.live_socket(alice)
    bobs, outsider = world.live_socket(bob), world.live_socket(carol)

    mark(world, alice, group, 1)

    assert other_device.expect("read") == {
        "type": "read",
        "group_id": group,
        "user_id": alice["user"]["id"],
        "seq": 1,
        "unread_count": 1,
        "mention_count": 0,
    }
    assert bobs.expect("read") == {
        "type": "read",
        "group_id": group,
        "user_id": alice["user"]["id"],
        "seq": 1,
    }
    outsider.nothing_for()
    mark(world, alice, group, 1)  # no move: nobody hears of it
    other_device.nothing_for(0.5)
    bobs.nothing_for(0.2)
