"""Read state from outside: positions, unread and mention counts, receipts.

Spec: PUT /groups/{group_id}/read (markRead: ReadState, MarkReadRefused), GET
/groups/{group_id}/reads (listReads: Receipts), the read state of GroupSummary and
GroupDetail, Message.mentions, and row 5003 of ErrorCode. The server runs with the default
IM_READ_RECEIPTS_MAX_MEMBERS (100); tests/test_reads.py covers a larger group's counts.
"""

from __future__ import annotations

import pytest

from conformance.expect import error, refused, succeed
from conformance.target import bearer
from conformance.test_contacts import befriend
from conformance.test_direct_chats import chat_of
from conformance.test_races import at_once, make_group, no_server_error


def post(client, who: dict, group_id: int, text: str) -> dict:
    answer = client.post(
        f"/groups/{group_id}/messages", json={"text": text}, headers=bearer(who["token"])
    )
    return succeed(answer, "message", status=201)["message"]


def mark(client, who: dict, group_id: int, seq):
    return client.put(f"/groups/{group_id}/read", json={"seq": seq}, headers=bearer(who["token"]))


def state(client, who: dict, group_id: int) -> tuple[int, int, int]:
    shown = succeed(client.get(f"/groups/{group_id}", headers=bearer(who["token"])), "group")
    group = shown["group"]
    return group["read_seq"], group["unread_count"], group["mention_count"]


def listed(client, who: dict, group_id: int) -> tuple[int, int, int]:
    page = succeed(client.get("/groups", headers=bearer(who["token"])), "groups", "next")
    (group,) = [g for g in page["groups"] if g["id"] == group_id]
    return group["read_seq"], group["unread_count"], group["mention_count"]


def test_unread_counts_others_messages_after_the_position_never_ones_own(api, users):
    """Bob's three messages are unread for alice, in her list and her view of the group;
    her own message counts for nobody as unread to her, and bob's own for nobody to him."""
    group_id, (alice, bob) = make_group(api, users, 2)
    for n in range(3):
        post(api, bob, group_id, f"b{n}")
    post(api, alice, group_id, "mine")
    assert state(api, alice, group_id) == listed(api, alice, group_id) == (0, 3, 0)
    assert state(api, bob, group_id) == (0, 1, 0)


def test_marking_read_moves_forward_only_and_answers_what_is_left(api, users):
    """PUT read: the position moves to seq (200 with the counts after); an older seq changes
    nothing; the last seq leaves nothing unread."""
    group_id, (alice, bob) = make_group(api, users, 2)
    for n in range(4):
        post(api, bob, group_id, f"b{n}")
    answer = succeed(mark(api, alice, group_id, 2), "read")["read"]
    assert answer == {"group_id": group_id, "read_seq": 2, "unread_count": 2, "mention_count": 0}
    older = succeed(mark(api, alice, group_id, 1), "read")["read"]
    assert older == answer
    assert succeed(mark(api, alice, group_id, 4), "read")["read"]["unread_count"] == 0
    assert listed(api, alice, group_id) == (4, 0, 0)


@pytest.mark.parametrize("seq", [-1, 2**53, 1.5, "3", None, True], ids=repr)
def test_a_position_off_the_contract_is_400(api, users, seq):
    group_id, (alice, _) = make_group(api, users, 2)
    error(mark(api, alice, group_id, seq), 400, 1001)


def test_a_position_past_the_last_message_is_5003_and_changes_nothing(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    post(api, bob, group_id, "only")
    refused(mark(api, alice, group_id, 2), (400, 5003, "Beyond the last message: its seq is 1"))
    assert state(api, alice, group_id) == (0, 1, 0)


def test_read_state_is_a_members_own(api, users):
    """Outside the conversation: 403 (3002) on both operations; an unknown one: 404."""
    group_id, _ = make_group(api, users, 2)
    stranger = users.register()
    refused(mark(api, stranger, group_id, 0), (403, 3002, "Not a member of this group"))
    reads = api.get(f"/groups/{group_id}/reads", headers=bearer(stranger["token"]))
    refused(reads, (403, 3002, "Not a member of this group"))
    refused(mark(api, stranger, 2**52, 0), (404, 3001, "Group not found"))


def test_mentions_name_members_and_count_until_read(api, users):
    """`@name` of a member (any case) is in the message's `mentions` and counts for them
    until they read past it; a non-member, an unknown name, the sender and an e-mail address
    are no mention."""
    group_id, (alice, bob) = make_group(api, users, 2)
    outsider = users.register()
    names = {"alice": name_of(api, alice), "bob": name_of(api, bob)}
    text = (
        f"@{names['alice'].upper()} and @{names['bob']}, not @{outsider['name']} nor "
        f"@nobody_here nor x@{names['alice']}.com"
    )
    message = post(api, bob, group_id, text)
    assert message["mentions"] == [alice["id"]]
    post(api, bob, group_id, "no mention")
    assert state(api, alice, group_id) == (0, 2, 1)
    succeed(mark(api, alice, group_id, message["seq"]), "read")
    assert state(api, alice, group_id) == (1, 1, 0)


def name_of(api, member: dict) -> str:
    me = succeed(api.get("/user/me", headers=bearer(member["token"])), "user")
    return me["user"]["name"]


def test_receipts_show_each_members_position_in_a_small_group(api, users):
    group_id, (alice, bob, carol) = make_group(api, users, 3)
    for n in range(3):
        post(api, alice, group_id, f"a{n}")
    succeed(mark(api, bob, group_id, 3), "read")
    succeed(mark(api, carol, group_id, 1), "read")
    answer = succeed(
        api.get(f"/groups/{group_id}/reads", headers=bearer(alice["token"])),
        "receipts",
        "members",
        "counts",
    )
    assert answer["receipts"] == "members"
    assert {m["user_id"]: m["read_seq"] for m in answer["members"]} == {
        alice["id"]: 0,
        bob["id"]: 3,
        carol["id"]: 1,
    }
    assert answer["counts"] == [
        {"seq": 3, "members": 1},
        {"seq": 1, "members": 2},
        {"seq": 0, "members": 3},
    ]


def test_receipts_of_a_direct_chat_show_how_far_the_other_has_read(api, users):
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    chat = chat_of(api, alice, bob)["id"]
    for n in range(2):
        post(api, alice, chat, f"a{n}")
    succeed(mark(api, bob, chat, 2), "read")
    answer = api.get(f"/groups/{chat}/reads", headers=bearer(alice["token"]))
    members = succeed(answer, "receipts", "members", "counts")["members"]
    assert {m["user_id"]: m["read_seq"] for m in members} == {
        alice["user"]["id"]: 0,
        bob["user"]["id"]: 2,
    }


def test_a_new_member_has_read_the_history_and_a_removed_ones_position_is_gone(api, users):
    """Added after 3 messages: read_seq 3, nothing unread; removed, then added again after
    2 more: its old position is gone, the new one is the history's end."""
    group_id, (alice,) = make_group(api, users, 1)
    for n in range(3):
        post(api, alice, group_id, f"a{n}")
    bob = users.register()
    owner = bearer(alice["token"])
    succeed(
        api.post(f"/groups/{group_id}/members", json={"name": bob["name"]}, headers=owner), "group"
    )
    member = {"token": bob["token"], "id": bob["user"]["id"]}
    assert state(api, member, group_id) == (3, 0, 0)
    post(api, alice, group_id, "more")
    succeed(api.delete(f"/groups/{group_id}/members/{bob['user']['id']}", headers=owner))
    post(api, alice, group_id, "while away")
    succeed(
        api.post(f"/groups/{group_id}/members", json={"name": bob["name"]}, headers=owner), "group"
    )
    assert state(api, member, group_id) == (5, 0, 0)


def test_members_marking_read_while_messages_arrive_keep_their_highest_position(target, api, users):
    """Members mark read at once, each several positions in any order, while messages are
    posted: no 5xx, and each member's final position is the highest it sent."""
    group_id, members = make_group(api, users, 6)
    for n in range(6):
        post(api, members[0], group_id, f"m{n}")
    wanted = {}
    calls = []
    for index, member in enumerate(members):
        positions = [(index + step) % 6 + 1 for step in range(3)]
        wanted[member["id"]] = max(positions)
        for seq in positions:
            calls.append(lambda c, m=member, s=seq: mark(c, m, group_id, s))
        calls.append(
            lambda c, m=member: c.post(
                f"/groups/{group_id}/messages", json={"text": "more"}, headers=bearer(m["token"])
            )
        )
    answers = at_once(target, calls)
    no_server_error(answers)
    receipts = succeed(
        api.get(f"/groups/{group_id}/reads", headers=bearer(members[0]["token"])),
        "receipts",
        "members",
        "counts",
    )
    assert {m["user_id"]: m["read_seq"] for m in receipts["members"]} == wanted
