"""Live delivery: a message posted over REST reaches every member's sockets, and nobody else's.

Spec: asyncapi.yaml, the `sendEvents` operation (`message.created`, `member.added`,
`member.removed`), info "Frames" and "Authorization stays live"; openapi.yaml's postMessage
(`client_msg_id`).
"""

from __future__ import annotations

import threading

import pytest

from conformance import media, socket_client


@pytest.fixture
def world():
    yield from socket_client.worlds()


def test_post_message_reaches_every_socket_of_every_member_and_no_one_else(world):
    """POST /groups/{id}/messages: each member's sockets get message.created, the same Message."""
    alice, bob, carol = world.account(), world.account(), world.account()
    group = world.group(alice, bob)
    # Several sockets each, so that against a server of several workers (run_live.sh on
    # PostgreSQL) some land on a worker other than the one the message is posted to.
    members = [world.live_socket(who) for who in (alice, alice, bob, bob)]
    by_frame = world.socket(bob, by="frame")
    by_frame.sync()
    members.append(by_frame)
    outsider = world.live_socket(carol)

    message = world.say(group, bob, "hello, everyone")

    assert message["group_id"] == group and message["seq"] == 1 and message["kind"] == "text"
    for socket in members:
        assert socket.expect("message.created") == {"type": "message.created", "message": message}
    outsider.nothing_for()
    for socket in members:
        socket.nothing_for(0.2)


def test_an_upload_is_a_message_too(world):
    """POST /groups/{id}/upload_image: the members' sockets get its Message, with the next seq."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    socket = world.live_socket(bob)
    text = world.say(group, alice, "a picture follows")

    uploaded = world.api.post(
        f"/groups/{group}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=socket_client.bearer(alice["token"]),
    )
    assert uploaded.status_code == 201, uploaded.text
    message = uploaded.json()["message"]

    assert socket.expect("message.created")["message"] == text
    assert socket.expect("message.created")["message"] == message
    assert (message["kind"], message["seq"], message["text"]) == ("image", 2, None)


def test_messages_of_a_group_arrive_in_seq_order_without_gaps(world):
    """Twenty messages posted at once by two members: each socket gets seq 1..20 in order."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    sockets = [world.live_socket(alice), world.live_socket(bob)]

    def post(sender, count):
        for n in range(count):
            world.say(group, sender, f"{sender['name']} {n}")

    threads = [threading.Thread(target=post, args=(who, 10)) for who in (alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for socket in sockets:
        seqs = [socket.expect("message.created")["message"]["seq"] for _ in range(20)]
        assert seqs == list(range(1, 21))


def test_the_longest_messages_arrive_exactly_and_in_order_between_short_ones(world):
    """4000 characters of CJK and emoji (13 KB of UTF-8 in the frame) between short messages:
    each socket gets every one, exactly as the REST answer, in seq order. (A frame this long
    does not fit a PostgreSQL notification, for one: whatever way a server passes frames
    between its parts, none may be cut or lost.)"""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    sockets = [world.live_socket(alice), world.live_socket(bob), world.live_socket(bob)]
    longest = ("你好😀" * 1334)[:4000]

    posted = [world.say(group, alice, text) for text in (longest, "short", longest[::-1], "again")]

    assert [m["text"] for m in posted] == [longest, "short", longest[::-1], "again"]
    for socket in sockets:
        for message in posted:
            assert socket.expect("message.created")["message"] == message


def test_member_added_reaches_the_group_and_the_new_member_who_then_gets_its_messages(world):
    """POST /groups/{id}/members: member.added to the members and the new one; then its messages."""
    alice, bob = world.account(), world.account()
    group = world.group(alice)
    alice_socket, bob_socket = world.live_socket(alice), world.live_socket(bob)

    world.add(group, alice, bob)

    expected = {
        "type": "member.added",
        "group_id": group,
        "user": {"id": bob["user"]["id"], "name": bob["name"], "avatar_url": None},
    }
    assert alice_socket.expect("member.added") == expected
    assert bob_socket.expect("member.added") == expected
    message = world.say(group, alice, "welcome")
    assert bob_socket.expect("message.created")["message"] == message


def test_a_removed_member_gets_member_removed_then_nothing_more_of_the_group(world):
    """DELETE /groups/{id}/members/{user_id}: member.removed to both, then no more messages."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    other = world.group(bob)
    alice_socket, bob_socket = world.live_socket(alice), world.live_socket(bob)

    world.remove(group, alice, bob)

    expected = {"type": "member.removed", "group_id": group, "user_id": bob["user"]["id"]}
    assert alice_socket.expect("member.removed") == expected
    assert bob_socket.expect("member.removed") == expected
    message = world.say(group, alice, "bob is gone")
    assert alice_socket.expect("message.created")["message"] == message
    # Bob's socket still works, and still gets the groups he is in.
    mine = world.say(other, bob, "still here")
    assert bob_socket.expect("message.created")["message"] == mine
    bob_socket.nothing_for()


def test_a_removed_member_resuming_gets_nothing_of_the_group(world):
    """After removal, `sync` naming the group replays nothing of it and `ready` omits it."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    world.say(group, alice, "before")
    world.remove(group, alice, bob)
    world.say(group, alice, "after")

    socket = world.socket(bob)
    replayed, ready = socket.sync({group: 0})
    assert replayed == []
    assert ready["groups"] == {}
    world.say(group, alice, "live, after")
    socket.nothing_for()


def test_a_member_who_leaves_gets_nothing_more_of_the_group(world):
    """A member removing itself (leaving) stops that group's events on its sockets at once."""
    alice, bob = world.account(), world.account()
    group = world.group(alice, bob)
    bob_socket = world.live_socket(bob)

    world.remove(group, bob, bob)
    assert bob_socket.expect("member.removed")["user_id"] == bob["user"]["id"]
    world.say(group, alice, "after bob left")
    bob_socket.nothing_for()


def test_the_same_client_msg_id_twice_at_once_is_one_message_and_one_frame(world):
    """postMessage with one client_msg_id sent twice at once: one Message, one frame."""
    alice = world.account()
    group = world.group(alice)
    socket = world.live_socket(alice)
    responses = [None, None]
    barrier = threading.Barrier(2)

    def post(slot):
        barrier.wait()
        responses[slot] = world.post(group, alice, "only once", client_msg_id="idem:1")

    threads = [threading.Thread(target=post, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
    messages = [r.json()["message"] for r in responses]
    assert messages[0] == messages[1]
    # Frames of one group come in seq order: once the next message's frame is in, a second
    # frame of the first can no longer come.
    fence = world.say(group, alice, "fence")
    frames = []
    while not frames or frames[-1]["message"]["id"] != fence["id"]:
        frames.append(socket.expect("message.created"))
    assert [f["message"] for f in frames] == [messages[0], fence]


def test_ping_is_answered_with_pong_before_and_after_sync(world):
    """`ping` gets `pong`, whether or not `sync` has been sent."""
    socket = world.socket(world.account())
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}
    socket.sync()
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}


def test_no_live_event_before_the_first_sync_and_none_twice_after(world):
    """Until the first `sync` events are held; one replayed is not sent again live."""
    alice = world.account()
    group = world.group(alice)
    socket = world.socket(alice)
    message = world.say(group, alice, "held until sync")
    socket.nothing_for()

    replayed, ready = socket.sync({group: 0})
    assert [f["message"] for f in replayed] == [message]
    assert ready["groups"] == {str(group): 1}
    # The held live event of the same message was already sent by the replay: skipped.
    later = world.say(group, alice, "live")
    assert socket.expect("message.created")["message"] == later
    assert later["seq"] == 2
