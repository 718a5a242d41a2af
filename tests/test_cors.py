"""CORS: pages of the origins in `IM_CORS_ORIGINS` may call the API; no other origin may.

The browser side of it (a page on another origin registering, signing in and uploading) is
tests/clients/test_cross_origin_browser.py.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from envelope import error_body
from PIL import Image

from im_api.app import create_app
from im_core.config import Settings

FRONTEND = "http://frontend.example:5173"
PREFLIGHT = {
    "Origin": FRONTEND,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture
def cors_client(settings, app):
    """A client on an app that lets FRONTEND's pages call it."""
    allowed = create_app(dataclasses.replace(settings, cors_origins=[FRONTEND]))
    with allowed.test_client() as client:
        yield client


def test_cors_origins_setting_is_read_from_the_environment():
    settings = Settings.from_env({"IM_CORS_ORIGINS": f"{FRONTEND}, https://app.example"})
    assert settings.cors_origins == [FRONTEND, "https://app.example"]
    assert Settings.from_env({}).cors_origins == []


def test_preflight_from_an_allowed_origin_is_answered(cors_client):
    """OPTIONS with Access-Control-Request-Method: 200 with the methods and headers allowed."""
    response = cors_client.options("/api/user/login", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "access-control-allow-credentials" not in response.headers


def test_preflight_from_another_origin_is_refused_in_the_envelope(cors_client):
    response = cors_client.options(
        "/api/user/login", headers={**PREFLIGHT, "Origin": "http://evil.example"}
    )
    assert response.status_code == 400
    assert error_body(response) == {"code": 1001, "info": "Invalid request: Disallowed CORS origin"}
    assert "access-control-allow-origin" not in response.headers


def test_answers_to_an_allowed_origin_expose_retry_after_etag_and_content_disposition(
    cors_client,
):
    response = cors_client.post(
        "/api/user/register",
        json={"name": "alice", "password": "correct horse"},
        headers={"Origin": FRONTEND},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"retry-after", "etag", "content-disposition"} <= set(exposed)


def test_errors_and_media_downloads_carry_cors_headers_too(cors_client):
    """The whole app is wrapped: a 401, an upload and the media it made answer the origin."""
    origin = {"Origin": FRONTEND}
    refused = cors_client.get("/api/user/me", headers=origin)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == FRONTEND

    token = cors_client.post(
        "/api/user/register", json={"name": "alice", "password": "correct horse"}
    ).json()["token"]
    bearer = {**origin, "Authorization": f"Bearer {token}"}
    group = cors_client.post("/api/groups", json={"name": "g"}, headers=bearer).json()["group"]
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format="PNG")
    uploaded = cors_client.post(
        f"/api/groups/{group['id']}/upload_image",
        files={"image": ("dot.png", buffer.getvalue(), "image/png")},
        headers=bearer,
    )
    assert uploaded.status_code == 201
    assert uploaded.headers["access-control-allow-origin"] == FRONTEND
    media = cors_client.get(uploaded.json()["url"], headers=origin)
    assert media.status_code == 200
    assert media.headers["access-control-allow-origin"] == FRONTEND


def test_with_no_origin_configured_no_cors_header_is_sent(client):
    """The default (IM_CORS_ORIGINS empty): other origins' pages cannot read any answer."""
    response = client.post(
        "/api/user/register",
        json={"name": "alice", "password": "correct horse"},
        headers={"Origin": FRONTEND},
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/user/login", headers=PREFLIGHT)
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
