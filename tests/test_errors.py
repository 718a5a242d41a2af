"""Every malformed or hostile request gets a documented 4xx in the {code, info} envelope."""

from __future__ import annotations

import pytest

import handlers.user


def assert_envelope(response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    # A 1001 also names the offending fields (`errors`).
    assert set(body) == {"code", "info", "request_id"} | ({"errors"} if code == 1001 else set())
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["code"] == code
    assert "Traceback" not in body["info"]
    return body


@pytest.mark.parametrize(
    "body",
    [
        {"name": 123, "password": "secret1"},  # wrong type
        {"name": "alice", "password": 123456},  # document A sends numbers: not in the contract
        {"name": "alice"},  # missing field
        {"name": "alice", "password": "secret1", "need_send": False},  # extra field
        {"name": "a" * 10_000, "password": "secret1"},
        {"name": "alice", "password": "p" * 10_000},
        {"name": "al", "password": "secret1"},  # too short
        {"name": "al ice", "password": "secret1"},  # outside the pattern
        {"name": "alice", "password": "short"},
        {
            "name": "alice",
            "password": "secret1",
            "email": "not an email",
            "security_code": "123456",
        },
        {"name": "alice", "password": "secret1", "email": "a@b.co", "security_code": "12345x"},
        [],
        "alice",
        None,
    ],
)
def test_register_refuses_a_body_outside_the_contract(client, body):
    assert_envelope(client.post("/api/user/register", json=body), 400, 1001)


def test_an_invalid_request_never_echoes_the_password(client):
    body = assert_envelope(
        client.post("/api/user/register", json={"name": "alice", "password": "s3cr3t-" * 30}),
        400,
        1001,
    )
    assert "s3cr3t" not in body["info"]


@pytest.mark.parametrize(
    "content, content_type",
    [
        (b'{"name": "\xff\xfe"}', "application/json"),  # not UTF-8
        (b"{name:", "application/json"),  # not JSON
    ],
    ids=["not-utf8", "not-json"],
)
def test_a_body_that_cannot_be_read_is_malformed(client, content, content_type):
    response = client.post(
        "/api/user/login", content=content, headers={"content-type": content_type}
    )
    assert_envelope(response, 400, 1002)


def test_a_json_body_in_an_unknown_charset_is_415(client):
    # JSON is UTF-8 (RFC 8259 §8.1): any other charset, known or not, is refused as a type.
    response = client.post(
        "/api/user/login",
        content=b'{"name": "alice", "password": "secret1"}',
        headers={"content-type": "application/json;charset=no-such"},
    )
    assert_envelope(response, 415, 1008)


def test_a_body_of_another_media_type_is_415(client):
    response = client.post(
        "/api/user/login", content=b"name=alice", headers={"content-type": "text/plain"}
    )
    assert_envelope(response, 415, 1008)


def test_an_empty_body_is_invalid(client):
    response = client.post(
        "/api/user/login", content=b"", headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, 1001)


def test_a_declared_length_over_the_limit_is_refused_with_the_limit(client, settings):
    response = client.post(
        "/api/user/login",
        content=b"{" + b" " * (settings.max_json_bytes + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    body = assert_envelope(response, 413, 1007)
    assert str(settings.max_json_bytes) in body["info"]


def test_a_chunked_json_body_is_read(client, auth):
    auth.register("alice")

    def chunks():
        yield b'{"name": "alice", '
        yield b'"password": "correct horse"}'

    response = client.post(
        "/api/user/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200


def test_a_chunked_json_body_over_the_limit_is_413(client, settings):
    def chunks():
        for _ in range(settings.max_json_bytes // 1000 + 5):
            yield b" " * 1000

    response = client.post(
        "/api/user/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, 1007)


def test_the_limit_cuts_a_chunked_body_off_as_it_passes_the_limit(settings):
    """The middleware stops the app reading once the limit is passed, whatever was declared."""
    import asyncio

    from im_api.limits import BodyLimitMiddleware, BodyTooLarge

    read = 0

    async def app_reading_everything(scope, receive, send):
        nonlocal read
        while True:
            message = await receive()
            read += len(message.get("body", b""))
            if not message.get("more_body"):
                return

    chunk = b" " * 1000

    async def endless_sender():
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "path": "/api/user/login", "headers": []}
    middleware = BodyLimitMiddleware(app_reading_everything, settings)
    with pytest.raises(BodyTooLarge):
        asyncio.run(middleware(scope, endless_sender, None))
    assert settings.max_json_bytes - len(chunk) < read <= settings.max_json_bytes


def test_a_malformed_content_length_is_400(client):
    response = client.post(
        "/api/user/login",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "2x"},
    )
    assert_envelope(response, 400, 1002)


def test_an_unknown_path_is_404(client):
    assert_envelope(client.get("/api/no/such/path"), 404, 1005)
    assert_envelope(client.get("/elsewhere"), 404, 1005)


def test_a_wrong_method_is_405_with_allow(client):
    response = client.get("/api/user/login")
    assert_envelope(response, 405, 1006)
    assert response.headers["Allow"] == "POST"


def test_a_missing_token_is_401(client):
    assert_envelope(client.get("/api/user/me"), 401, 1003)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer ", "Bearer " + "x" * 5000, "Basic YWxpY2U6c2VjcmV0", "Bearer a.b.c"],
)
def test_a_bad_token_is_401(client, authorization):
    response = client.get("/api/user/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["code"] in (1003, 1004)


def test_an_unexpected_exception_is_a_bare_500(client, monkeypatch, caplog):
    def explode():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handlers.user, "get_me", lambda token_info: explode())
    # The resolver looked the handler up when the app was built: break what it calls instead.
    monkeypatch.setattr("models.sessions.active", lambda token_info: explode())
    auth_response = client.post("/api/user/register", json={"name": "alice", "password": "secret1"})
    token = auth_response.json()["token"]
    response = client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
    body = assert_envelope(response, 500, 1010)
    assert "secret internals" not in response.text
    assert body["info"] == "Internal server error"
    assert "secret internals" in caplog.text
