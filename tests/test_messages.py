"""Text messages: POST /api/groups/{group_id}/messages, `seq` on every message, `client_msg_id`
idempotency, and forward paging with `after_seq`.

In-process tests use the app on the run's database; the concurrency tests use a real
`im-api serve` (two workers on PostgreSQL) and many requests at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


@pytest.fixture
def alice(auth):
    return auth.new_user("alice")


@pytest.fixture
def bob(auth):
    return auth.new_user("bob")


def create(client, headers, name="chat") -> int:
    response = client.post("/api/groups", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["group"]["id"]


def add(client, headers, group_id, name) -> None:
    response = client.post(f"/api/groups/{group_id}/members", json={"name": name}, headers=headers)
    assert response.status_code == 200, response.text


def post(client, headers, group_id, text="hello", **extra):
    return client.post(
        f"/api/groups/{group_id}/messages", json={"text": text, **extra}, headers=headers
    )


def posted(client, headers, group_id, text="hello", **extra) -> dict:
    response = post(client, headers, group_id, text, **extra)
    assert response.status_code == 201, response.text
    return response.json()["message"]


def listed(client, headers, group_id, **params) -> dict:
    response = client.get(f"/api/groups/{group_id}/messages", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.json()


def me(client, headers) -> dict:
    user = client.get("/api/user/me", headers=headers).json()["user"]
    return {"id": user["id"], "name": user["name"], "avatar_url": user["avatar_url"]}


# --- Posting ----------------------------------------------------------------------------------


def test_a_text_message_is_answered_201_with_the_whole_message(client, alice, clock):
    group_id = create(client, alice)
    response = post(client, alice, group_id, "Hello, world", client_msg_id="web:1")
    assert response.status_code == 201, response.text
    assert response.json() == {
        "code": 0,
        "info": "Succeed",
        "message": {
            "id": response.json()["message"]["id"],
            "group_id": group_id,
            "seq": 1,
            "rev": 1,
            "kind": "text",
            "sender": me(client, alice),
            "text": "Hello, world",
            "client_msg_id": "web:1",
            "mentions": [],
            "media_id": None,
            "url": None,
            "size": None,
            "content_type": None,
            "filename": None,
            "created_at": "2026-11-20T08:00:00Z",
            "edited_at": None,
            "forwarded": False,
        },
    }


def test_every_message_of_a_group_takes_the_next_seq_uploads_included(client, alice, bob):
    group_id = create(client, alice)
    other = create(client, bob, "other")
    add(client, alice, group_id, "bob")
    assert posted(client, alice, group_id)["seq"] == 1
    files = {"file": ("note.txt", b"hello")}
    upload = client.post(f"/api/groups/{group_id}/upload_file", files=files, headers=bob)
    assert upload.status_code == 201, upload.text
    assert upload.json()["message"]["seq"] == 2
    assert upload.json()["message"]["kind"] == "file" and upload.json()["message"]["text"] is None
    assert posted(client, bob, group_id)["seq"] == 3
    assert posted(client, bob, other)["seq"] == 1  # each group counts on its own
    shown = listed(client, alice, group_id)["messages"]
    assert [(m["seq"], m["kind"]) for m in shown] == [(3, "text"), (2, "file"), (1, "text")]


@pytest.mark.parametrize(
    "text",
    ["x", "x" * 4000, "😀" * 4000, " ", "line one\nline two\ttab", "Ünïcödé ✓ 中文"],
    ids=["one", "4000", "4000-astral", "space", "controls", "unicode"],
)
def test_text_of_1_to_4000_characters_is_kept_as_sent(client, alice, text):
    group_id = create(client, alice)
    message = posted(client, alice, group_id, text)
    assert message["text"] == text
    assert listed(client, alice, group_id)["messages"][0]["text"] == text


@pytest.mark.parametrize(
    "raw",
    [b"a\\u0000b", b"\\u0000", b"a\\ud800b", b"\\udfff", b"\\ude00\\ud83d"],
    ids=["nul", "only-nul", "high", "low", "reversed-pair"],
)
def test_text_with_nul_or_a_lone_surrogate_is_refused_5001(client, alice, raw):
    group_id = create(client, alice)
    response = client.post(
        f"/api/groups/{group_id}/messages",
        content=b'{"text": "' + raw + b'"}',
        headers={**alice, "content-type": "application/json"},
    )
    assert_error(response, 400, 5001)
    assert response.json()["info"] == (
        "Text must be 1 to 4000 characters, without NUL or lone surrogates"
    )
    assert listed(client, alice, group_id)["messages"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "x" * 4001},
        {},
        {"text": 5},
        {"text": None},
        {"text": "hi", "client_msg_id": ""},
        {"text": "hi", "client_msg_id": "x" * 65},
        {"text": "hi", "client_msg_id": "has space"},
        {"text": "hi", "client_msg_id": 7},
        {"text": "hi", "extra": 1},
    ],
    ids=[
        "empty",
        "4001",
        "missing",
        "number",
        "null",
        "empty-id",
        "long-id",
        "id-space",
        "id-number",
        "unknown-field",
    ],
)
def test_a_body_outside_the_contract_is_refused_400(client, alice, body):
    group_id = create(client, alice)
    response = client.post(f"/api/groups/{group_id}/messages", json=body, headers=alice)
    assert response.status_code == 400, response.text
    assert response.json()["code"] in (1001, 5001)
    assert listed(client, alice, group_id)["messages"] == []


def test_only_members_post_and_a_missing_group_is_404(client, alice, bob):
    group_id = create(client, alice)
    assert_error(post(client, bob, group_id), 403, 3002)
    assert_error(post(client, bob, 987654), 404, 3001)
    response = client.post(f"/api/groups/{group_id}/messages", json={"text": "hi"})
    assert_error(response, 401, 1003)
    assert listed(client, alice, group_id)["messages"] == []


def test_a_removed_member_can_no_longer_post(client, alice, bob):
    group_id = create(client, alice)
    add(client, alice, group_id, "bob")
    posted(client, bob, group_id)
    bob_id = me(client, bob)["id"]
    assert (
        client.delete(f"/api/groups/{group_id}/members/{bob_id}", headers=alice).status_code == 200
    )
    assert_error(post(client, bob, group_id), 403, 3002)


def test_a_group_with_text_messages_is_deleted_when_its_last_member_leaves(client, alice):
    group_id = create(client, alice)
    posted(client, alice, group_id)
    client.post(
        f"/api/groups/{group_id}/upload_file", files={"file": ("a.txt", b"a")}, headers=alice
    )
    alice_id = me(client, alice)["id"]
    left = client.delete(f"/api/groups/{group_id}/members/{alice_id}", headers=alice)
    assert left.status_code == 200, left.text
    assert_error(client.get(f"/api/groups/{group_id}", headers=alice), 404, 3001)


# --- client_msg_id ----------------------------------------------------------------------------


def test_the_same_client_msg_id_again_answers_the_first_message_200(client, alice, clock):
    group_id = create(client, alice)
    first = posted(client, alice, group_id, "once", client_msg_id="m-1")
    clock.advance(seconds=5)
    again = post(client, alice, group_id, "edited text is ignored", client_msg_id="m-1")
    assert again.status_code == 200, again.text
    assert again.json() == {"code": 0, "info": "Succeed", "message": first}
    assert [m["id"] for m in listed(client, alice, group_id)["messages"]] == [first["id"]]


def test_a_client_msg_id_is_the_senders_own_in_one_group(client, alice, bob):
    group_id, other = create(client, alice), create(client, alice, "other")
    add(client, alice, group_id, "bob")
    mine = posted(client, alice, group_id, client_msg_id="same")
    bobs = posted(client, bob, group_id, client_msg_id="same")
    elsewhere = posted(client, alice, other, client_msg_id="same")
    assert len({mine["id"], bobs["id"], elsewhere["id"]}) == 3
    assert (mine["seq"], bobs["seq"], elsewhere["seq"]) == (1, 2, 1)
    # Without an id, the same text twice is two messages.
    assert posted(client, alice, group_id, "x")["id"] != posted(client, alice, group_id, "x")["id"]


# --- after_seq --------------------------------------------------------------------------------


def test_after_seq_pages_forward_oldest_first(client, alice):
    group_id = create(client, alice)
    sent = [posted(client, alice, group_id, f"m{n}")["id"] for n in range(5)]
    page = listed(client, alice, group_id, after_seq=0, limit=2)
    assert [m["seq"] for m in page["messages"]] == [1, 2] and page["next"] == "2"
    page = listed(client, alice, group_id, after_seq=page["next"], limit=2)
    assert [m["seq"] for m in page["messages"]] == [3, 4] and page["next"] == "4"
    page = listed(client, alice, group_id, after_seq=page["next"], limit=2)
    assert [m["id"] for m in page["messages"]] == [sent[4]] and page["next"] is None
    assert listed(client, alice, group_id, after_seq=5)["messages"] == []
    assert listed(client, alice, group_id, after_seq=99)["messages"] == []
    # A page exactly filled ends the paging too.
    assert listed(client, alice, group_id, after_seq=3, limit=2)["next"] is None


@pytest.mark.parametrize(
    "params", [{"after_seq": -1}, {"after_seq": "x"}], ids=["negative", "not-a-number"]
)
def test_after_seq_must_be_a_seq(client, alice, params):
    group_id = create(client, alice)
    response = client.get(f"/api/groups/{group_id}/messages", params=params, headers=alice)
    assert_error(response, 400, 1001)


def test_after_seq_and_a_cursor_together_are_refused_5002(client, alice):
    """A rule the contract's schema cannot state (two parameters that exclude each other),
    so it has a rule code: a schema-valid request refused with 1001 would be a finding."""
    group_id = create(client, alice)
    response = client.get(
        f"/api/groups/{group_id}/messages", params={"after_seq": 1, "cursor": "5"}, headers=alice
    )
    assert_error(response, 400, 5002)


def test_after_seq_is_for_members_only(client, alice, bob):
    group_id = create(client, alice)
    response = client.get(f"/api/groups/{group_id}/messages", params={"after_seq": 0}, headers=bob)
    assert_error(response, 403, 3002)


# --- Abuse limit ------------------------------------------------------------------------------


@pytest.fixture
def limited(settings):
    settings.limit_message_per_account = "3/60"
    return settings


def test_past_the_limit_per_account_posting_is_429_with_retry_after(limited, client, alice, bob):
    group_id = create(client, alice)
    add(client, alice, group_id, "bob")
    for _ in range(3):
        posted(client, alice, group_id)
    refused = post(client, alice, group_id)
    assert_error(refused, 429, 1009)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
    assert posted(client, bob, group_id)["seq"] == 4  # another account is not held back


# --- Concurrency, on a real server --------------------------------------------------------------


def _register(http: httpx.Client, name: str) -> dict:
    answer = http.post("/user/register", json={"name": name, "password": "correct horse"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _all(http: httpx.Client, headers: dict, group_id: int) -> list[dict]:
    found, after = [], 0
    while after is not None:
        page = http.get(
            f"/groups/{group_id}/messages",
            params={"after_seq": after, "limit": 100},
            headers=headers,
        ).json()
        found += page["messages"]
        after = page["next"]
    return found


def test_messages_posted_at_once_by_several_members_get_seqs_without_gaps(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        members = [_register(http, f"poster{n}") for n in range(4)]
        group_id = http.post("/groups", json={"name": "busy"}, headers=members[0]).json()["group"][
            "id"
        ]
        other_id = http.post("/groups", json={"name": "other"}, headers=members[1]).json()["group"][
            "id"
        ]
        for n in range(1, 4):
            http.post(
                f"/groups/{group_id}/members", json={"name": f"poster{n}"}, headers=members[0]
            )

        def send(job: int) -> int:
            headers = members[job % 4]
            target = other_id if job % 5 == 0 and job % 4 == 1 else group_id
            answer = http.post(
                f"/groups/{target}/messages", json={"text": f"m{job}"}, headers=headers
            )
            assert answer.status_code == 201, answer.text
            return answer.json()["message"]["seq"]

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(send, range(120)))
        shown = _all(http, members[0], group_id)
        elsewhere = _all(http, members[1], other_id)
    assert [m["seq"] for m in shown] == list(range(1, len(shown) + 1))
    assert [m["seq"] for m in elsewhere] == list(range(1, len(elsewhere) + 1))
    assert len(shown) + len(elsewhere) == 120
    assert sorted(m["text"] for m in shown + elsewhere) == sorted(f"m{j}" for j in range(120))
    # Seqs follow the order the messages were made in.
    assert [m["id"] for m in shown] == sorted(m["id"] for m in shown)


def test_one_client_msg_id_sent_many_times_at_once_makes_one_message(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        alice = _register(http, "alice")
        group_id = http.post("/groups", json={"name": "g"}, headers=alice).json()["group"]["id"]

        def send(job: int) -> tuple[int, int, int]:
            answer = http.post(
                f"/groups/{group_id}/messages",
                json={"text": f"try {job}", "client_msg_id": f"retry-{job % 3}"},
                headers=alice,
            )
            assert answer.status_code in (200, 201), answer.text
            message = answer.json()["message"]
            return answer.status_code, message["id"], message["seq"]

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(send, range(48)))
        shown = _all(http, alice, group_id)
    assert len(shown) == 3
    assert [m["seq"] for m in shown] == [1, 2, 3]
    assert sorted(m["client_msg_id"] for m in shown) == ["retry-0", "retry-1", "retry-2"]
    assert [status for status, *_ in answers].count(201) == 3
    by_client_id = {m["client_msg_id"]: m["id"] for m in shown}
    for job, (_, message_id, _) in enumerate(answers):
        assert message_id == by_client_id[f"retry-{job % 3}"]
