"""Text messages, their order and their idempotency, from outside.

Spec: POST /groups/{group_id}/messages (postMessage: components.responses.MessagePosted,
MessageAlreadyPosted, PostMessageRefused, TooManyRequests), GET /groups/{group_id}/messages
with `after_seq`, components.schemas.Message and Seq, and rows 5001 and 1009 of ErrorCode.
Concurrent requests go from several threads, each on its own connection, released
together; against a live server with several workers they reach different processes.
"""

from __future__ import annotations

import pytest

from conformance.expect import error, succeed
from conformance.target import bearer
from conformance.test_abuse_limits import refused_after, too_many
from conformance.test_races import at_once, make_group, no_server_error

MESSAGE_KEYS = {"id", "group_id", "seq", "kind", "sender", "text", "client_msg_id", "mentions"}
MESSAGE_KEYS |= {"rev", "edited_at", "forwarded"}
MESSAGE_KEYS |= {"media_id", "url", "size", "content_type", "filename", "created_at"}
INVALID_TEXT = "Text must be 1 to 4000 characters, without NUL or lone surrogates"


def post(client, member: dict, group_id: int, text: str = "hello", **extra):
    return client.post(
        f"/groups/{group_id}/messages",
        json={"text": text, **extra},
        headers=bearer(member["token"]),
    )


def every_message(api, member: dict, group_id: int) -> list[dict]:
    """All the group's messages, oldest first, paging forward with after_seq."""
    found, after = [], 0
    while after is not None:
        page = succeed(
            api.get(
                f"/groups/{group_id}/messages",
                params={"after_seq": after, "limit": 100},
                headers=bearer(member["token"]),
            ),
            "messages",
            "next",
        )
        found += page["messages"]
        after = page["next"]
    return found


def test_a_text_message_is_posted_listed_and_paged_forward(api, users):
    group_id, (owner, member) = make_group(api, users, 2)
    answer = succeed(
        post(api, member, group_id, "first", client_msg_id="c:1"), "message", status=201
    )
    message = answer["message"]
    assert set(message) == MESSAGE_KEYS
    assert (message["group_id"], message["seq"], message["kind"]) == (group_id, 1, "text")
    assert (message["text"], message["client_msg_id"]) == ("first", "c:1")
    assert message["sender"]["id"] == member["id"]
    assert [message[k] for k in ("media_id", "url", "size", "content_type", "filename")] == [
        None
    ] * 5
    for n in range(2, 6):
        succeed(post(api, owner, group_id, f"m{n}"), "message", status=201)

    newest = succeed(
        api.get(f"/groups/{group_id}/messages", headers=bearer(owner["token"])), "messages", "next"
    )
    assert [m["seq"] for m in newest["messages"]] == [5, 4, 3, 2, 1]
    assert newest["messages"][-1] == message

    url = f"/groups/{group_id}/messages"
    page = api.get(url, params={"after_seq": 1, "limit": 2}, headers=bearer(member["token"]))
    page = succeed(page, "messages", "next")
    assert [m["text"] for m in page["messages"]] == ["m2", "m3"] and page["next"] == "3"
    page = api.get(url, params={"after_seq": 3, "limit": 2}, headers=bearer(member["token"]))
    page = succeed(page, "messages", "next")
    assert [m["seq"] for m in page["messages"]] == [4, 5] and page["next"] is None
    both = api.get(url, params={"after_seq": 1, "cursor": "9"}, headers=bearer(owner["token"]))
    error(both, 400, 5002, "Give after_seq or cursor, not both")


def test_the_same_client_msg_id_answers_the_first_message(api, users):
    group_id, (alice, bob) = make_group(api, users, 2)
    first = succeed(post(api, alice, group_id, "one", client_msg_id="k"), "message", status=201)
    again = succeed(post(api, alice, group_id, "two", client_msg_id="k"), "message", status=200)
    assert again == first
    # Another sender's id of the same value is its own.
    other = succeed(post(api, bob, group_id, "one", client_msg_id="k"), "message", status=201)
    assert other["message"]["seq"] == 2
    assert [m["text"] for m in every_message(api, alice, group_id)] == ["one", "one"]


def test_one_client_msg_id_sent_at_once_from_many_connections_makes_one_message(target, api, users):
    group_id, (alice,) = make_group(api, users, 1)
    calls = [lambda client: post(client, alice, group_id, "retry", client_msg_id="once")] * 12
    answers = at_once(target, calls)
    statuses = no_server_error(answers)
    assert statuses == {201: 1, 200: 11}, statuses
    assert len({a.json()["message"]["id"] for a in answers}) == 1
    assert [m["seq"] for m in every_message(api, alice, group_id)] == [1]


def test_messages_posted_at_once_by_several_members_have_seqs_without_gaps(target, api, users):
    group_id, members = make_group(api, users, 4)
    calls = [
        (lambda client, m=members[n % 4], n=n: post(client, m, group_id, f"n{n}"))
        for n in range(32)
    ]
    answers = at_once(target, calls)
    assert no_server_error(answers) == {201: 32}
    shown = every_message(api, members[0], group_id)
    assert [m["seq"] for m in shown] == list(range(1, 33))
    assert sorted(m["text"] for m in shown) == sorted(f"n{n}" for n in range(32))
    assert sorted(a.json()["message"]["seq"] for a in answers) == list(range(1, 33))


def test_uploads_take_seqs_between_text_messages(api, users):
    from conformance import media

    group_id, (alice,) = make_group(api, users, 1)
    succeed(post(api, alice, group_id), "message", status=201)
    uploaded = api.post(
        f"/groups/{group_id}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=bearer(alice["token"]),
    )
    upload = succeed(uploaded, "url", "media_id", "message_id", "message", status=201)
    assert (upload["message"]["seq"], upload["message"]["text"]) == (2, None)
    assert succeed(post(api, alice, group_id), "message", status=201)["message"]["seq"] == 3


def test_only_members_post_into_an_existing_group(api, users):
    group_id, (owner,) = make_group(api, users, 1)
    stranger = users.register()
    stranger = {"token": stranger["token"], "id": stranger["user"]["id"]}
    error(post(api, stranger, group_id), 403, 3002)
    error(post(api, owner, 2**53 - 1), 404, 3001)
    error(api.post(f"/groups/{group_id}/messages", json={"text": "hi"}), 401, 1003)
    assert every_message(api, owner, group_id) == []


@pytest.mark.parametrize(
    "escaped",
    [b"nul \\u0000 inside", b"\\ud800", b"half \\udc00 pair", b"\\ude00\\ud83d"],
    ids=["nul", "high", "low", "reversed"],
)
def test_text_with_nul_or_a_lone_surrogate_is_refused_5001(api, users, escaped):
    group_id, (owner,) = make_group(api, users, 1)
    answer = api.post(
        f"/groups/{group_id}/messages",
        content=b'{"text": "' + escaped + b'"}',
        headers={**bearer(owner["token"]), "Content-Type": "application/json"},
    )
    error(answer, 400, 5001, INVALID_TEXT)
    assert every_message(api, owner, group_id) == []


@pytest.mark.parametrize(
    "body",
    [{"text": ""}, {"text": "x" * 4001}, {"text": "hi", "client_msg_id": "no spaces"}, {}],
    ids=["empty", "4001-characters", "bad-client-msg-id", "no-text"],
)
def test_a_body_outside_the_contract_is_1001(api, users, body):
    group_id, (owner,) = make_group(api, users, 1)
    answer = api.post(f"/groups/{group_id}/messages", json=body, headers=bearer(owner["token"]))
    error(answer, 400, 1001)


def test_4000_characters_of_any_plane_are_kept_exactly(api, users):
    group_id, (owner,) = make_group(api, users, 1)
    text = " 😀 Ünï\t" * 500  # 4000 code points, spaces at both ends
    message = succeed(post(api, owner, group_id, text), "message", status=201)["message"]
    assert message["text"] == text
    assert every_message(api, owner, group_id)[0]["text"] == text


def test_posting_is_limited_per_account(target, api, users):
    """Past IM_LIMIT_MESSAGE_PER_ACCOUNT (600 a minute by default): 429 with Retry-After,
    for that account only."""
    group_id, (alice, bob) = make_group(api, users, 2)
    refused, sent = refused_after(
        target, lambda client, n: post(client, alice, group_id, f"n{n}"), most=1300
    )
    too_many(refused)
    assert sent >= 1
    succeed(post(api, bob, group_id), "message", status=201)
    # Nothing was lost or numbered twice on the way.
    shown = every_message(api, bob, group_id)
    assert [m["seq"] for m in shown] == list(range(1, sent + 2))
