"""A text posted through a worker reaches that worker's sockets without being read back.

On PostgreSQL a notification carries ids only, so a hub reads each message it hears of from
the database; the worker that posted a text keeps its frame for its own hub instead
(`models.events.keep_frame`), keyed by the message's id, which a rollback never gives to
another message. On SQLite the event brings its frame anyway: the same test holds there.
"""

from __future__ import annotations

import asyncio

import pytest
from test_readiness import ready_once_listening

from im_api.realtime import sources, store
from models import events


@pytest.fixture
def read_back(monkeypatch) -> list[dict]:
    """The message spans every hub of this process reads from the database."""
    spans_read: list[dict] = []
    batch_frames = store.batch_frames

    def recording(spans, *args):
        spans_read.extend([dict(spans)] if spans else [])
        return batch_frames(spans, *args)

    monkeypatch.setattr(store, "batch_frames", recording)
    return spans_read


def test_a_text_posted_through_this_worker_reaches_its_sockets_without_a_read_back(
    client, auth, read_back
):
    assert ready_once_listening(client).status_code == 200  # the listener hears it all
    alice, bob = auth.register("alice"), auth.register("bob")
    as_alice, as_bob = auth.header(alice["token"]), auth.header(bob["token"])
    created = client.post("/api/groups", json={"name": "g"}, headers=as_alice)
    group = created.json()["group"]["id"]
    client.post(f"/api/groups/{group}/members", json={"name": "bob"}, headers=as_alice)
    url = f"/api/groups/{group}/messages"
    with client.websocket_connect(f"/api/ws/user/{bob['user']['id']}/", headers=as_bob) as socket:
        socket.send_json({"type": "sync", "since": {}})
        assert socket.receive_json()["type"] == "ready"
        # Refused after its INSERT (no message 5 to answer): rolled back, its seq given to
        # the next message, whose frame is its own.
        refused = client.post(url, json={"text": "no", "reply_to_seq": 5}, headers=as_alice)
        assert refused.status_code == 400, refused.text
        posted = [
            client.post(url, json=body, headers=as_alice).json()["message"]
            for body in ({"text": "hi @bob"}, {"text": "answer", "reply_to_seq": 1})
        ]
        got = [socket.receive_json() for _ in posted]
        socket.close()
    assert got == [{"type": "message.created", "message": message} for message in posted]
    assert [m["seq"] for m in posted] == [1, 2]
    assert read_back == []


def test_a_kept_frame_is_given_once_and_the_oldest_go_past_the_bound(monkeypatch):
    monkeypatch.setattr(events, "KEPT_FRAMES", 3)
    events.forget_kept_frames()
    for seq in range(1, 5):
        events.keep_frame(7, seq, 100 + seq, f"frame {seq}")
    assert events.kept_frame(7, 1, 101) is None  # the oldest, gone past the bound
    assert events.kept_frame(7, 2, 999) is None  # another message's id: not this frame
    assert events.kept_frame(7, 2, 102) == "frame 2"
    assert events.kept_frame(7, 2, 102) is None  # given once
    events.forget_kept_frames()
    assert events.kept_frame(7, 3, 103) is None


class RecordingHub:
    def __init__(self):
        self.events = []

    def post(self, event, committed_at=None):
        self.events.append(event)


def test_a_listener_gives_a_notified_message_its_kept_frame_and_forgets_older_ones(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("notifications are PostgreSQL's")
    hub = RecordingHub()
    listener = sources.PostgresListener(hub, database_url)
    events.keep_frame(7, 1, 101, "kept before the listener listened")

    async def listen():
        await listener.start()
        try:
            await asyncio.wait_for(listener.ready.wait(), 10)
            events.keep_frame(7, 2, 102, "frame 2")
            for seq in (1, 2):
                notified = events.Event(
                    "message.created", group_id=7, seq=seq, message_id=100 + seq
                )
                listener._notified(None, 0, events.CHANNEL, events.encode(notified))
        finally:
            await listener.stop()

    asyncio.run(listen())
    assert [(e.seq, e.frame) for e in hub.events] == [(1, None), (2, "frame 2")]
