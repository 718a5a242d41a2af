"""Changes on the socket: live `message.updated` frames, and a resume that converges.

Spec: asyncapi.yaml, info "Changes" (`revs` in `sync` and `ready`, `message.updated`,
`message.hidden`); openapi.yaml's editMessage, recallMessage and hideMessage. Every frame
received is checked against asyncapi.yaml.
"""

from __future__ import annotations

import random

import pytest

from conformance import socket_client
from conformance.socket_client import bearer


@pytest.fixture
def world():
    yield from socket_client.worlds()


def edit(world, who: dict, group_id: int, seq: int, text: str) -> dict:
    answer = world.api.patch(
        f"/groups/{group_id}/messages/{seq}", json={"text": text}, headers=bearer(who["token"])
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["message"]


def recall(world, who: dict, group_id: int, seq: int) -> dict:
    answer = world.api.delete(f"/groups/{group_id}/messages/{seq}", headers=bearer(who["token"]))
    assert answer.status_code == 200, answer.text
    return answer.json()["message"]


def listed(world, who: dict, group_id: int) -> dict[int, dict]:
    answer = world.api.get(
        f"/groups/{group_id}/messages",
        params={"after_seq": 0, "limit": 100},
        headers=bearer(who["token"]),
    )
    assert answer.status_code == 200, answer.text
    return {m["seq"]: m for m in answer.json()["messages"]}


def test_edits_and_recalls_reach_the_sockets_that_follow_changes(world):
    """Each change is a `message.updated` with the message's state, revs following on one
    another; a socket without `revs` gets none; a member who deleted the message for
    themselves does not get its changes."""
    alice, bob, carol = world.account(), world.account(), world.account()
    group = world.group(alice, bob, carol)
    sent = world.say(group, alice, "first draft")
    bobs = world.socket(bob)
    bobs.sync({group: 1}, revs={group: 1})
    old_client = world.live_socket(carol)
    carols = world.socket(carol)
    carols.sync({group: 1}, revs={group: 1})
    hidden = world.api.post(f"/groups/{group}/messages/1/hide", headers=bearer(carol["token"]))
    assert hidden.status_code == 200, hidden.text

    edited = edit(world, alice, group, sent["seq"], "second draft")
    gone = recall(world, alice, group, sent["seq"])

    assert bobs.expect("message.updated") == {"type": "message.updated", "message": edited}
    assert bobs.expect("message.updated") == {"type": "message.updated", "message": gone}
    assert (edited["rev"], gone["rev"]) == (2, 3)
    old_client.nothing_for()
    carols.nothing_for(0.2)


def test_a_client_away_during_a_storm_of_changes_converges_on_resume(world):
    """Messages are posted, edited and recalled while a member is away; its `sync` with
    `since` and `revs` gives, for every message, the state the message list gives, and
    `ready.revs` the last rev; then live changes go on from there."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    for n in range(5):
        world.say(group, alice, f"m{n}")
    seen = world.socket(bob)
    replayed, ready = seen.sync({group: 0}, revs={group: 0})
    known = {f["message"]["seq"]: f["message"] for f in replayed}
    rev = ready["revs"][str(group)]
    seen.close()

    chance = random.Random(7)
    last = 5
    for step in range(30):
        seq = chance.randint(1, last)
        action = chance.choice(["edit", "edit", "recall", "post"])
        if action == "post":
            last = world.say(group, bob, f"new {step}")["seq"]
        else:
            answer = (world.api.patch if action == "edit" else world.api.delete)(
                f"/groups/{group}/messages/{seq}",
                **({"json": {"text": f"edit {step}"}} if action == "edit" else {}),
                headers=bearer(alice["token"] if seq <= 5 else bob["token"]),
            )
            assert answer.status_code in (200, 403, 409), answer.text

    back = world.socket(bob)
    replayed, ready = back.sync({group: max(known)}, revs={group: rev})
    for frame in replayed:
        message = frame["message"]
        if message["seq"] not in known or message["rev"] > known[message["seq"]]["rev"]:
            known[message["seq"]] = message
    assert known == listed(world, bob, group)
    assert ready["revs"][str(group)] == max(m["rev"] for m in known.values())
    kinds = [f["type"] for f in replayed]
    created = [f["message"]["seq"] for f in replayed if f["type"] == "message.created"]
    assert created == sorted(created) and set(kinds) <= {"message.created", "message.updated"}

    live = edit(world, bob, group, max(known), "after the resume")
    assert back.expect("message.updated")["message"] == live
