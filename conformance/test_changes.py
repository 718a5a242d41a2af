"""Messages that change, from outside: edit, recall, reply, forward, delete for me.

Spec: PATCH and DELETE /groups/{group_id}/messages/{seq} (editMessage, recallMessage:
MessageChanged, EditRefused, ChangeForbidden, MessageOrGroupNotFound, MessageRecalled),
POST .../messages/{seq}/hide (hideMessage), POST /groups/{group_id}/forward
(forwardMessages: MessagesForwarded, ForwardRefused), `reply_to_seq` of postMessage, the
Message schema (rev, edited_at, forwarded, recalled, reply_to: Quote), rows 5004 to 5010 of
ErrorCode. The recall window is the server's (120 s by default); tests/test_changes.py moves
the clock past it.
"""

from __future__ import annotations

import pytest

from conformance import media
from conformance.expect import error, refused, succeed
from conformance.target import bearer
from conformance.test_contacts import befriend
from conformance.test_direct_chats import CONTACTS_ONLY, chat_of
from conformance.test_races import at_once, make_group, no_server_error

NOT_YOURS = (403, 5005, "Only its sender may do this to a message")
RECALLED = (409, 5008, "The message was recalled")
NOT_FOUND = (404, 5004, "Message not found")


def post(client, who: dict, group_id: int, text: str = "hello", **extra) -> dict:
    answer = client.post(
        f"/groups/{group_id}/messages", json={"text": text, **extra}, headers=bearer(who["token"])
    )
    return succeed(answer, "message", status=201)["message"]


def upload(client, who: dict, group_id: int) -> dict:
    answer = client.post(
        f"/groups/{group_id}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=bearer(who["token"]),
    )
    return succeed(answer, "url", "media_id", "message_id", "message", status=201)["message"]


def edit(client, who: dict, group_id: int, seq: int, text: str):
    return client.patch(
        f"/groups/{group_id}/messages/{seq}", json={"text": text}, headers=bearer(who["token"])
    )


def recall(client, who: dict, group_id: int, seq: int):
    return client.delete(f"/groups/{group_id}/messages/{seq}", headers=bearer(who["token"]))


def hide(client, who: dict, group_id: int, seq: int):
    return client.post(f"/groups/{group_id}/messages/{seq}/hide", headers=bearer(who["token"]))


def forward(client, who: dict, group_id: int, from_group_id: int, seqs: list):
    return client.post(
        f"/groups/{group_id}/forward",
        json={"from_group_id": from_group_id, "seqs": seqs},
        headers=bearer(who["token"]),
    )


def history(client, who: dict, group_id: int) -> list[dict]:
    listed = client.get(
        f"/groups/{group_id}/messages",
        params={"after_seq": 0, "limit": 100},
        headers=bearer(who["token"]),
    )
    return succeed(listed, "messages", "next")["messages"]


def test_an_edit_shows_the_new_text_when_it_was_edited_and_takes_the_next_rev(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    sent = post(api, alice, group_id, "See you at nine")
    post(api, bob, group_id, "ok")
    edited = succeed(
        edit(api, alice, group_id, sent["seq"], f"See you at ten, @{_name(api, bob)}"), "message"
    )["message"]
    assert edited["seq"] == sent["seq"] and edited["id"] == sent["id"]
    assert edited["text"].startswith("See you at ten") and edited["edited_at"] is not None
    assert edited["rev"] == 3 and edited["mentions"] == [bob["id"]]
    assert history(api, bob, group_id)[0] == edited


def _name(api, member: dict) -> str:
    return succeed(api.get("/user/me", headers=bearer(member["token"])), "user")["user"]["name"]


def test_edits_are_refused_with_their_codes(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    text = post(api, alice, group_id)
    picture = upload(api, alice, group_id)
    refused(edit(api, bob, group_id, text["seq"], "mine now"), NOT_YOURS)
    refused(
        edit(api, alice, group_id, picture["seq"], "caption"),
        (400, 5006, "Only text messages can be edited"),
    )
    refused(edit(api, alice, group_id, 99, "nothing"), NOT_FOUND)
    error(edit(api, alice, group_id, text["seq"], ""), 400, 1001)
    error(edit(api, alice, group_id, text["seq"], "x" * 4001), 400, 1001)
    stranger = users.register()
    refused(
        edit(api, stranger, group_id, text["seq"], "hi"), (403, 3002, "Not a member of this group")
    )
    assert history(api, alice, group_id)[0]["text"] == "hello"


def test_a_recall_leaves_a_tombstone_in_place(api, users):
    """The sender recalls their message: same seq, no text, no mentions, `recalled` says by
    whom; a second recall, or an edit, is 409; others' messages are not theirs to recall."""
    group_id, (alice, bob) = make_group(api, users, 2)
    sent = post(api, bob, group_id, f"@{_name(api, alice)} secret")
    post(api, alice, group_id, "after")
    refused(recall(api, bob, group_id, 99), NOT_FOUND)
    tombstone = succeed(recall(api, bob, group_id, sent["seq"]), "message")["message"]
    assert (tombstone["seq"], tombstone["text"], tombstone["mentions"]) == (1, None, [])
    assert tombstone["recalled"]["by"]["id"] == bob["id"] and tombstone["rev"] == 3
    assert [m["seq"] for m in history(api, alice, group_id)] == [1, 2]
    assert history(api, alice, group_id)[0] == tombstone
    refused(recall(api, bob, group_id, sent["seq"]), RECALLED)
    refused(edit(api, bob, group_id, sent["seq"], "again"), RECALLED)


def test_only_the_sender_recalls_unless_the_owner_does(api, users):
    group_id, (owner, member, other) = make_group(api, users, 3)
    sent = post(api, member, group_id, "oops")
    refused(recall(api, other, group_id, sent["seq"]), NOT_YOURS)
    mine = post(api, owner, group_id, "mine")
    refused(recall(api, member, group_id, mine["seq"]), NOT_YOURS)
    by_owner = succeed(recall(api, owner, group_id, sent["seq"]), "message")["message"]
    assert by_owner["recalled"]["by"]["id"] == owner["id"]


def test_a_recalled_upload_is_no_longer_served_unless_a_forwarded_copy_shows_it(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    other_id, (other_owner,) = make_group(api, users, 1)
    kept = upload(api, alice, group_id)
    gone = upload(api, alice, group_id)
    added = api.post(
        f"/groups/{other_id}/members",
        json={"name": _name(api, alice)},
        headers=bearer(other_owner["token"]),
    )
    succeed(added, "group")
    copies = succeed(forward(api, alice, other_id, group_id, [kept["seq"]]), "messages", status=201)
    copy = copies["messages"][0]
    assert copy["forwarded"] and copy["media_id"] == kept["media_id"] and copy["kind"] == "image"
    for message in (kept, gone):
        succeed(recall(api, alice, group_id, message["seq"]), "message")
    assert api.get(gone["url"].removeprefix("/api")).status_code == 404
    assert api.get(copy["url"].removeprefix("/api")).status_code == 200


def test_a_reply_quotes_the_message_it_answers_and_says_when_it_was_recalled(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    question = post(api, alice, group_id, "Saturday, 8:00? " + "x" * 200)
    answer = post(api, bob, group_id, "Yes", reply_to_seq=question["seq"])
    assert answer["reply_to"] == {
        "seq": question["seq"],
        "sender": question["sender"],
        "kind": "text",
        "excerpt": question["text"][:100],
        "recalled": False,
    }
    succeed(recall(api, alice, group_id, question["seq"]), "message")
    quote = history(api, bob, group_id)[1]["reply_to"]
    assert (quote["recalled"], quote["excerpt"]) == (True, None)
    refused(
        api.post(
            f"/groups/{group_id}/messages",
            json={"text": "to nothing", "reply_to_seq": 99},
            headers=bearer(bob["token"]),
        ),
        (400, 5009, "reply_to_seq names no message of this conversation"),
    )
    # The refused reply took no seq: the next message follows on.
    assert post(api, bob, group_id, "next")["seq"] == answer["seq"] + 1
    assert [m["text"] for m in history(api, bob, group_id)][-1] == "next"


def test_forward_copies_messages_in_order_into_a_conversation_of_the_forwarder(api, users):
    source, (alice, bob) = make_group(api, users, 2)
    target, (carol,) = make_group(api, users, 1)
    first, second = post(api, bob, source, "one"), post(api, bob, source, "two")
    refused(forward(api, alice, target, source, [1]), (403, 3002, "Not a member of this group"))
    refused(
        forward(api, carol, target, source, [1]),
        (400, 5011, "from_group_id names no conversation of yours"),
    )
    refused(
        forward(api, carol, target, 2**52, [1]),
        (400, 5011, "from_group_id names no conversation of yours"),
    )
    api.post(
        f"/groups/{target}/members",
        json={"name": _name(api, alice)},
        headers=bearer(carol["token"]),
    )
    made = succeed(
        forward(api, alice, target, source, [second["seq"], first["seq"]]), "messages", status=201
    )
    assert [(m["text"], m["sender"]["id"], m["forwarded"], m["seq"]) for m in made["messages"]] == [
        ("two", alice["id"], True, 1),
        ("one", alice["id"], True, 2),
    ]
    error(forward(api, alice, target, source, [1, 1]), 400, 1001)
    refused(
        forward(api, alice, target, source, [1, 99]),
        (400, 5010, "Message 99 cannot be forwarded (none, recalled or deleted)"),
    )
    succeed(recall(api, bob, source, first["seq"]), "message")
    refused(
        forward(api, alice, target, source, [first["seq"]]),
        (400, 5010, f"Message {first['seq']} cannot be forwarded (none, recalled or deleted)"),
    )
    assert len(history(api, carol, target)) == 2


def test_forward_into_a_direct_chat_follows_its_rules(api, users):
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    source = succeed(
        api.post("/groups", json={"name": "src"}, headers=bearer(alice["token"])),
        "group",
        status=201,
    )["group"]["id"]
    member = {"token": alice["token"], "id": alice["user"]["id"]}
    post(api, member, source, "pass it on")
    succeed(forward(api, member, chat, source, [1]), "messages", status=201)
    succeed(api.delete(f"/contacts/{bob['user']['id']}", headers=bearer(alice["token"])))
    refused(forward(api, member, chat, source, [1]), CONTACTS_ONLY)


def test_deleting_for_oneself_hides_the_message_from_one_history_only(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    post(api, bob, group_id, "one")
    second = post(api, bob, group_id, f"two @{_name(api, alice)}")
    succeed(hide(api, alice, group_id, second["seq"]))
    succeed(hide(api, alice, group_id, second["seq"]))
    assert [m["seq"] for m in history(api, alice, group_id)] == [1]
    assert [m["seq"] for m in history(api, bob, group_id)] == [1, 2]
    shown = succeed(api.get(f"/groups/{group_id}", headers=bearer(alice["token"])), "group")[
        "group"
    ]
    assert (shown["unread_count"], shown["mention_count"]) == (1, 0)
    refused(hide(api, alice, group_id, 99), NOT_FOUND)
    refused(
        forward(api, alice, group_id, group_id, [second["seq"]]),
        (400, 5010, f"Message {second['seq']} cannot be forwarded (none, recalled or deleted)"),
    )


@pytest.mark.parametrize("race", ["edit-recall", "edit-edit", "hide-edit"])
def test_changes_racing_on_one_message_end_in_one_state(target, api, users, race):
    """Two changes of one message at once: only answers the contract lists, never a 5xx,
    and the message's state, as every member lists it, is the one the last to commit made,
    with a rev per change that happened."""
    for _ in range(3):
        _race_once(target, api, users, race)


def _race_once(target, api, users, race: str) -> None:
    group_id, (alice, bob) = make_group(api, users, 2)
    seq = post(api, alice, group_id, "first")["seq"]
    calls = {
        "edit-recall": [
            lambda c: edit(c, alice, group_id, seq, "edited"),
            lambda c: recall(c, alice, group_id, seq),
        ],
        "edit-edit": [
            lambda c: edit(c, alice, group_id, seq, "one"),
            lambda c: edit(c, alice, group_id, seq, "two"),
        ],
        "hide-edit": [
            lambda c: hide(c, bob, group_id, seq),
            lambda c: edit(c, alice, group_id, seq, "edited"),
        ],
    }[race]
    answers = at_once(target, calls)
    no_server_error(answers)
    state = history(api, alice, group_id)[0]
    if race == "edit-recall":
        assert answers[1].status_code == 200 and state["recalled"] is not None
        assert answers[0].status_code in (200, 409)
        assert state["rev"] == (3 if answers[0].status_code == 200 else 2)
    elif race == "edit-edit":
        assert [a.status_code for a in answers] == [200, 200]
        assert state["rev"] == 3 and state["text"] in ("one", "two")
        last = max(answers, key=lambda a: a.json()["message"]["rev"])
        assert state == last.json()["message"]
    else:
        assert [a.status_code for a in answers] == [200, 200]
        assert history(api, bob, group_id) == [] and state["text"] == "edited"


def test_recall_racing_forward_keeps_the_media_of_a_copy_made(target, api, users):
    """A recall and a forward of one upload at once: the forward is 201 (and its copy is
    served) or 400 (5010, after the recall); never a 5xx, never a copy without its media."""
    for _ in range(3):
        _recall_and_forward_at_once(target, api, users)


def _recall_and_forward_at_once(target, api, users) -> None:
    source, (alice, bob) = make_group(api, users, 2)
    seq = upload(api, alice, source)["seq"]
    recalled, forwarded = at_once(
        target,
        [
            lambda c: recall(c, alice, source, seq),
            lambda c: forward(c, bob, source, source, [seq]),
        ],
    )
    no_server_error([recalled, forwarded])
    assert recalled.status_code == 200
    assert forwarded.status_code in (201, 400), forwarded.text
    if forwarded.status_code == 201:
        copy = forwarded.json()["messages"][0]
        assert api.get(copy["url"].removeprefix("/api")).status_code == 200
    else:
        assert forwarded.json()["code"] == 5010
