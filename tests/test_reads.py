"""Read state under settings and sizes the black-box suite cannot choose: a group larger than
IM_READ_RECEIPTS_MAX_MEMBERS shows only counts and sends no receipts, and counts stop at
the window of 1000 messages. conformance/test_reads.py and test_socket_reads.py check the
rest with the defaults."""

from __future__ import annotations

import dataclasses

import pytest
from pony.orm import db_session

from models import reads
from models.entities import Message


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, read_receipts_max_members=2)


def test_a_group_over_the_receipts_size_shows_counts_and_sends_no_receipt(client, auth):
    users = [auth.register(name) for name in ("alice", "bob", "carol")]
    owner = auth.header(users[0]["token"])
    group = client.post("/api/groups", json={"name": "big"}, headers=owner).json()["group"]["id"]
    for user in users[1:]:
        client.post(
            f"/api/groups/{group}/members", json={"name": user["user"]["name"]}, headers=owner
        )
    client.post(f"/api/groups/{group}/messages", json={"text": "hi"}, headers=owner)
    as_bob = auth.header(users[1]["token"])
    with (
        client.websocket_connect(
            f"/api/ws/user/{users[0]['user']['id']}/", headers=owner
        ) as alices,
        client.websocket_connect(f"/api/ws/user/{users[1]['user']['id']}/", headers=as_bob) as bobs,
    ):
        for socket in (alices, bobs):
            socket.send_json({"type": "sync", "since": {}})
            assert socket.receive_json()["type"] == "ready"
        marked = client.put(f"/api/groups/{group}/read", json={"seq": 1}, headers=as_bob)
        assert marked.status_code == 200, marked.text
        # Bob's own socket hears it; alice's does not (no receipts here): a ping's pong is
        # the next thing she gets.
        assert bobs.receive_json()["type"] == "read"
        alices.send_json({"type": "ping"})
        assert alices.receive_json() == {"type": "pong"}
        alices.close()
        bobs.close()
    answer = client.get(f"/api/groups/{group}/reads", headers=owner).json()
    assert answer == {
        "code": 0,
        "info": "Succeed",
        "receipts": "counts",
        "counts": [{"seq": 1, "members": 1}, {"seq": 0, "members": 3}],
    }


def test_unread_counts_stop_at_the_window(client, auth, monkeypatch):
    """With a window of 3: five unread messages count as 3."""
    monkeypatch.setattr(reads, "WINDOW", 3)
    alice, bob = auth.register("alice"), auth.register("bob")
    owner = auth.header(alice["token"])
    group = client.post("/api/groups", json={"name": "g"}, headers=owner).json()["group"]["id"]
    client.post(f"/api/groups/{group}/members", json={"name": "bob"}, headers=owner)
    for n in range(5):
        client.post(
            f"/api/groups/{group}/messages",
            json={"text": f"@bob {n}"},
            headers=owner,
        )
    shown = client.get(f"/api/groups/{group}", headers=auth.header(bob["token"])).json()["group"]
    assert (shown["unread_count"], shown["mention_count"]) == (3, 3)
    with db_session:
        assert Message.select().count() == 5
