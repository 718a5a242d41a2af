"""Media on an S3-compatible store (IM_MEDIA_URL=s3://...): a real endpoint (moto's server
mode) reached through a proxy that can refuse, hang or cut connections.

Whatever `IM_TEST_MEDIA_STORE` says, these tests keep media on S3; the rest of the suite
runs on either store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import httpx
import media_samples as samples
import pytest
from pony.orm import db_session
from s3_endpoint import FaultyProxy

from models import stores
from models.entities import Media, Message

MB = 1024 * 1024
STORE_UNAVAILABLE = 4015


@pytest.fixture
def bucket(s3) -> str:
    return s3.new_bucket()


@pytest.fixture
def proxy(s3):
    proxy = FaultyProxy(s3.port)
    yield proxy
    proxy.stop()


@pytest.fixture
def media_url(s3, bucket, proxy) -> str:
    """The store of every app and server of these tests: the bucket, through the proxy."""
    return s3.media_url(bucket, prefix="media", endpoint=proxy.url)


@pytest.fixture
def settings(settings):
    # A store that fails is given up on quickly.
    settings.media_timeout = 1.0
    settings.media_attempts = 1
    return settings


@pytest.fixture
def alice(auth):
    return auth.new_user("alice")


@pytest.fixture
def group_id(client, alice):
    return new_group(client, alice)


def new_group(client, headers) -> int:
    response = client.post("/api/groups", json={"name": "Weekend hiking"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["group"]["id"]


def upload(client, headers, group_id, kind, filename, content):
    files = {kind: (filename, content, "application/octet-stream")}
    return client.post(f"/api/groups/{group_id}/upload_{kind}", files=files, headers=headers)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def assert_store_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == {"code", "info", "request_id"} and body["code"] == STORE_UNAVAILABLE, body


def rows() -> tuple[int, int]:
    with db_session:
        return Media.select().count(), Message.select().count()


def spools(settings) -> list:
    incoming = settings.media_dir / ".incoming"
    return list(incoming.iterdir()) if incoming.exists() else []


def leave(client, headers, group_id):
    me = client.get("/api/user/me", headers=headers).json()["user"]["id"]
    return client.delete(f"/api/groups/{group_id}/members/{me}", headers=headers)


# --- Where uploads go ----------------------------------------------------------------------


def test_uploads_land_in_the_bucket_under_their_hash_once_per_content(
    client, alice, group_id, settings, s3, bucket
):
    """POST /groups/{id}/upload_*: one object per content, `<prefix>/<sha256>`, nothing in the
    instance folder but the (empty) spool folder."""
    image, other = samples.png(), samples.pdf()
    for kind, name, content in [("image", "a.png", image), ("file", "b.png", image)]:
        assert upload(client, alice, group_id, kind, name, content).status_code == 201
    assert upload(client, alice, group_id, "file", "c.pdf", other).status_code == 201
    assert s3.keys(bucket) == sorted([f"media/{sha(image)}", f"media/{sha(other)}"])
    assert s3.read(bucket, f"media/{sha(image)}") == image
    assert sorted(p.name for p in settings.media_dir.iterdir()) == [".incoming"]
    assert spools(settings) == [] and s3.unfinished_uploads(bucket) == []


def test_a_refused_upload_puts_nothing_in_the_bucket(client, auth, alice, group_id, s3, bucket):
    assert upload(client, alice, group_id, "image", "x.svg", samples.SVG).status_code == 415
    mallory = auth.new_user("mallory")
    assert upload(client, mallory, group_id, "image", "x.png", samples.png()).status_code == 403
    assert s3.keys(bucket) == [] and s3.unfinished_uploads(bucket) == []


def test_a_failure_after_the_object_was_stored_removes_it(
    client, alice, group_id, s3, bucket, monkeypatch
):
    """The object is written before the commit; when the rest fails, it goes again."""
    from models import messages

    def broken_post(*args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(messages, "post", broken_post)
    assert upload(client, alice, group_id, "image", "a.png", samples.png()).status_code == 500
    assert s3.keys(bucket) == [] and rows() == (0, 0)


def test_the_object_goes_with_the_last_row_that_names_it(client, alice, s3, bucket):
    """DELETE /groups/{id}/members/{me} by the last member deletes the group's messages and
    media; the object stays while another group's message still shows the same bytes."""
    content = samples.png()
    first, second = new_group(client, alice), new_group(client, alice)
    upload(client, alice, first, "image", "a.png", content)
    kept = upload(client, alice, second, "image", "b.png", content).json()["url"]
    assert leave(client, alice, first).status_code == 200
    assert s3.keys(bucket) == [f"media/{sha(content)}"]
    assert client.get(kept).content == content
    assert leave(client, alice, second).status_code == 200
    assert s3.keys(bucket) == []


def test_a_media_row_whose_object_is_gone_is_404(client, alice, group_id, s3, bucket):
    url = upload(client, alice, group_id, "image", "a.png", samples.png()).json()["url"]
    s3.client.delete_object(Bucket=bucket, Key=f"media/{sha(samples.png())}")
    response = client.get(url)
    assert response.status_code == 404 and response.json()["code"] == 4006


# --- Downloads -----------------------------------------------------------------------------


def test_a_range_is_read_from_the_store_not_the_whole_object(client, alice, group_id, proxy):
    """GET /media/{id} with Range, and HEAD: only the range, or nothing but headers, comes
    back from the store."""
    content = os.urandom(4 * MB)
    url = upload(client, alice, group_id, "file", "big.bin", content).json()["url"]
    proxy.upstream_bytes = 0
    response = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert response.status_code == 206 and response.content == content[1000:2000]
    assert proxy.upstream_bytes < 64 * 1024
    proxy.upstream_bytes = 0
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(content))
    assert proxy.upstream_bytes < 64 * 1024
    whole = client.get(url)
    assert whole.content == content and whole.headers["etag"] == f'"{sha(content)}"'


def test_the_store_streams_a_range_as_async_chunks(app, settings):
    """The interface an ASGI-side streamer uses: opened and read in a thread, chunk by chunk."""
    content = os.urandom(3 * MB + 5)
    store = stores.for_settings(settings)
    with db_session:
        from models.spool import Spool

        spool = Spool()
        spool.write(content)
        spool.close()
        store.prepare(spool)
        store.place(spool)

    async def read(start: int, length: int) -> list[bytes]:
        chunks = await asyncio.to_thread(store.open, sha(content), start, length)
        return [chunk async for chunk in stores.async_chunks(chunks)]

    parts = asyncio.run(read(10, 2 * MB))
    assert b"".join(parts) == content[10 : 10 + 2 * MB]
    assert len(parts) > 1 and max(len(part) for part in parts) <= stores.CHUNK


# --- A store that fails ----------------------------------------------------------------------


def test_an_upload_while_the_store_refuses_connections_is_503_and_keeps_nothing(
    client, alice, group_id, settings, s3, bucket, proxy
):
    proxy.mode = "refuse"
    assert_store_unavailable(upload(client, alice, group_id, "image", "a.png", samples.png()))
    assert rows() == (0, 0) and spools(settings) == []
    proxy.mode = "pass"
    assert s3.keys(bucket) == []
    # The store is back: the same upload goes through.
    assert upload(client, alice, group_id, "image", "a.png", samples.png()).status_code == 201


def test_an_upload_to_a_store_that_hangs_is_503_once_the_timeout_passes(
    client, alice, group_id, settings, s3, bucket, proxy
):
    """IM_MEDIA_TIMEOUT (1 s here) bounds each call; botocore's own default is 60 s."""
    proxy.mode = "stall"
    started = time.monotonic()
    assert_store_unavailable(upload(client, alice, group_id, "image", "a.png", samples.png()))
    assert time.monotonic() - started < 20
    assert rows() == (0, 0) and spools(settings) == []
    proxy.mode = "pass"
    assert s3.keys(bucket) == []


def test_a_download_from_a_store_that_hangs_is_503_once_the_timeout_passes(
    client, alice, group_id, proxy
):
    url = upload(client, alice, group_id, "image", "a.png", samples.png()).json()["url"]
    proxy.mode = "stall"
    started = time.monotonic()
    assert_store_unavailable(client.get(url))
    assert time.monotonic() - started < 20


def test_an_upload_cut_off_midway_leaves_no_object_and_no_row(
    client, alice, group_id, settings, s3, bucket, proxy
):
    """A 12 MB file goes up in parts; the connection dies 9 MB in. The multipart upload is
    aborted: no object, no unfinished upload, no row."""
    proxy.cut_after(9 * MB)
    content = os.urandom(12 * MB)
    assert_store_unavailable(upload(client, alice, group_id, "file", "big.bin", content))
    assert rows() == (0, 0) and spools(settings) == []
    assert s3.keys(bucket) == [] and s3.unfinished_uploads(bucket) == []


def test_a_download_while_the_store_is_down_is_503(client, alice, group_id, proxy):
    url = upload(client, alice, group_id, "image", "a.png", samples.png()).json()["url"]
    etag = client.get(url).headers["etag"]
    proxy.mode = "refuse"
    assert_store_unavailable(client.get(url))
    assert_store_unavailable(client.get(url, headers={"Range": "bytes=0-9"}))
    assert_store_unavailable(client.get(url, headers={"If-None-Match": etag}))
    proxy.mode = "pass"
    assert client.get(url).content == samples.png()


def test_leaving_a_group_while_the_store_is_down_is_503_and_changes_nothing(
    client, alice, group_id, s3, bucket, proxy
):
    """The last member leaving deletes the group's objects; if the store cannot, nothing is
    deleted: the group, its message and the object all stay."""
    url = upload(client, alice, group_id, "image", "a.png", samples.png()).json()["url"]
    proxy.mode = "refuse"
    assert_store_unavailable(leave(client, alice, group_id))
    proxy.mode = "pass"
    assert rows() == (1, 1)
    assert client.get(f"/api/groups/{group_id}/messages", headers=alice).status_code == 200
    assert s3.keys(bucket) == [f"media/{sha(samples.png())}"]
    assert client.get(url).content == samples.png()


def test_a_download_cut_off_by_the_store_ends_short_and_the_server_goes_on(live_server, proxy):
    """Once the status line is sent, a store lost mid-way can only end the response early:
    the client sees fewer bytes than Content-Length, never a silently short file."""
    base = live_server.url
    token = httpx.post(f"{base}/user/register", json={"name": "alice", "password": "123456"})
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    group = httpx.post(f"{base}/groups", json={"name": "g"}, headers=headers).json()["group"]
    content = os.urandom(6 * MB)
    sent = httpx.post(
        f"{base}/groups/{group['id']}/upload_file",
        files={"file": ("big.bin", content)},
        headers=headers,
        timeout=60,
    )
    assert sent.status_code == 201, sent.text
    url = base.removesuffix("/api") + sent.json()["url"]
    proxy.cut_after(2 * MB, towards_store=False)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, timeout=30)
    fetched = httpx.get(url, timeout=30)
    assert fetched.status_code == 200 and fetched.content == content
