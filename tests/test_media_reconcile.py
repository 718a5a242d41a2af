"""Stored media that no row names, as a server killed (kill -9) between placing an upload's
file and committing its row leaves it: removed after a grace period, by `im-api
reconcile-media` and as `im-api serve` starts; a file a committed row names is never touched.

Against real servers and the real stores: the instance folder, and a bucket of a real S3
endpoint (moto). The leftovers are made as a crash leaves them: a file (or object) under a
hash, with no row.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import httpx
from raw_http import bearer, register, wait_until

from conftest import NO_LIMITS

HOUR = 3600


def upload(server, token: str, content: bytes) -> str:
    """Uploads `content` as a file into a new group of the token's user; its hash."""
    group = httpx.post(f"{server.url}/groups", json={"name": "g"}, headers=bearer(token))
    answer = httpx.post(
        f"{server.url}/groups/{group.json()['group']['id']}/upload_file",
        files={"file": ("kept.bin", content)},
        headers=bearer(token),
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return hashlib.sha256(content).hexdigest()


def leftover(folder, content: bytes, age: float = 0) -> str:
    """A file placed under its hash in the media folder, `age` seconds old, with no row."""
    sha256 = hashlib.sha256(content).hexdigest()
    path = folder / sha256
    path.write_bytes(content)
    then = time.time() - age
    os.utime(path, (then, then))
    return sha256


def reconcile_media(server, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "im_api.cli", "reconcile-media"],
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reconcile_media_removes_old_files_no_row_names_and_nothing_else(serve):
    """`im-api reconcile-media`: a file with no row older than IM_MEDIA_ORPHAN_GRACE goes; a
    newer one stays (its upload may be about to commit), and so does an old file a row
    names."""
    server = serve(IM_MEDIA_URL="")
    folder = server.instance_dir / "media"
    kept = upload(server, register(server.url, "reconciled"), b"a file its row names")
    aged = time.time() - 2 * HOUR
    os.utime(folder / kept, (aged, aged))
    orphan = leftover(folder, b"left by kill -9", age=2 * HOUR)
    recent = leftover(folder, b"an upload about to commit")

    done = reconcile_media(server, IM_MEDIA_ORPHAN_GRACE=str(HOUR))

    assert done.returncode == 0, done.stderr
    assert not (folder / orphan).exists()
    assert (folder / recent).exists()
    assert (folder / kept).read_bytes() == b"a file its row names"
    assert "1 removed" in done.stdout, done.stdout
    fetched = httpx.get(f"{server.url}/health")
    assert fetched.status_code == 200


def test_serve_removes_such_files_as_it_starts(new_server, tmp_path, served_database):
    """IM_RECONCILE_MEDIA_ON_START (default true): `im-api serve` removes an old file no row
    names soon after it starts, and keeps the one a row names."""
    instance = tmp_path / "server" / "instance"
    first = new_server(instance, served_database, **NO_LIMITS).start()
    kept = upload(first, register(first.url, "before_crash"), b"named by a row")
    first.stop()
    folder = instance / "media"
    aged = time.time() - 2 * HOUR
    os.utime(folder / kept, (aged, aged))
    orphan = leftover(folder, b"left by a crash", age=2 * HOUR)

    new_server(instance, served_database, **NO_LIMITS).start()

    assert wait_until(lambda: not (folder / orphan).exists(), timeout=30)
    assert (folder / kept).exists()


def test_reconcile_media_on_s3_removes_objects_no_row_names(serve, s3):
    """The same in an S3 bucket: with IM_MEDIA_ORPHAN_GRACE=0 an object with no row goes and
    the uploaded one stays; with the default grace a fresh leftover stays."""
    bucket = s3.new_bucket()
    server = serve(IM_MEDIA_URL=s3.media_url(bucket, "media"), IM_RECONCILE_MEDIA_ON_START="false")
    kept = upload(server, register(server.url, "in_a_bucket"), b"an object its row names")
    orphan = hashlib.sha256(b"an object left by kill -9").hexdigest()
    s3.client.put_object(Bucket=bucket, Key=f"media/{orphan}", Body=b"an object left by kill -9")

    fresh = reconcile_media(server)
    assert fresh.returncode == 0, fresh.stderr
    assert f"media/{orphan}" in s3.keys(bucket, "media/")

    done = reconcile_media(server, IM_MEDIA_ORPHAN_GRACE="0")
    assert done.returncode == 0, done.stderr
    assert s3.keys(bucket, "media/") == [f"media/{kept}"]
