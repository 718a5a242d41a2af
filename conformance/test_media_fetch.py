"""Fetching media back: GET and HEAD of a signed URL.

Spec: GET /media/{media_id} (its 200 and 206 headers: ETag, Content-Disposition,
Accept-Ranges, X-Content-Type-Options, Content-Security-Policy, Cache-Control), and HTTP's
HEAD, which answers a GET's headers without its body; the `url` of a message (MediaUrl),
the same for a while.
"""

from __future__ import annotations

import time

from conformance import media
from conformance.target import bearer

SAME_HEADERS = (
    "content-type",
    "content-length",
    "etag",
    "content-disposition",
    "accept-ranges",
    "x-content-type-options",
    "content-security-policy",
)


def upload(api, users) -> tuple[dict, int, str]:
    """A fresh upload: its owner's headers, its group's id, and its signed `url`."""
    owner = users.register()
    headers = bearer(owner["token"])
    group = api.post("/groups", json={"name": "Media"}, headers=headers).json()["group"]
    uploaded = api.post(
        f"/groups/{group['id']}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    return headers, group["id"], uploaded.json()["url"]


def uploaded_url(api, users) -> str:
    """The signed URL of a fresh upload, relative to the API's base URL."""
    return upload(api, users)[2].removeprefix("/api")


def test_head_of_a_media_url_answers_the_get_headers_without_a_body(api, users):
    """HEAD /api/media/{media_id}: 200 with exactly the headers GET answers, and no body."""
    url = uploaded_url(api, users)

    got, head = api.get(url), api.head(url)

    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    for name in SAME_HEADERS:
        assert head.headers.get(name) == got.headers.get(name), name
    assert head.headers["content-length"] == str(len(media.PNG))


def test_a_range_of_a_media_url_is_206_with_those_bytes(api, users):
    """GET /api/media/{media_id} with `Range: bytes=1-4`: 206, `Content-Range`, 4 bytes."""
    url = uploaded_url(api, users)

    part = api.get(url, headers={"Range": "bytes=1-4"})

    assert part.status_code == 206, part.text
    assert part.content == media.PNG[1:5]
    assert part.headers["content-range"] == f"bytes 1-4/{len(media.PNG)}"


def test_a_message_keeps_its_media_url_from_one_read_to_the_next(api, users):
    """GET /groups/{group_id}/messages (MediaUrl): the `url` the upload answered, again on a
    read seconds later (signatures count whole seconds), so a browser reuses its copy."""
    headers, group_id, url = upload(api, users)

    time.sleep(1.1)
    listed = api.get(f"/groups/{group_id}/messages", headers=headers)

    assert listed.status_code == 200, listed.text
    assert listed.json()["messages"][0]["url"] == url


def test_a_media_url_may_be_reused_by_the_browser_but_no_shared_cache(api, users):
    """GET /media/{media_id}: `Cache-Control: private, max-age=N`, N > 0, the same on its
    304; no `no-cache` or `no-store`."""
    url = uploaded_url(api, users)

    got = api.get(url)
    again = api.get(url, headers={"If-None-Match": got.headers["etag"]})

    assert (got.status_code, again.status_code) == (200, 304)
    for response in (got, again):
        directives = [d.strip() for d in response.headers["cache-control"].split(",")]
        assert directives[0] == "private" and len(directives) == 2, directives
        assert directives[1].startswith("max-age="), directives
        assert int(directives[1].removeprefix("max-age=")) > 0, directives
