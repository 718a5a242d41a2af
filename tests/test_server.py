"""The real server: `im-api serve` answering over HTTP, and uniqueness under concurrency."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx


def test_im_api_help_lists_every_subcommand():
    output = subprocess.run(
        [sys.executable, "-m", "im_api.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "serve" in output and "migrate" in output


def test_the_server_serves_health_the_ui_and_the_spec(live_server):
    with httpx.Client(base_url=live_server.url) as http:
        assert http.get("/health").json() == {"code": 0, "info": "Succeed", "database": "ok"}
        ui = http.get("/ui/")
        assert ui.status_code == 200 and "swagger-ui" in ui.text
        spec = http.get("/openapi.json").json()
        assert spec["info"]["title"] == "IM account and media API"


def test_a_walk_through_of_the_account_lifecycle_over_http(live_server):
    with httpx.Client(base_url=live_server.url) as http:
        registered = http.post(
            "/user/register", json={"name": "alice", "password": "correct horse"}
        )
        assert registered.status_code == 200
        token = http.post(
            "/user/login", json={"name": "alice", "password": "correct horse"}
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get("/user/me", headers=bearer).json()["user"]["name"] == "alice"
        assert (
            http.post("/user/change_name", headers=bearer, json={"new_name": "alicia"}).status_code
            == 200
        )

        changed = http.post(
            "/user/change_password",
            headers=bearer,
            json={"old_password": "correct horse", "new_password": "battery staple"},
        )
        assert http.get("/user/me", headers=bearer).status_code == 401
        bearer = {"Authorization": f"Bearer {changed.json()['token']}"}
        assert http.get("/user/me", headers=bearer).json()["user"]["name"] == "alicia"

        assert http.post("/user/logout", headers=bearer).status_code == 200
        assert http.get("/user/me", headers=bearer).status_code == 401

        token = http.post(
            "/user/login", json={"name": "alicia", "password": "battery staple"}
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        cancelled = http.post(
            "/user/cancel_account", headers=bearer, json={"password": "battery staple"}
        )
        assert cancelled.json() == {"code": 0, "info": "Succeed"}
        again = http.post("/user/register", json={"name": "alicia", "password": "another one"})
        assert again.status_code == 200


def test_concurrent_registrations_of_one_name_give_one_success_and_409s(live_server):
    def register(index: int) -> httpx.Response:
        # Names differ only in case: unique ignoring case, so exactly one may win.
        name = "racer" if index % 2 else "RACER"
        return httpx.post(
            live_server.url + "/user/register",
            json={"name": name, "password": f"secret{index}"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = sorted(response.status_code for response in pool.map(register, range(32)))
    assert statuses.count(200) == 1
    assert statuses.count(409) == 31


def test_building_an_app_leaves_the_next_one_s_middlewares_alone(settings):
    """Connexion inserts added middlewares into the list it is given: a list shared by every
    app built in a process grew with each, and a request then went through every copy (a
    RecursionError in a long test run)."""
    from conftest import connexion_app
    from im_api import app, speed

    before = list(speed.MIDDLEWARES)
    first = app.create_app(settings)
    second = app.create_app(settings)

    assert before == speed.MIDDLEWARES
    assert len(connexion_app(first).middleware.middlewares) == len(
        connexion_app(second).middleware.middlewares
    )


def test_the_server_takes_x_forwarded_for_only_from_trusted_proxies(serve):
    """im-api serve: uvicorn on its own would trust X-Forwarded-For from 127.0.0.1; the
    server trusts only IM_TRUSTED_PROXIES (none by default), so a client on loopback cannot
    step around a limit per client address by naming other addresses."""
    untrusting = serve(IM_LIMIT_REGISTER_PER_ADDRESS="2/3600")
    trusting = serve(IM_LIMIT_REGISTER_PER_ADDRESS="2/3600", IM_TRUSTED_PROXIES="127.0.0.1")

    def register(server, index, address):
        return httpx.post(
            server.url + "/user/register",
            json={"name": f"user{index}_{server.port % 1000}", "password": "secret12"},
            headers={"X-Forwarded-For": address},
            timeout=30,
        )

    statuses = [register(untrusting, index, f"203.0.113.{index}").status_code for index in range(3)]
    assert statuses == [200, 200, 429]
    statuses = [register(trusting, index, f"203.0.113.{index}").status_code for index in range(3)]
    assert statuses == [200, 200, 200]
