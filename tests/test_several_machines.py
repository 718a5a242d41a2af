"""Two machines in miniature (DESIGN.md, "Several machines"): two `im-api serve` processes,
each with its own instance folder, sharing only the PostgreSQL database, one S3 bucket and
the signing keys.

Runs when the suite runs on PostgreSQL (`IM_TEST_DATABASE_URL=postgresql://...`): SQLite
is one machine's database.
"""

from __future__ import annotations

import hashlib
import secrets

import httpx
import media_samples as samples
import pytest


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
