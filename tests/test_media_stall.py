"""A media store that stops answering holds only the requests that need it.

A real `im-api serve` (one worker: the request threads are the process's) with its media in
a real S3 endpoint (moto) reached through a proxy that stalls on demand: connections are
accepted and never answered, as a bucket whose endpoint hangs.
"""

from __future__ import annotations

import threading
import time

import httpx
from raw_http import bearer, register
from s3_endpoint import FaultyProxy


def test_a_stalled_store_leaves_every_other_request_answered(serve, s3):
    """12 uploads from 4 accounts while the store hangs: they wait and answer their
    documented 503 (4015 once the store times out, or 1013 for no free media thread), while
    /api/health and /api/user/me answer 200 meanwhile (before: every request thread held an
    upload, and both answered 503 after IM_QUEUE_TIMEOUT)."""
    proxy = FaultyProxy(s3.port)
    bucket = s3.new_bucket()
    server = serve(
        workers=1,
        IM_MEDIA_URL=s3.media_url(bucket, "media", endpoint=proxy.url),
        IM_MEDIA_TIMEOUT="4",
        IM_MEDIA_ATTEMPTS="1",
        IM_QUEUE_TIMEOUT="2",
    )
    accounts = []
    for n in range(4):
        token = register(server.url, f"stalled{n}")
        group = httpx.post(f"{server.url}/groups", json={"name": "g"}, headers=bearer(token))
        accounts.append((token, group.json()["group"]["id"]))
    proxy.mode = "stall"
    answers: list[httpx.Response] = []

    def upload(token: str, group_id: int, n: int) -> None:
        answers.append(
            httpx.post(
                f"{server.url}/groups/{group_id}/upload_file",
                files={"file": (f"f{n}.bin", f"contents {n} {token[-6:]}".encode())},
                headers=bearer(token),
                timeout=60,
            )
        )

    uploads = [
        threading.Thread(target=upload, args=(token, group_id, n))
        for token, group_id in accounts
        for n in range(3)
    ]
    try:
        for thread in uploads:
            thread.start()
        time.sleep(1)  # every upload is in: waiting on the store, or for its turn
        health = httpx.get(f"{server.url}/health", timeout=30)
        me = httpx.get(f"{server.url}/user/me", headers=bearer(accounts[0][0]), timeout=30)
        for thread in uploads:
            thread.join(60)
    finally:
        proxy.stop()

    assert health.status_code == 200, health.text
    assert me.status_code == 200, me.text
    assert len(answers) == 12
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] in (4015, 1013), answer.text
