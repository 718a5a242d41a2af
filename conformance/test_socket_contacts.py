"""Contacts and direct chats on the socket: notices live and on resume, direct messages.

Spec: asyncapi.yaml, info "Notices" (`contact.requested`, `contact.request.removed`,
`contact.added`, `contact.removed`, `block.added`, `block.removed`, `conversation.created`;
`notices` in `sync` and `ready`), info "Resume" for direct chats; openapi.yaml's contact
and direct chat operations. Every frame received is checked against asyncapi.yaml.
"""

from __future__ import annotations

import pytest

from conformance import socket_client
from conformance.socket_client import bearer


@pytest.fixture
def world():
    yield from socket_client.worlds()


def ask(world, who: dict, other: dict) -> dict:
    made = world.api.post(
        "/contacts/requests", json={"name": other["name"]}, headers=bearer(who["token"])
    )
    assert made.status_code == 201, made.text
    return made.json()["request"]


def accept(world, who: dict, request: dict) -> dict:
    accepted = world.api.post(
        f"/contacts/requests/{request['id']}/accept", headers=bearer(who["token"])
    )
    assert accepted.status_code == 200, accepted.text
    return accepted.json()["contact"]


def open_chat(world, who: dict, other: dict) -> dict:
    opened = world.api.put(f"/direct/{other['user']['id']}", headers=bearer(who["token"]))
    assert opened.status_code in (200, 201), opened.text
    return opened.json()["group"]


def contacts(world, one: dict, other: dict) -> None:
    accept(world, other, ask(world, one, other))


def test_contact_changes_reach_both_users_sockets_as_numbered_notices(world):
    """A request, its acceptance, a block and its lifting: each user's sockets that asked
    for notices get theirs, numbered 1, 2, 3 ... per user; a socket that did not ask gets
    none of them."""
    alice, bob = world.account(), world.account()
    alices = [world.live_socket(alice, notices=0) for _ in range(2)]
    bobs = world.live_socket(bob, notices=0)
    old_client = world.live_socket(bob)

    request = ask(world, alice, bob)
    for socket in (*alices, bobs):
        assert socket.expect("contact.requested") == {
            "type": "contact.requested",
            "notice": 1,
            "request": request,
        }
    contact = accept(world, bob, request)
    for socket in alices:
        added = socket.expect("contact.added")
        assert added["notice"] == 2 and added["request_id"] == request["id"]
        assert added["contact"]["user"]["id"] == bob["user"]["id"]
    added = bobs.expect("contact.added")
    assert (added["notice"], added["contact"]) == (2, contact)

    blocked = world.api.put(f"/blocks/{bob['user']['id']}", headers=bearer(alice["token"]))
    assert blocked.status_code == 201, blocked.text
    for socket in alices:
        assert socket.expect("contact.removed") == {
            "type": "contact.removed",
            "notice": 3,
            "user_id": bob["user"]["id"],
        }
        assert socket.expect("block.added")["notice"] == 4
    assert bobs.expect("contact.removed") == {
        "type": "contact.removed",
        "notice": 3,
        "user_id": alice["user"]["id"],
    }
    lifted = world.api.delete(f"/blocks/{bob['user']['id']}", headers=bearer(alice["token"]))
    assert lifted.status_code == 200, lifted.text
    for socket in alices:
        assert socket.expect("block.removed") == {
            "type": "block.removed",
            "notice": 5,
            "user_id": bob["user"]["id"],
        }
    bobs.nothing_for()
    old_client.nothing_for(0.2)


def test_a_new_direct_chat_and_its_messages_reach_both_members_live(world):
    """PUT /direct/{user_id}: both members' sockets get `conversation.created` (their own
    view of the chat), then its messages as `message.created`; a socket that asked for no
    notices gets the messages too."""
    alice, bob = world.account(), world.account()
    contacts(world, alice, bob)
    alices = world.live_socket(alice, notices=2)
    bobs = world.live_socket(bob, notices=2)
    old_client = world.live_socket(bob)

    chat = open_chat(world, alice, bob)
    created = alices.expect("conversation.created")
    assert created["notice"] == 3 and created["group"]["id"] == chat["id"]
    assert created["group"]["peer"]["id"] == bob["user"]["id"]
    theirs = bobs.expect("conversation.created")["group"]
    assert theirs["kind"] == "direct" and theirs["peer"]["id"] == alice["user"]["id"]

    message = world.say(chat["id"], alice, "hi, Bob")
    for socket in (alices, bobs, old_client):
        assert socket.expect("message.created") == {"type": "message.created", "message": message}


def test_a_socket_that_was_away_gets_the_notices_it_missed_in_order_then_ready(world):
    """sync with `notices` N replays every later notice in order before `ready`, whose
    `notices` is the newest number and `notices_complete` true; live ones follow."""
    alice, bob, carol = world.account(), world.account(), world.account()
    request = ask(world, alice, bob)
    ask(world, carol, alice)
    declined = world.api.post(
        f"/contacts/requests/{request['id']}/decline", headers=bearer(bob["token"])
    )
    assert declined.status_code == 200, declined.text

    socket = world.socket(alice)
    replayed, ready = socket.sync({}, notices=1)
    assert [(f["type"], f["notice"]) for f in replayed] == [
        ("contact.requested", 2),
        ("contact.request.removed", 3),
    ]
    assert replayed[1]["reason"] == "declined" and replayed[1]["request_id"] == request["id"]
    assert (ready["notices"], ready["notices_complete"]) == (3, True)

    ask(world, alice, bob)
    assert socket.expect("contact.requested")["notice"] == 4

    everything, ready = world.socket(alice).sync({}, notices=0)
    assert [f["notice"] for f in everything] == [1, 2, 3, 4] and ready["notices"] == 4
    _, ready = world.socket(alice).sync({})
    assert "notices" not in ready and "notices_complete" not in ready


def test_a_direct_chat_resumes_like_a_group(world):
    """Messages of a direct chat posted while a member was away are replayed by `sync`
    from its `since` position, in seq order; `ready` lists the chat."""
    alice, bob = world.account(), world.account()
    contacts(world, alice, bob)
    chat = open_chat(world, alice, bob)["id"]
    sent = [world.say(chat, alice, f"m{n}") for n in range(3)]
    replayed, ready = world.socket(bob).sync({chat: 1})
    assert [f["message"] for f in replayed] == sent[1:]
    assert ready["groups"] == {str(chat): 3}
