"""Two machines in miniature (DESIGN.md, "Several machines"): two `im-api serve` processes,
each with its own instance folder, sharing only the PostgreSQL database, one S3 bucket and
the signing keys.

Runs when the suite runs on PostgreSQL (`IM_TEST_DATABASE_URL=postgresql://...`): SQLite
is one machine's database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Iterator

import httpx
import media_samples as samples
import pytest
from websockets.sync.client import ClientConnection, connect


@pytest.fixture
def two_servers(tmp_path, served_database, s3, new_server):
    database_url = served_database
    if not database_url.startswith("postgres"):
        pytest.skip("two servers share a PostgreSQL database (IM_TEST_DATABASE_URL)")
    bucket = s3.new_bucket()
    shared = {
        "IM_MEDIA_URL": s3.media_url(bucket, prefix="media"),
        "IM_SECRET_KEYS": secrets.token_urlsafe(32),
    }
    one = new_server(tmp_path / "one" / "instance", database_url, **shared).start()
    two = new_server(tmp_path / "two" / "instance", database_url, **shared).start()
    return one, two, bucket


def test_an_upload_through_one_server_is_fetched_and_deleted_through_the_other(two_servers, s3):
    one, two, bucket = two_servers
    registered = httpx.post(
        f"{one.url}/user/register", json={"name": "alice", "password": "123456"}
    )
    assert registered.status_code == 200, registered.text
    # A token from one server works on the other: same database, same keys.
    alice = {"Authorization": f"Bearer {registered.json()['token']}"}
    group = httpx.post(f"{two.url}/groups", json={"name": "g"}, headers=alice).json()["group"]

    content = samples.png()
    sent = httpx.post(
        f"{one.url}/groups/{group['id']}/upload_image",
        files={"image": ("a.png", content)},
        headers=alice,
    )
    assert sent.status_code == 201, sent.text
    listed = httpx.get(f"{two.url}/groups/{group['id']}/messages", headers=alice).json()
    assert [m["id"] for m in listed["messages"]] == [sent.json()["message_id"]]

    media_path = sent.json()["url"]
    fetched = httpx.get(two.url.removesuffix("/api") + media_path)
    assert fetched.status_code == 200 and fetched.content == content
    assert fetched.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    part = httpx.get(two.url.removesuffix("/api") + media_path, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == content[:8]

    # The same bytes through the other server: one object.
    again = httpx.post(
        f"{two.url}/groups/{group['id']}/upload_file",
        files={"file": ("b.png", content)},
        headers=alice,
    )
    assert again.status_code == 201, again.text
    assert s3.keys(bucket) == [f"media/{hashlib.sha256(content).hexdigest()}"]
    for server in (one, two):
        media_dir = server.log.parent / "instance" / "media"
        assert [p.name for p in media_dir.iterdir() if not p.name.startswith(".")] == []

    # The last member leaves through the first server: rows and object go.
    me = httpx.get(f"{one.url}/user/me", headers=alice).json()["user"]["id"]
    left = httpx.delete(f"{one.url}/groups/{group['id']}/members/{me}", headers=alice)
    assert left.status_code == 200, left.text
    assert s3.keys(bucket) == []
    gone = httpx.get(two.url.removesuffix("/api") + media_path)
    assert gone.status_code == 404 and gone.json()["code"] == 4006


@contextlib.contextmanager
def open_socket(server, user_id: int, token: str) -> Iterator[ClientConnection]:
    """A synced socket of `user_id` on `server` (Bearer on the upgrade), past its `ready`."""
    address = server.url.replace("http://", "ws://", 1) + f"/ws/user/{user_id}/"
    with connect(address, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        # No positions: nothing is replayed, live events flow from here on.
        socket.send(json.dumps({"type": "sync", "since": {}}))
        assert next_frame(socket)["type"] == "ready"
        yield socket


def next_frame(socket: ClientConnection, timeout: float = 10) -> dict:
    # Within 10 s on a busy machine: NOTIFY to the other process is milliseconds.
    return json.loads(socket.recv(timeout=timeout))


def test_a_message_posted_on_one_server_reaches_the_sockets_on_both(two_servers):
    """LISTEN/NOTIFY joins the processes: a text posted through one server and an upload
    through the other each reach a member's socket on either server, in seq order."""
    one, two, _ = two_servers
    tokens, ids = {}, {}
    for name, server in (("alice", one), ("bob", two)):
        answer = httpx.post(
            f"{server.url}/user/register", json={"name": name, "password": "123456"}
        )
        assert answer.status_code == 200, answer.text
        tokens[name], ids[name] = answer.json()["token"], answer.json()["user"]["id"]
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    group = httpx.post(f"{one.url}/groups", json={"name": "g"}, headers=alice).json()["group"]
    added = httpx.post(
        f"{one.url}/groups/{group['id']}/members", json={"name": "bob"}, headers=alice
    )
    assert added.status_code == 200, added.text

    with (
        open_socket(one, ids["alice"], tokens["alice"]) as on_one,
        open_socket(two, ids["bob"], tokens["bob"]) as on_two,
    ):
        text = httpx.post(
            f"{one.url}/groups/{group['id']}/messages", json={"text": "hello"}, headers=alice
        )
        assert text.status_code == 201, text.text
        upload = httpx.post(
            f"{two.url}/groups/{group['id']}/upload_image",
            files={"image": ("a.png", samples.png())},
            headers=bob,
        )
        assert upload.status_code == 201, upload.text

        for socket in (on_one, on_two):
            # member.added came before the sockets opened: the first live frames are these.
            first, second = next_frame(socket), next_frame(socket)
            assert first["type"] == second["type"] == "message.created", (first, second)
            assert first["message"]["id"] == text.json()["message"]["id"]
            assert (first["message"]["kind"], first["message"]["text"]) == ("text", "hello")
            assert first["message"]["sender"]["id"] == ids["alice"]
            assert second["message"]["id"] == upload.json()["message_id"]
            assert (second["message"]["kind"], second["message"]["text"]) == ("image", None)
            assert second["message"]["sender"]["id"] == ids["bob"]
            assert [first["message"]["seq"], second["message"]["seq"]] == [1, 2]
            assert {first["message"]["group_id"], second["message"]["group_id"]} == {group["id"]}
