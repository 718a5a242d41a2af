"""Direct chats and notices under settings the black-box suite cannot choose: direct chats
open to anyone (`IM_DIRECT_CHATS=anyone`), the notices kept per user, and a setting the
server refuses to start with. The contract's behaviour with the defaults is checked by
conformance/test_contacts.py, test_direct_chats.py and test_socket_contacts.py."""

from __future__ import annotations

import dataclasses

import pytest
from envelope import error_body

from im_core.config import Settings, SettingsError
from models import notices

NOT_ACCEPTED = {"code": 7007, "info": "This user does not accept this from you"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, direct_chats="anyone")


def test_with_direct_chats_open_to_anyone_strangers_chat_until_one_blocks(client, auth):
    alice, bob = auth.register("alice"), auth.register("bob")
    as_alice, as_bob = auth.header(alice["token"]), auth.header(bob["token"])
    opened = client.put(f"/api/direct/{bob['user']['id']}", headers=as_alice)
    assert opened.status_code == 201, opened.text
    chat = opened.json()["group"]["id"]
    posted = client.post(f"/api/groups/{chat}/messages", json={"text": "hi"}, headers=as_bob)
    assert posted.status_code == 201, posted.text

    blocked = client.put(f"/api/blocks/{bob['user']['id']}", headers=as_alice)
    assert blocked.status_code == 201, blocked.text
    refused = client.post(f"/api/groups/{chat}/messages", json={"text": "?"}, headers=as_bob)
    assert (refused.status_code, error_body(refused)) == (403, NOT_ACCEPTED)
    carol = auth.register("carol")
    client.put(f"/api/blocks/{carol['user']['id']}", headers=as_alice)
    new_chat = client.put(f"/api/direct/{alice['user']['id']}", headers=auth.header(carol["token"]))
    assert (new_chat.status_code, error_body(new_chat)) == (403, NOT_ACCEPTED)


def test_a_cancelled_peer_is_refused_as_not_accepting_where_chats_are_open(client, auth):
    alice, bob = auth.register("alice"), auth.register("bob")
    as_alice = auth.header(alice["token"])
    chat = client.put(f"/api/direct/{bob['user']['id']}", headers=as_alice).json()["group"]["id"]
    cancelled = client.post(
        "/api/user/cancel_account",
        json={"password": "correct horse"},
        headers=auth.header(bob["token"]),
    )
    assert cancelled.status_code == 200, cancelled.text
    refused = client.post(f"/api/groups/{chat}/messages", json={"text": "?"}, headers=as_alice)
    assert (refused.status_code, error_body(refused)) == (403, NOT_ACCEPTED)


def test_only_the_newest_notices_are_kept_and_ready_says_when_some_were_dropped(
    client, auth, monkeypatch
):
    """With 3 notices kept per user: a socket 1 behind gets the 3 kept and
    `notices_complete` false; one within them gets the rest and true."""
    monkeypatch.setattr(notices, "KEPT", 3)
    alice = auth.register("alice")
    for name in ("bob", "carol", "dave", "erin", "frank"):
        auth.register(name)
        made = client.post(
            "/api/contacts/requests", json={"name": name}, headers=auth.header(alice["token"])
        )
        assert made.status_code == 201, made.text
    with client.websocket_connect(
        f"/api/ws/user/{alice['user']['id']}/", headers=auth.header(alice["token"])
    ) as socket:
        for since, numbers, complete in ((1, [3, 4, 5], False), (3, [4, 5], True)):
            socket.send_json({"type": "sync", "since": {}, "notices": since})
            replayed = [socket.receive_json() for _ in numbers]
            assert [frame["notice"] for frame in replayed] == numbers
            ready = socket.receive_json()
            assert (ready["type"], ready["notices"], ready["notices_complete"]) == (
                "ready",
                5,
                complete,
            )
        socket.close()


def test_an_unknown_direct_chats_setting_stops_the_server():
    with pytest.raises(SettingsError, match="IM_DIRECT_CHATS"):
        Settings.from_env(environ={"IM_DIRECT_CHATS": "everyone"}).check()
