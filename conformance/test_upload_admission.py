"""Uploads are judged on their headers: a refused one is answered before its body is sent.

Spec: info "Conventions" (uploads are judged on their headers first: token, session, group,
membership and declared size are checked before a byte of the body is read) and the 401,
403, 404 and 413 responses of POST /groups/{group_id}/upload_* and POST /user/change_image.
Only a live server can be asked with headers alone (in-process, the test client sends whole
bodies).
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from conformance.target import TIMEOUT, bearer

LENGTH = 1024 * 1024  # under every kind's limit but the sticker's: the size is not the issue


@pytest.fixture
def live(target):
    if not target.is_live:
        pytest.skip("needs a live server (IM_CONFORMANCE_URL): the test client sends bodies")
    url = urlsplit(target.base_url)
    if url.scheme != "http":
        pytest.skip("raw requests are plain HTTP")
    return url


def headers_only(url, path: str, token: str | None, length: int = LENGTH) -> tuple[int, dict]:
    """Sends the request line and headers of a multipart upload, never its body; returns the
    status and JSON body of the answer, which must come without the body; the body less the
    `request_id` every error envelope carries, which must be the answer's `X-Request-ID`."""
    lines = [
        f"POST {url.path}{path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Content-Type: multipart/form-data; boundary=never-sent",
        f"Content-Length: {length}",
    ]
    if token is not None:
        lines.append(f"Authorization: {bearer(token)['Authorization']}")
    with socket.create_connection((url.hostname, url.port or 80), timeout=TIMEOUT) as raw:
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = raw.recv(65536)
            assert chunk, f"closed without an answer: {data!r}"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        declared = [
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        ]
        assert declared, f"no Content-Length in the answer: {head!r}"
        while len(body) < declared[0]:
            chunk = raw.recv(65536)
            assert chunk, "closed in the middle of the answer"
            body += chunk
    answer = json.loads(body)
    request_ids = [
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"x-request-id:")
    ]
    assert answer.pop("request_id", None) == (request_ids[0] if request_ids else None), head
    return status, answer


def test_upload_file_with_an_ended_session_is_401_before_the_body(live, api, users):
    """POST /api/groups/{group_id}/upload_file after logout: 401, 1004, on the headers alone."""
    account = users.register()
    group = api.post("/groups", json={"name": "g"}, headers=bearer(account["token"])).json()
    assert api.post("/user/logout", headers=bearer(account["token"])).status_code == 200

    status, body = headers_only(
        live, f"/groups/{group['group']['id']}/upload_file", account["token"]
    )

    assert (status, body["code"]) == (401, 1004)


def test_upload_image_by_a_non_member_is_403_before_the_body(live, api, users):
    """POST /api/groups/{group_id}/upload_image by a user outside the group: 403, 3002."""
    owner, stranger = users.register(), users.register()
    group = api.post("/groups", json={"name": "g"}, headers=bearer(owner["token"])).json()

    status, body = headers_only(
        live, f"/groups/{group['group']['id']}/upload_image", stranger["token"]
    )

    assert (status, body) == (403, {"code": 3002, "info": "Not a member of this group"})


def test_upload_voice_into_an_unknown_group_is_404_before_the_body(live, users):
    """POST /api/groups/{group_id}/upload_voice for a group that does not exist: 404, 3001."""
    status, body = headers_only(live, "/groups/2147483000/upload_voice", users.token())

    assert (status, body) == (404, {"code": 3001, "info": "Group not found"})


def test_change_image_without_a_token_is_401_before_the_body(live):
    """POST /api/user/change_image without `Authorization`: 401, 1003."""
    status, body = headers_only(live, "/user/change_image", None)

    assert (status, body) == (401, {"code": 1003, "info": "Missing token"})


def test_change_image_declaring_more_than_the_limit_is_413_before_the_body(live, users):
    """POST /api/user/change_image declaring 100 MB: 413, 4003, with the limit in `info`."""
    status, body = headers_only(live, "/user/change_image", users.token(), 100 * 1024 * 1024)

    assert (status, body["code"]) == (413, 4003)
    assert any(word.isdigit() for word in body["info"].split()), body


def test_upload_into_a_direct_chat_with_an_ex_contact_is_403_before_the_body(live, api, users):
    """POST /api/groups/{group_id}/upload_image into a direct chat whose contact ended: 403,
    7011, on the headers alone, as a text message would be refused."""
    from conformance.test_contacts import befriend

    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    opened = api.put(f"/direct/{bob['user']['id']}", headers=bearer(alice["token"]))
    chat = opened.json()["group"]["id"]
    removed = api.delete(f"/contacts/{bob['user']['id']}", headers=bearer(alice["token"]))
    assert removed.status_code == 200, removed.text

    status, body = headers_only(live, f"/groups/{chat}/upload_image", bob["token"])

    assert (status, body["code"]) == (403, 7011)
