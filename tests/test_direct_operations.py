"""With the speed module on, JSON operations are answered without Flask (`im_api.direct`),
and their answers are the ones the speed module's Flask path gives: same status, headers,
bytes (key order, separators, final newline), errors raised in a handler included. Requests
the direct path does not take (query parameters, HEAD) still go through Flask.
"""

from __future__ import annotations

import json
import re

import pytest
from pony.orm import db_session

import im_api.direct
from conftest import Auth, connexion_app, empty_tables
from im_api.app import create_app
from models.database import db

# Values that differ from one run to the next, replaced by their key's name before comparing.
VOLATILE_KEYS = {"token", "request_id", "url", "avatar_url"}


def scenario(client) -> list:
    """The requests, in order: (label, response)."""
    auth = Auth(client)
    alice = auth.new_user("alice")
    bob = auth.new_user("bob")
    carol = auth.new_user("carol")
    group = client.post("/api/groups", json={"name": "G"}, headers=alice).json()["group"]["id"]
    post = {"text": "hello", "client_msg_id": "m-1"}
    return [
        (
            "add member",
            client.post(f"/api/groups/{group}/members", json={"name": "bob"}, headers=alice),
        ),
        ("post", client.post(f"/api/groups/{group}/messages", json=post, headers=bob)),
        ("post again", client.post(f"/api/groups/{group}/messages", json=post, headers=bob)),
        ("not a member", client.post(f"/api/groups/{group}/messages", json=post, headers=carol)),
        ("no group", client.post("/api/groups/999/messages", json=post, headers=bob)),
        ("bad body", client.post(f"/api/groups/{group}/messages", json={"text": ""}, headers=bob)),
        ("me", client.get("/api/user/me", headers=alice)),
        (
            "rename",
            client.post("/api/user/change_name", json={"new_name": "alicia"}, headers=alice),
        ),
        ("list", client.get(f"/api/groups/{group}/messages?limit=5", headers=alice)),
        ("head me", client.head("/api/user/me", headers=alice)),
    ]


def comparable(response) -> tuple:
    """Status, header names, the content type and the raw body with volatile values named."""
    raw = response.content
    if raw:
        for key, value in volatile(json.loads(raw)):
            raw = raw.replace(json.dumps(value).encode(), json.dumps(f"<{key}>").encode())
    names = sorted(name for name in response.headers if name != "ratelimit")
    return response.status_code, names, response.headers.get("content-type"), raw


def volatile(data):
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and (key in VOLATILE_KEYS or key.endswith("_at")):
                yield key, value
            else:
                yield from volatile(value)
    elif isinstance(data, list):
        for item in data:
            yield from volatile(item)


class FlaskRequests:
    """WSGI middleware recording each request that reached Flask."""

    seen: list[tuple[str, str]] = []

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = re.sub(r"/groups/\d+/", "/groups/{id}/", environ["PATH_INFO"])
        FlaskRequests.seen.append((environ["REQUEST_METHOD"], path))
        return self.wsgi_app(environ, start_response)


def run(settings, monkeypatch, *, direct: bool) -> tuple[dict, list]:
    """The scenario on a fresh database (ids from 1), with the speed module on and its
    direct path on or off (then every operation has no plan and goes to Flask)."""
    settings.connexion_speedups = True
    settings.validate_responses = False  # as served: a HEAD's empty body is no error
    with monkeypatch.context() as patch:
        if not direct:
            patch.setattr(im_api.direct, "plan_for", lambda operation: None)
        return _run(settings)


def _run(settings) -> tuple[dict, list]:
    app = create_app(settings)
    empty_tables()
    with db_session:
        if db.provider_name == "sqlite":  # PostgreSQL's identities restart with the TRUNCATE
            db.execute("DELETE FROM sqlite_sequence")
    connexion_app(app).add_wsgi_middleware(FlaskRequests)
    FlaskRequests.seen = []
    with app.test_client() as client:
        answers = {label: comparable(response) for label, response in scenario(client)}
    return answers, FlaskRequests.seen


@pytest.fixture
def through_flask(settings, monkeypatch):
    return run(settings, monkeypatch, direct=False)


def test_the_direct_answers_are_flasks_byte_for_byte(settings, monkeypatch, through_flask):
    flask_answers, _ = through_flask
    direct_answers, _ = run(settings, monkeypatch, direct=True)

    assert direct_answers.keys() == flask_answers.keys()
    for label, answer in direct_answers.items():
        assert answer == flask_answers[label], label
    # The scenario reached what it means to compare: successes and handlers' own errors.
    statuses = {label: answer[0] for label, answer in direct_answers.items()}
    assert statuses["post"] == 201 and statuses["post again"] == 200
    assert statuses["not a member"] == 403 and statuses["no group"] == 404
    assert statuses["bad body"] == 400 and statuses["rename"] == 200
    assert statuses["head me"] == 200 and direct_answers["head me"][3] == b""


def test_only_what_the_direct_path_does_not_take_reaches_flask(
    settings, monkeypatch, through_flask
):
    _, flask_requests = through_flask
    _, direct_requests = run(settings, monkeypatch, direct=True)

    # Without the direct path, every request that passes Connexion's checks reaches Flask.
    assert ("POST", "/api/groups/{id}/messages") in flask_requests
    assert ("GET", "/api/user/me") in flask_requests
    # With it: only the listing (query parameters) and the HEAD.
    assert sorted(direct_requests) == [
        ("GET", "/api/groups/{id}/messages"),
        ("HEAD", "/api/user/me"),
    ]
