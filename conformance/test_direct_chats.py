"""Direct chats and the conversation list, from outside.

Spec: PUT /direct/{user_id} (openDirectChat: components.responses.Group, DirectChatRefused,
NotYourself, UserNotFound), the `/groups/{group_id}/...` operations on a direct chat
(PostRefused, AddMemberConflict, DirectChatNoMembers), GET /groups (listMyGroups:
GroupListResponse, ConversationCursor), and rows 3006, 7001, 7002, 7007, 7008, 7011 of
ErrorCode. The server runs with the default `IM_DIRECT_CHATS=contacts`; `tests/` covers
`anyone`.
"""

from __future__ import annotations

from conformance import media
from conformance.expect import refused, succeed
from conformance.target import bearer
from conformance.test_contacts import befriend
from conformance.test_races import at_once, no_server_error

CONTACTS_ONLY = (403, 7011, "Direct chats are between contacts: send a contact request first")
YOU_BLOCKED = (403, 7008, "You blocked this user: unblock them first")
NOT_A_MEMBER = (403, 3002, "Not a member of this group")
DIRECT_CHAT = (409, 3006, "A direct chat has no members to add or remove")


def open_chat(client, who: dict, other: dict):
    return client.put(f"/direct/{other['user']['id']}", headers=bearer(who["token"]))


def chat_of(client, who: dict, other: dict) -> dict:
    opened = open_chat(client, who, other)
    assert opened.status_code in (200, 201), opened.text
    return opened.json()["group"]


def say(client, who: dict, chat_id: int, text: str = "hi", **extra):
    return client.post(
        f"/groups/{chat_id}/messages", json={"text": text, **extra}, headers=bearer(who["token"])
    )


def conversations(client, who: dict, **params) -> dict:
    listed = client.get("/groups", params=params, headers=bearer(who["token"]))
    return succeed(listed, "groups", "next")


def member(user: dict) -> dict:
    return {"id": user["user"]["id"], "name": user["name"], "avatar_url": None}


def test_open_makes_one_chat_per_pair_found_again_by_either_side(api, users):
    """PUT /direct/{user_id} between contacts: 201 with the chat (kind direct, no owner, the
    other member as `peer` and `name`, both members), then 200 with the same chat for
    either of them."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    made = succeed(open_chat(api, alice, bob), "group", status=201)["group"]
    assert made["kind"] == "direct" and made["owner_id"] is None
    assert made["peer"] == member(bob) and made["name"] == bob["name"]
    assert sorted(m["id"] for m in made["members"]) == sorted(
        [alice["user"]["id"], bob["user"]["id"]]
    )
    again = succeed(open_chat(api, alice, bob), "group")["group"]
    assert again == made
    theirs = succeed(open_chat(api, bob, alice), "group")["group"]
    assert theirs["id"] == made["id"] and theirs["peer"] == member(alice)
    assert theirs["name"] == alice["name"]
    viewed = api.get(f"/groups/{made['id']}", headers=bearer(bob["token"]))
    assert succeed(viewed, "group")["group"] == theirs


def test_open_is_refused_to_strangers_oneself_and_unknown_users(api, users):
    alice, bob = users.register(), users.register()
    refused(open_chat(api, alice, bob), CONTACTS_ONLY)
    refused(open_chat(api, alice, alice), (400, 7002, "Not with yourself"))
    unknown = api.put("/direct/9007199254740991", headers=bearer(alice["token"]))
    refused(unknown, (404, 7001, "User not found"))


def test_messages_in_a_direct_chat_work_as_in_a_group(api, users):
    """Text with client_msg_id (201, then 200 for the retry), an upload, seq 1, 2, paging
    forward with after_seq: the same operations and Message schema as a group's."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    first = succeed(say(api, alice, chat, "hello", client_msg_id="d:1"), "message", status=201)
    retried = succeed(say(api, alice, chat, "hello", client_msg_id="d:1"), "message")
    assert retried["message"] == first["message"]
    uploaded = api.post(
        f"/groups/{chat}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=bearer(bob["token"]),
    )
    assert uploaded.status_code == 201, uploaded.text
    listed = api.get(
        f"/groups/{chat}/messages", params={"after_seq": 0}, headers=bearer(bob["token"])
    )
    messages = succeed(listed, "messages", "next")["messages"]
    assert [(m["seq"], m["kind"], m["sender"]["id"]) for m in messages] == [
        (1, "text", alice["user"]["id"]),
        (2, "image", bob["user"]["id"]),
    ]
    assert messages[0]["group_id"] == chat


def test_nobody_else_reads_or_writes_a_direct_chat(api, users):
    """A third user gets 403 (3002) on every operation of the chat, and nothing changes."""
    alice, bob, eve = users.register(), users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    succeed(say(api, alice, chat, "private"), "message", status=201)
    headers = bearer(eve["token"])
    for response in (
        api.get(f"/groups/{chat}", headers=headers),
        api.get(f"/groups/{chat}/messages", headers=headers),
        say(api, eve, chat, "let me in"),
        api.post(f"/groups/{chat}/members", json={"name": eve["name"]}, headers=headers),
        api.delete(f"/groups/{chat}/members/{alice['user']['id']}", headers=headers),
        api.post(
            f"/groups/{chat}/upload_image",
            files={"image": ("pixel.png", media.PNG, "image/png")},
            headers=headers,
        ),
    ):
        refused(response, NOT_A_MEMBER)
    listed = api.get(f"/groups/{chat}/messages", headers=bearer(bob["token"]))
    assert [m["text"] for m in succeed(listed, "messages", "next")["messages"]] == ["private"]


def test_a_direct_chat_has_its_two_members_for_good(api, users):
    """Adding or removing a member, or leaving, is 409 (3006)."""
    alice, bob, carol = users.register(), users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    headers = bearer(alice["token"])
    added = api.post(f"/groups/{chat}/members", json={"name": carol["name"]}, headers=headers)
    refused(added, DIRECT_CHAT)
    for gone in (bob, alice):
        left = api.delete(f"/groups/{chat}/members/{gone['user']['id']}", headers=headers)
        refused(left, DIRECT_CHAT)
    assert len(chat_of(api, bob, alice)["members"]) == 2


def test_removing_the_contact_stops_new_messages_and_keeps_the_history(api, users):
    """After DELETE /contacts/{user_id}, both sides' posts and uploads are 403 (7011) and the
    history stays readable; contacts again, they write again, the next seq after the last
    message kept (a refused post takes none)."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    succeed(say(api, bob, chat, "before"), "message", status=201)
    succeed(api.delete(f"/contacts/{bob['user']['id']}", headers=bearer(alice["token"])))

    for who in (alice, bob):
        refused(say(api, who, chat, "after"), CONTACTS_ONLY)
        upload = api.post(
            f"/groups/{chat}/upload_image",
            files={"image": ("pixel.png", media.PNG, "image/png")},
            headers=bearer(who["token"]),
        )
        refused(upload, CONTACTS_ONLY)
        listed = api.get(f"/groups/{chat}/messages", headers=bearer(who["token"]))
        assert [m["text"] for m in succeed(listed, "messages", "next")["messages"]] == ["before"]
    assert succeed(open_chat(api, bob, alice), "group")["group"]["id"] == chat

    befriend(api, bob, alice)
    again = succeed(say(api, alice, chat, "again"), "message", status=201)["message"]
    assert again["seq"] == 2


def test_a_block_stops_the_blocked_users_messages_without_saying_blocked(api, users):
    """The blocked user's posts get 7011, what any non-contact gets; the blocker's own get
    7008; the history stays readable by both."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    succeed(say(api, bob, chat, "before"), "message", status=201)
    succeed(
        api.put(f"/blocks/{bob['user']['id']}", headers=bearer(alice["token"])), "block", status=201
    )
    refused(say(api, bob, chat, "let me explain"), CONTACTS_ONLY)
    refused(say(api, alice, chat, "bye"), YOU_BLOCKED)
    assert succeed(open_chat(api, bob, alice), "group")["group"]["id"] == chat
    for who in (alice, bob):
        listed = api.get(f"/groups/{chat}/messages", headers=bearer(who["token"]))
        assert [m["text"] for m in succeed(listed, "messages", "next")["messages"]] == ["before"]


def test_two_opens_at_once_make_one_chat(target, api, users):
    """Both sides open their chat at the same moment: one 201 and one 200, one chat id,
    never a 5xx."""
    for _ in range(4):
        alice, bob = users.register(), users.register()
        befriend(api, alice, bob)
        answers = at_once(
            target,
            [
                lambda c, a=alice, b=bob: open_chat(c, a, b),
                lambda c, a=alice, b=bob: open_chat(c, b, a),
            ],
        )
        assert no_server_error(answers) == {201: 1, 200: 1}
        assert len({a.json()["group"]["id"] for a in answers}) == 1


def test_the_conversation_list_holds_both_kinds_most_recently_active_first(api, users):
    """GET /groups: groups and direct chats with `kind`, each with its last message (left
    out while there is none) and a direct chat's `peer`; a message moves its conversation
    to the top; pages follow `next`."""
    alice, bob, carol = users.register(), users.register(), users.register()
    befriend(api, alice, bob)
    group = succeed(
        api.post("/groups", json={"name": "Weekend"}, headers=bearer(alice["token"])),
        "group",
        status=201,
    )["group"]
    chat = chat_of(api, alice, bob)
    listed = conversations(api, alice)
    assert [(c["id"], c["kind"]) for c in listed["groups"]] == [
        (chat["id"], "direct"),
        (group["id"], "group"),
    ]
    direct, grouped = listed["groups"]
    assert direct["peer"] == member(bob) and direct["name"] == bob["name"]
    assert direct["owner_id"] is None and direct["member_count"] == 2
    assert "last_message" not in direct and "peer" not in grouped
    assert grouped["owner_id"] == alice["user"]["id"] and grouped["name"] == "Weekend"

    posted = succeed(
        api.post(
            f"/groups/{group['id']}/messages",
            json={"text": "plans?"},
            headers=bearer(alice["token"]),
        ),
        "message",
        status=201,
    )["message"]
    first = conversations(api, alice, limit=1)
    assert [c["id"] for c in first["groups"]] == [group["id"]]
    assert first["groups"][0]["last_message"] == posted
    assert first["groups"][0]["last_activity_at"] >= direct["last_activity_at"]
    second = conversations(api, alice, limit=1, cursor=first["next"])
    assert [c["id"] for c in second["groups"]] == [chat["id"]] and second["next"] is None
    assert conversations(api, carol) == {"code": 0, "info": "Succeed", "groups": [], "next": None}


def test_a_cancelled_peer_leaves_the_chat_readable_and_closed(api, users):
    """When the other account is cancelled, the chat stays with the history (sender shown
    as a deleted user), its `peer` is the deleted user, and new messages are refused."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    succeed(say(api, bob, chat, "farewell"), "message", status=201)
    cancelled = api.post(
        "/user/cancel_account", json={"password": bob["password"]}, headers=bearer(bob["token"])
    )
    succeed(cancelled)
    shown = succeed(api.get(f"/groups/{chat}", headers=bearer(alice["token"])), "group")["group"]
    assert shown["peer"] == {"id": None, "name": "deleted user", "avatar_url": None}
    listed = api.get(f"/groups/{chat}/messages", headers=bearer(alice["token"]))
    (message,) = succeed(listed, "messages", "next")["messages"]
    assert message["sender"]["id"] is None and message["text"] == "farewell"
    refused(say(api, alice, chat, "hello?"), CONTACTS_ONLY)
