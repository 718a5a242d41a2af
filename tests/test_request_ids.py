"""Request ids: `X-Request-ID` in (bounded, validated; otherwise one is made) and out on
every response; error envelopes carry the same id as `request_id`.

Spec: `components/headers/XRequestId`, `components/schemas/XRequestId`, and the optional
`request_id` of `ApiError` and `RetryError` in openapi/openapi.yaml.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from im_api.app import create_app

MADE = re.compile(r"[0-9a-f]{32}")  # what the server makes: 128 random bits in hex


def test_every_answer_carries_a_request_id_the_server_made(client):
    first, second = client.get("/api/health"), client.get("/api/health")
    assert first.status_code == second.status_code == 200
    assert MADE.fullmatch(first.headers["x-request-id"])
    assert MADE.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "given",
    [
        "3f2b8c1e-9d4a-4f6e-8b7a-1c2d3e4f5a6b",  # a UUID, as most proxies make them
        "req_01HZX4",
        "Root=1-67891233-abcdef012345678912345678",  # a load balancer's trace id
        "a" * 128,
    ],
)
def test_a_valid_x_request_id_is_answered_as_given(client, given):
    response = client.get("/api/health", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "a" * 129,  # too long
        "two words",
        'quote"d',
        "semi;colon",
        "<script>",
        "\u00e9t\u00e9".encode("latin-1"),  # not ASCII
        b"nul\x01byte",
        "x" * 8000,
    ],
    ids=["empty", "129", "space", "quote", "semicolon", "markup", "latin-1", "control", "8000"],
)
def test_a_hostile_x_request_id_is_replaced_never_refused(client, hostile):
    response = client.get("/api/health", headers={"X-Request-ID": hostile})
    assert response.status_code == 200
    assert MADE.fullmatch(response.headers["x-request-id"])


def test_a_second_x_request_id_header_is_ignored(client):
    response = client.get(
        "/api/health", headers=[("X-Request-ID", "first-id"), ("X-Request-ID", "second-id")]
    )
    assert response.headers["x-request-id"] == "first-id"


def assert_carries_the_id(response, status: int, given: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    if given is not None:
        assert body["request_id"] == given
    return body


def test_an_error_of_a_handler_carries_the_request_id(client):
    response = client.get("/api/user/me", headers={"X-Request-ID": "trace-401"})
    body = assert_carries_the_id(response, 401, "trace-401")
    assert set(body) == {"code", "info", "request_id"} and body["code"] == 1003


def test_an_error_of_the_router_carries_the_request_id(client):
    body = assert_carries_the_id(client.get("/api/no/such/path"), 404)
    assert body["code"] == 1005


def test_a_refusal_before_the_body_is_read_carries_the_request_id(client, settings):
    """The body limit answers on its own, outside Connexion: the id is there too."""
    response = client.post(
        "/api/user/login",
        content=b"{" + b" " * (settings.max_json_bytes + 10) + b"}",
        headers={"Content-Type": "application/json", "X-Request-ID": "too-big"},
    )
    body = assert_carries_the_id(response, 413, "too-big")
    assert body["code"] == 1007


def test_a_wait_carries_the_request_id_beside_retry_after(settings):
    limited = create_app(dataclasses.replace(settings, limit_register_per_address="1/3600"))
    with limited.test_client() as client:
        client.post("/api/user/register", json={"name": "alice", "password": "secret12"})
        refused = client.post("/api/user/register", json={"name": "bob", "password": "secret12"})
    body = assert_carries_the_id(refused, 429)
    assert set(body) == {"code", "info", "retry_after", "request_id"}


def test_a_refused_cors_preflight_carries_the_request_id(settings):
    other = create_app(dataclasses.replace(settings, cors_origins=["http://app.example"]))
    with other.test_client() as client:
        response = client.options(
            "/api/user/login",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
                "X-Request-ID": "preflight",
            },
        )
    body = assert_carries_the_id(response, 400, "preflight")
    assert body["info"] == "Invalid request: Disallowed CORS origin"


def test_a_page_of_an_allowed_origin_may_read_the_request_id(settings):
    other = create_app(dataclasses.replace(settings, cors_origins=["http://app.example"]))
    with other.test_client() as client:
        response = client.get("/api/health", headers={"Origin": "http://app.example"})
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert "x-request-id" in exposed
