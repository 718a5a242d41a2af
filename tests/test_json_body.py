"""A handler receives the very object the body validator checked: no second parse.

Checked with the speed module on (change_name and add_member answered without Flask by
`im_api.direct.DirectOperations`) and turned off (through Flask, Connexion's own code
throughout).
"""

from __future__ import annotations

import functools

import flask
import pytest
from connexion import context

import handlers.groups
import handlers.user
from conftest import Auth, connexion_app, empty_tables
from im_api import json_body
from im_api.app import create_app


@pytest.fixture
def recorded(monkeypatch):
    """Wrap the handlers of register, change_name and add_member to record the body each
    receives next to the object the validator left in the scope; returns the records, by
    handler name."""
    records: dict[str, list[tuple[object, object]]] = {}

    def recording(handler):
        @functools.wraps(handler)  # Connexion passes what the handler's signature names
        def wrapper(*args, **kwargs):
            validated = context.scope.get(json_body.VALIDATED)
            records.setdefault(handler.__name__, []).append((kwargs.get("body"), validated))
            return handler(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(handlers.user, "register", recording(handlers.user.register))
    monkeypatch.setattr(handlers.user, "change_name", recording(handlers.user.change_name))
    monkeypatch.setattr(handlers.groups, "add_member", recording(handlers.groups.add_member))
    return records


@pytest.fixture(params=[True, False], ids=["speed-module-on", "speed-module-off"])
def speed(request, settings):
    """The app with its speed module (im_api/speed.py: caching validators and middlewares,
    a short path for JSON operations) and without it (`connexion_speedups`: Connexion's own
    code throughout)."""
    settings.connexion_speedups = request.param
    return request.param


@pytest.fixture
def recording_client(recorded, settings, speed):
    app = create_app(settings)  # after the handlers are wrapped: the resolver takes them
    empty_tables()

    def never(*args, **kwargs):
        raise AssertionError("Flask parsed a JSON body a second time")

    connexion_app(app).app.json.loads = never  # the Flask app behind the front
    with app.test_client() as client:
        yield client


def test_change_name_receives_the_validated_object(recording_client, recorded):
    headers = Auth(recording_client).new_user("alice")

    response = recording_client.post(
        "/api/user/change_name", json={"new_name": "alicia"}, headers=headers
    )

    assert response.status_code == 200, response.text
    [(body, validated)] = recorded["change_name"]
    assert body == {"new_name": "alicia"}
    assert body is validated


def test_add_member_receives_the_validated_object(recording_client, recorded):
    auth = Auth(recording_client)
    headers = auth.new_user("alice")
    auth.register("bob")
    group = recording_client.post("/api/groups", json={"name": "G"}, headers=headers).json()

    response = recording_client.post(
        f"/api/groups/{group['group']['id']}/members", json={"name": "bob"}, headers=headers
    )

    assert response.status_code == 200, response.text
    [(body, validated)] = recorded["add_member"]
    assert body == {"name": "bob"}
    assert body is validated


def test_a_request_without_a_validated_body_has_no_json(app):
    """An operation whose contract has no JSON body hands nothing on, whatever was sent."""
    flask_app = connexion_app(app).app
    environ = {"asgi.scope": {"type": "http"}, "CONTENT_TYPE": "application/json"}
    with flask_app.test_request_context("/", method="POST", data=b'{"a": 1}', environ_base=environ):
        assert flask.request.get_json() is None
        assert flask.request.get_json(force=True, silent=True) is None


def test_a_body_read_two_ways_is_refused_both_with_and_without_the_speed_code(
    recording_client, recorded
):
    """The UTF-7 smuggle of conformance/test_json_bodies.py (a valid body to a UTF-7
    reader, another one, naming '<i>', to a UTF-8 reader): 415, and no handler runs."""
    raw = (
        b'{"password": "secret12", "name": "<i>", '
        b'"name+ACIAOgAi-bob+ACIALAAi-password": "secret12"}'
    )
    response = recording_client.post(
        "/api/user/register",
        content=raw,
        headers={"Content-Type": "application/json;charset=utf-7"},
    )
    assert response.status_code == 415, response.text
    assert "register" not in recorded
