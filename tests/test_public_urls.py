"""Absolute URLs with `IM_PUBLIC_BASE_URL`: `url`, `avatar_url` and `ws_url` name the server
for pages on another origin; without the setting they stay relative, as before."""

from __future__ import annotations

import json
import re

import httpx
import media_samples as samples
import pytest
from websockets.sync.client import connect

from im_api.app import create_app
from im_core.config import Settings
from tests.conftest import Auth, empty_tables

# The setting as given, and the prefixes it makes for HTTP and for the socket.
BASES = {
    "https://chat.example.com": ("https://chat.example.com", "wss://chat.example.com"),
    "http://chat.example.com:8080/im/": (
        "http://chat.example.com:8080/im",
        "ws://chat.example.com:8080/im",
    ),
}


@pytest.fixture(params=list(BASES))
def base(request) -> str:
    return request.param


@pytest.fixture
def settings(settings, base) -> Settings:
    settings.public_base_url = base
    return settings


def signed_in_with_a_picture(client, auth) -> tuple[dict, dict, dict]:
    """alice registered, with an avatar and an image in a group of hers: the register
    answer, the upload answer and the avatar change's answer."""
    registered = auth.register("alice")
    alice = auth.header(registered["token"])
    group = client.post("/api/groups", json={"name": "Hiking"}, headers=alice).json()["group"]
    uploaded = client.post(
        f"/api/groups/{group['id']}/upload_image",
        files={"image": ("a.png", samples.png(), "image/png")},
        headers=alice,
    )
    assert uploaded.status_code == 201, uploaded.text
    avatar = client.post(
        "/api/user/change_image", headers=alice, files={"avatar": ("b.png", samples.png())}
    )
    assert avatar.status_code == 200, avatar.text
    return registered, uploaded.json(), avatar.json()


def test_urls_name_the_public_base_url_and_the_socket_its_ws_scheme(client, auth, base):
    http, ws = BASES[base]
    registered, uploaded, avatar = signed_in_with_a_picture(client, auth)
    alice = auth.header(registered["token"])
    user_id = registered["user"]["id"]

    assert registered["ws_url"] == f"{ws}/api/ws/user/{user_id}/"
    login = client.post("/api/user/login", json={"name": "alice", "password": "correct horse"})
    assert login.json()["ws_url"] == f"{ws}/api/ws/user/{user_id}/"

    media = re.escape(http) + r"/api/media/\d+\?sig=[^&]+"
    assert re.fullmatch(media, uploaded["url"]), uploaded["url"]
    assert uploaded["message"]["url"] == uploaded["url"]
    group_id = uploaded["message"]["group_id"]
    listed = client.get(f"/api/groups/{group_id}/messages", headers=alice).json()["messages"]
    assert listed[0]["url"] == uploaded["url"]

    assert re.fullmatch(media, avatar["url"]), avatar["url"]
    me = client.get("/api/user/me", headers=alice).json()["user"]
    assert me["avatar_url"] == avatar["url"]
    members = client.get(f"/api/groups/{group_id}", headers=alice).json()["group"]["members"]
    assert members[0]["avatar_url"] == avatar["url"]
    # Past the base, the same path and signature the server serves.
    assert client.get(uploaded["url"].removeprefix(http)).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "chat.example.com",
        "ftp://chat.example.com",
        "https://",
        "https://chat.example.com/?next=1",
        "https://chat.example.com/#top",
        "https://user:secret@chat.example.com",
        "wss://chat.example.com",
        "https://chat.example.com/a b",
        "https://chat.example.com/" + "a" * 200,  # past the contract's bound on URLs
    ],
)
def test_a_wrong_public_base_url_refuses_to_start_naming_the_setting(tmp_path, value):
    settings = Settings.from_env(
        {"IM_PUBLIC_BASE_URL": value}, instance_dir=tmp_path / "i", database_url=""
    )
    with pytest.raises(ValueError, match="IM_PUBLIC_BASE_URL"):
        create_app(settings)


def test_without_the_setting_urls_stay_relative(tmp_path, database_url):
    settings = Settings.from_env({}, instance_dir=tmp_path / "i", database_url=database_url)
    assert settings.public_base_url == ""
    app = create_app(settings)
    empty_tables()
    with app.test_client() as client:
        auth = Auth(client)
        registered, uploaded, avatar = signed_in_with_a_picture(client, auth)
    assert registered["ws_url"] == f"ws/user/{registered['user']['id']}/"
    assert re.fullmatch(r"/api/media/\d+\?sig=[^&]+", uploaded["url"])
    assert re.fullmatch(r"/api/media/\d+\?sig=[^&]+", avatar["url"])


def test_a_real_server_answers_urls_a_client_uses_as_they_are(new_server, tmp_path):
    """`im-api serve` with IM_PUBLIC_BASE_URL naming itself: the media `url` downloads and the
    `ws_url` opens the socket with nothing resolved by the client."""
    server = new_server(tmp_path / "instance", "")
    origin = server.url.removesuffix("/api")
    server.env["IM_PUBLIC_BASE_URL"] = origin + "/"
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        registered = http.post(
            "/user/register", json={"name": "alice", "password": "correct horse"}
        ).json()
        alice = {"Authorization": f"Bearer {registered['token']}"}
        group = http.post("/groups", json={"name": "Hiking"}, headers=alice).json()["group"]
        uploaded = http.post(
            f"/groups/{group['id']}/upload_image",
            files={"image": ("a.png", samples.png(), "image/png")},
            headers=alice,
        ).json()
    assert uploaded["url"].startswith(origin + "/api/media/")
    fetched = httpx.get(uploaded["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == samples.png()

    ws_url = registered["ws_url"]
    assert (
        ws_url == origin.replace("http://", "ws://") + f"/api/ws/user/{registered['user']['id']}/"
    )
    with connect(ws_url, open_timeout=10, close_timeout=2) as socket:
        socket.send(json.dumps({"type": "auth", "token": registered["token"]}))
        socket.send(json.dumps({"type": "sync", "since": {}}))
        frames = []
        while not frames or frames[-1]["type"] != "ready":
            frames.append(json.loads(socket.recv(timeout=10)))
    assert [f["type"] for f in frames][-1] == "ready"
