"""IM_LOG_FORMAT=json: the server's log as one JSON object per line, for a log stack to read
(time, level, request id, operationId, status, duration, user id where known), and never a
token, a password, an email code or a query string in it.

A real `im-api serve` (one worker on SQLite, two on PostgreSQL), driven over HTTP.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import datetime

import httpx
import media_samples as samples
import pytest
from test_realtime import NO_LIMITS


@pytest.fixture
def json_server(tmp_path, served_database, new_server):
    workers = 1 if served_database.startswith("sqlite") else 2
    return new_server(
        tmp_path / "instance",
        served_database,
        workers=workers,
        log_level="info",
        IM_LOG_FORMAT="json",
        **NO_LIMITS,
    ).start()


def lines_of(server) -> list[dict]:
    text = server.log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # each line is one JSON object


def code_in_outbox(server) -> str:
    [mail] = (server.instance_dir / "outbox").glob("*.eml")
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", text).group(1)


def test_the_json_log_has_one_object_per_line_with_the_request_fields(json_server):
    password = "correct horse battery"
    with httpx.Client(base_url=json_server.url, timeout=30) as http:
        asked = http.post(
            "/user/email_code",
            json={"email": "alice@example.com", "purpose": "register"},
            headers={"X-Request-ID": "ask-code-1"},
        )
        assert asked.status_code == 200, asked.text
        code = code_in_outbox(json_server)
        registered = http.post(
            "/user/register",
            json={
                "name": "alice",
                "password": password,
                "email": "alice@example.com",
                "security_code": code,
            },
        )
        assert registered.status_code == 200, registered.text
        token = registered.json()["token"]
        user_id = registered.json()["user"]["id"]
        bearer = {"Authorization": f"Bearer {token}"}
        me = http.get("/user/me", headers={**bearer, "X-Request-ID": "me-1"})
        assert me.status_code == 200
        group = http.post("/groups", json={"name": "g"}, headers=bearer).json()["group"]
        uploaded = http.post(
            f"/groups/{group['id']}/upload_image",
            files={"image": ("a.png", samples.png())},
            headers=bearer,
        )
        assert uploaded.status_code == 201, uploaded.text
        media_url = uploaded.json()["url"]
        assert http.get(json_server.url.removesuffix("/api") + media_url).status_code == 200
        refused = http.get("/user/me", headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
    json_server.stop()  # every line written

    records = lines_of(json_server)
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        datetime.fromisoformat(record["time"].replace("Z", "+00:00"))

    access = [r for r in records if r["logger"] == "im_api.access"]
    [seen] = [r for r in access if r.get("request_id") == "me-1"]
    assert seen["level"] == "INFO"
    assert seen["method"] == "GET" and seen["path"] == "/api/user/me"
    assert seen["operation"] == "getMe" and seen["status"] == 200
    assert isinstance(seen["duration_ms"], float) and seen["duration_ms"] >= 0
    assert seen["user_id"] == user_id
    [unknown] = [r for r in access if r.get("status") == 401]
    assert unknown["operation"] == "getMe" and "user_id" not in unknown
    assert all(re.fullmatch(r"[0-9a-f]{32}|ask-code-1|me-1", r["request_id"]) for r in access)

    # A line logged while a request is served carries its id too: the mail written.
    mailed = [r for r in records if r["logger"] == "models.mail"]
    assert mailed and mailed[0]["request_id"] == "ask-code-1"

    text = json_server.log.read_text()
    signature = media_url.split("?", 1)[1]
    for secret in (token, password, code, signature, "not-a-token"):
        assert secret not in text, secret
    assert "?" not in "".join(r.get("path", "") for r in access)
