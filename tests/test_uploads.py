"""The streaming multipart validator (im_api.uploads): framing errors, parts, and limits."""

from __future__ import annotations

import asyncio

import media_samples as samples
import pytest

from im_api.uploads import RECEIVED, MultipartUploadValidator, file_part
from im_core.errors import ApiError, Error
from models.spool import INCOMING

IMAGE_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {"image": {"type": "string", "format": "binary"}},
}


@pytest.fixture
def alice(auth):
    return auth.new_user("alice")


@pytest.fixture
def group_id(client, alice):
    return client.post("/api/groups", json={"name": "g"}, headers=alice).json()["group"]["id"]


def spools(settings) -> list:
    incoming = settings.media_dir / INCOMING
    return list(incoming.iterdir()) if incoming.exists() else []


def post_raw(client, headers, group_id, body: bytes, content_type: str):
    return client.post(
        f"/api/groups/{group_id}/upload_image",
        content=body,
        headers={**headers, "content-type": content_type},
    )


IMAGE = samples.file_part("image", b"a.png", samples.png())
TEXT_IMAGE = (b'Content-Disposition: form-data; name="image"', b"just text")
OTHER = (b'Content-Disposition: form-data; name="id"', b"3")
CT = "multipart/form-data; boundary=pytest-boundary-7d3a"


@pytest.mark.parametrize(
    "body, content_type, status, code",
    [
        (samples.multipart([IMAGE])[0], "multipart/form-data", 400, 1002),  # no boundary
        (b"this is not multipart at all", CT, 400, 1002),
        (samples.multipart([IMAGE])[0][:-30], CT, 400, 1002),  # cut before the end
        (
            b"--pytest-boundary-7d3a\r\nX-Other: 1\r\n\r\nabc\r\n--pytest-boundary-7d3a--\r\n",
            CT,
            400,
            1002,
        ),
        (
            b'--pytest-boundary-7d3a\r\nContent-Disposition: form-data; name="image"; '
            b'filename="' + b"a" * 9000 + b'"\r\n\r\nabc\r\n--pytest-boundary-7d3a--\r\n',
            CT,
            400,
            1002,
        ),  # a part header past 8 KiB
        (b"", CT, 400, 4001),  # no body at all
        (b"--pytest-boundary-7d3a--\r\n", CT, 400, 4001),  # no part
        (samples.multipart([TEXT_IMAGE])[0], CT, 400, 4001),  # a text field, not a file
        (samples.multipart([samples.file_part("image", b"", b"")])[0], CT, 400, 4001),
        (samples.multipart([OTHER, IMAGE])[0], CT, 400, 1001),
        (samples.multipart([IMAGE, OTHER])[0], CT, 400, 1001),
        (samples.multipart([IMAGE, IMAGE])[0], CT, 400, 1001),
        (samples.multipart([IMAGE])[0], "application/json", 415, 1008),
        (samples.multipart([IMAGE])[0], "text/plain", 415, 1008),
    ],
)
def test_a_bad_multipart_body_is_refused_in_the_envelope_and_leaves_no_spool(
    client, alice, group_id, settings, body, content_type, status, code
):
    response = post_raw(client, alice, group_id, body, content_type)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    # A 1001 also names the offending part (`errors`).
    named = {"errors"} if code == 1001 else set()
    assert set(response.json()) == {"code", "info", "request_id"} | named
    assert spools(settings) == []


def test_an_epilogue_is_ignored_but_a_preamble_is_malformed(client, alice, group_id):
    """python-multipart reads no preamble (RFC 2046 allows one; no browser sends one)."""
    body, content_type = samples.multipart([IMAGE])
    response = post_raw(client, alice, group_id, body + b"epilogue\r\n", content_type)
    assert response.status_code == 201, response.text
    response = post_raw(client, alice, group_id, b"preamble\r\n" + body, content_type)
    assert response.status_code == 400 and response.json()["code"] == 1002


def test_an_empty_file_with_a_name_is_a_file(client, alice, group_id):
    body, content_type = samples.multipart([samples.file_part("file", b"empty.txt", b"")])
    response = client.post(
        f"/api/groups/{group_id}/upload_file",
        content=body,
        headers={**alice, "content-type": content_type},
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"]["size"] == 0


def test_the_part_names_the_limit(app):
    assert file_part(IMAGE_SCHEMA) == "image"
    with pytest.raises(ValueError):
        file_part({"properties": {"a": {"type": "string"}}})


def _validator() -> MultipartUploadValidator:
    return MultipartUploadValidator(schema=IMAGE_SCHEMA, encoding="utf-8", strict_validation=True)


def _scope(content_type: str = CT) -> dict:
    return {
        "type": "http",
        "path": "/api/groups/1/upload_image",
        "headers": [(b"content-type", content_type.encode()), (b"transfer-encoding", b"chunked")],
    }


def test_the_validator_stops_reading_at_the_limit(app, settings):
    """It reads no further than the chunk that passes the limit, and drops what it spooled."""
    settings.max_image_bytes = 100_000
    chunk = b"\x00" * 16_384
    read = 0
    head = (
        b"--pytest-boundary-7d3a\r\n"
        b'Content-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
    )

    async def endless():
        nonlocal read
        body = head if read == 0 else chunk
        read += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    with pytest.raises(ApiError) as refused:
        asyncio.run(_validator().wrap_receive(endless, scope=_scope()))
    assert refused.value.error is Error.MEDIA_TOO_LARGE
    assert refused.value.info == "[image] too large: the limit is 100000 bytes"
    assert 100_000 < read - len(head) <= 100_000 + len(chunk)
    assert spools(settings) == []


def test_the_validator_hands_the_spool_over_and_flask_gets_no_body(app, settings):
    body, content_type = samples.multipart([IMAGE])
    messages = [
        {"type": "http.request", "body": body[i : i + 100], "more_body": i + 100 < len(body)}
        for i in range(0, len(body), 100)
    ]

    async def receive():
        return messages.pop(0)

    async def run():
        receive_after, scope = await _validator().wrap_receive(receive, scope=_scope(content_type))
        return await receive_after(), scope

    first, scope = asyncio.run(run())
    assert first == {"type": "http.request", "body": b"", "more_body": False}
    headers = dict(scope["headers"])
    assert headers[b"content-length"] == b"0" and b"transfer-encoding" not in headers
    upload = scope[RECEIVED]
    assert (upload.part, upload.filename) == ("image", "a.png")
    assert upload.spool.path.read_bytes() == samples.png()
    assert upload.spool.size == len(samples.png())
    upload.spool.discard()
    assert spools(settings) == []
