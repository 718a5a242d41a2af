"""Fetching media back: GET and HEAD of a signed URL.

Spec: GET /media/{media_id} (its 200 and 206 headers: ETag, Content-Disposition,
Accept-Ranges, X-Content-Type-Options, Content-Security-Policy), and HTTP's HEAD, which
answers a GET's headers without its body.
"""

from __future__ import annotations

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


def uploaded_url(api, users) -> str:
    """The signed URL of a fresh upload, relative to the API's base URL."""
    owner = users.register()
    headers = bearer(owner["token"])
    group = api.post("/groups", json={"name": "Media"}, headers=headers).json()["group"]
    uploaded = api.post(
        f"/groups/{group['id']}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["url"].removeprefix("/api")


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
