"""models.events: an event reaches the hub iff the transaction that emitted it commits.

On PostgreSQL a real LISTEN connection (psycopg2, as Pony uses) hears the notification only
after the commit and never after a rollback; on SQLite the in-process subscribers are called
after the commit and never after a rollback. Then: which operations emit what.
"""

from __future__ import annotations

import json
import select
import threading
import time
from unittest.mock import ANY

import psycopg2
import pytest
from pony.orm import commit, db_session, rollback

from models import events
from models.entities import User, db

Event = events.Event


class Heard:
    """The events committed meanwhile, heard as the realtime hub hears them: by LISTEN on
    PostgreSQL, as a subscriber on SQLite."""

    def __init__(self, database_url: str):
        self.postgres = database_url.startswith("postgres")
        self._events: list[Event] = []
        self._lock = threading.Lock()
        if self.postgres:
            self.connection = psycopg2.connect(database_url)
            self.connection.autocommit = True
            self.connection.cursor().execute(f"LISTEN {events.CHANNEL}")
        else:
            events.subscribe(self._record)

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def events(self, wait: float = 0.3) -> list[Event]:
        """Everything heard so far (after `wait` seconds for notifications in flight)."""
        if self.postgres:
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                select.select([self.connection], [], [], left)
                self.connection.poll()
            while self.connection.notifies:
                note = self.connection.notifies.pop(0)
                assert note.channel == events.CHANNEL
                self._record(events.decode(note.payload))
        with self._lock:
            found, self._events = self._events, []
        return found

    def close(self) -> None:
        if self.postgres:
            self.connection.close()
        else:
            events.unsubscribe(self._record)


@pytest.fixture
def heard(app, database_url):
    listener = Heard(database_url)
    yield listener
    listener.close()


def _change_something() -> int:
    """Make a change, so the transaction has something to commit."""
    user = User.select().first()
    user.name = "changed"
    return user.id


@pytest.fixture
def someone(auth) -> dict:
    return auth.new_user("someone")


# --- The transaction decides ------------------------------------------------------------------


def test_an_event_is_heard_once_its_transaction_commits_and_not_before(heard, someone):
    event = Event("message.created", group_id=7, seq=3, message_id=11)
    with db_session:
        _change_something()
        events.emit(event)
        db.execute("SELECT 1")  # still inside the transaction
        assert heard.events() == []
    assert heard.events() == [event]


def test_an_event_of_a_transaction_that_rolls_back_is_never_heard(heard, someone):
    with db_session:
        _change_something()
        events.emit(Event("group.deleted", group_id=5))
        rollback()
        commit()  # a later commit of the same db_session sends nothing of it
    assert heard.events() == []


def test_an_event_of_a_db_session_that_raises_is_never_heard(heard, someone):
    with pytest.raises(RuntimeError), db_session:
        _change_something()
        events.emit(Event("group.deleted", group_id=5))
        raise RuntimeError("the request fails")
    assert heard.events() == []


def test_an_explicit_commit_sends_what_came_before_it_only(heard, someone):
    first, second = Event("group.deleted", group_id=1), Event("group.deleted", group_id=2)
    with db_session:
        _change_something()
        events.emit(first)
        commit()
        assert heard.events() == [first]
        _change_something()
        events.emit(second)
        rollback()
    assert heard.events() == []


def test_events_come_in_the_order_they_were_emitted(heard, someone):
    sent = [Event("message.created", group_id=1, seq=n, message_id=100 + n) for n in range(1, 6)]
    with db_session:
        _change_something()
        for event in sent:
            events.emit(event)
    assert heard.events() == sent


def test_a_failing_subscriber_neither_fails_the_commit_nor_stops_the_others(
    heard, someone, database_url
):
    if database_url.startswith("postgres"):
        pytest.skip("subscribers are the SQLite path; PostgreSQL delivers by NOTIFY")

    def broken(event):
        raise RuntimeError("subscriber bug")

    events.subscribe(broken)
    try:
        with db_session:
            user_id = _change_something()
            events.emit(Event("group.deleted", group_id=9))
        with db_session:
            assert User[user_id].name == "changed"
    finally:
        events.unsubscribe(broken)
    assert heard.events() == [Event("group.deleted", group_id=9)]


# --- The payload ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Event("message.created", group_id=2**62, seq=1, message_id=2**63 - 1),
        Event("member.added", group_id=1, user_id=2),
        Event("member.removed", group_id=1, user_id=2),
        Event("group.deleted", group_id=3),
        Event("session.ended", user_id=4, session_ids=(5, 6), reason="logout"),
        Event("message.updated", group_id=1, seq=2, rev=9, message_id=3),
        Event("read", group_id=1, user_id=2, seq=7, counts=(3, 1), shared=True),
        Event("notice", user_id=2, seq=5, group_id=8),
    ],
    ids=lambda e: e.kind,
)
def test_encode_and_decode_are_inverse_and_carry_ids_only(event):
    payload = events.encode(event)
    assert events.decode(payload) == event
    assert " " not in payload and len(payload) < 200
    assert set(json.loads(payload)) <= {f for f in Event.__dataclass_fields__} - {"frame"}


def test_a_message_frame_never_goes_in_a_notification():
    """The event a message makes holds its frame for this process's hub (SQLite); the
    notification (PostgreSQL) carries ids only, as DESIGN.md decides."""
    bare = Event("message.created", group_id=1, seq=2, message_id=3)
    framed = Event("message.created", group_id=1, seq=2, message_id=3, frame='{"text":"hi"}')
    assert events.encode(framed) == events.encode(bare)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "[]",
        "{}",
        '{"kind": "nope"}',
        '{"kind": "group.deleted", "group_id": "1"}',
        '{"kind": "group.deleted", "extra": 1}',
        '{"kind": "read", "counts": [1, "2"]}',
        '{"kind": "read", "counts": 3}',
        '{"kind": "read", "shared": "yes"}',
        "{",
        '{"kind": "session.ended", "session_ids": 5}',
        '{"kind": "message.created", "group_id": 1, "seq": 1, "frame": {"type": "x"}}',
    ],
)
def test_decode_refuses_what_encode_never_writes(payload):
    with pytest.raises(ValueError):
        events.decode(payload)


def test_a_session_ended_for_very_many_sessions_is_split_to_fit_a_notification(heard, someone):
    ids = tuple(range(10**15, 10**15 + 3000))
    with db_session:
        _change_something()
        events.emit(Event("session.ended", user_id=1, session_ids=ids, reason="logout"))
    parts = heard.events(wait=1)
    assert len(parts) > 1
    assert all(len(events.encode(p).encode()) < 8000 for p in parts)
    assert tuple(i for p in parts for i in p.session_ids) == ids
    assert {(p.kind, p.user_id, p.reason) for p in parts} == {("session.ended", 1, "logout")}


# --- What the operations emit ---------------------------------------------------------------


def _group(client, headers, name="g") -> int:
    response = client.post("/api/groups", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["group"]["id"]


def _me(client, headers) -> int:
    return client.get("/api/user/me", headers=headers).json()["user"]["id"]


def _session_ids(user_id: int) -> set[int]:
    from models.entities import Session

    with db_session:
        return {s.id for s in Session.select(lambda s: s.user.id == user_id)}


def test_posting_text_or_an_upload_emits_message_created_with_its_seq(client, auth, heard):
    alice = auth.new_user("alice")
    group_id = _group(client, alice)
    heard.events()
    text = client.post(f"/api/groups/{group_id}/messages", json={"text": "hi"}, headers=alice)
    files = {"file": ("a.txt", b"hello")}
    upload = client.post(f"/api/groups/{group_id}/upload_file", files=files, headers=alice)
    assert (text.status_code, upload.status_code) == (201, 201), (text.text, upload.text)
    posted = text.json()["message"]
    uploaded = client.get(f"/api/groups/{group_id}/messages", headers=alice).json()["messages"]
    uploaded = next(m for m in uploaded if m["id"] == upload.json()["message_id"])
    # In this process each brings its frame; a notification carries ids only. A text's names
    # the message (it goes with the INSERT: the posting worker's hub finds the frame it kept
    # by it); an upload's does not (it goes with the UPDATE that takes the seq, before Pony's
    # INSERT, models.messages._next_seq), and a hub reads the message by its group and seq.
    framed = None if heard.postgres else ANY

    def created(seq, message_id, text=True):
        """The event of a new message (a seq is its first rev too)."""
        return Event(
            "message.created",
            group_id=group_id,
            seq=seq,
            rev=seq,
            message_id=None if heard.postgres and not text else message_id,
            frame=framed,
        )

    found = heard.events()
    assert found == [created(1, posted["id"]), created(2, uploaded["id"], text=False)]
    if not heard.postgres:  # the frames as sockets get them (the media URL's signature aside)
        first, second = found
        assert json.loads(first.frame) == {"type": "message.created", "message": posted}
        unsigned = {**uploaded, "url": ANY}
        assert json.loads(second.frame) == {"type": "message.created", "message": unsigned}
    # The same client_msg_id again answers the first message and emits nothing.
    body = {"text": "once", "client_msg_id": "c-1"}
    url = f"/api/groups/{group_id}/messages"
    first = client.post(url, json=body, headers=alice).json()["message"]
    assert client.post(url, json=body, headers=alice).status_code == 200
    assert heard.events() == [created(3, first["id"])]


def test_membership_changes_emit_member_added_and_removed_then_group_deleted(client, auth, heard):
    alice, bob = auth.new_user("alice"), auth.new_user("bob")
    carol = auth.new_user("carol")
    alice_id, bob_id, carol_id = _me(client, alice), _me(client, bob), _me(client, carol)
    group_id = _group(client, alice)
    heard.events()
    for name in ("bob", "carol"):
        added = client.post(f"/api/groups/{group_id}/members", json={"name": name}, headers=alice)
        assert added.status_code == 200, added.text
    again = client.post(f"/api/groups/{group_id}/members", json={"name": "bob"}, headers=alice)
    assert again.status_code == 409
    assert heard.events() == [
        Event("member.added", group_id=group_id, user_id=bob_id),
        Event("member.added", group_id=group_id, user_id=carol_id),
    ]
    members = f"/api/groups/{group_id}/members"
    assert client.delete(f"{members}/{carol_id}", headers=alice).status_code == 200  # removed
    assert client.delete(f"{members}/{alice_id}", headers=alice).status_code == 200  # leaves
    removed, left, owner_changed = heard.events()
    assert removed == Event("member.removed", group_id=group_id, user_id=carol_id)
    assert left == Event("member.removed", group_id=group_id, user_id=alice_id)
    # The owner's leaving passes the group on: a change of its state (models.roles).
    assert (owner_changed.kind, owner_changed.group_id, owner_changed.seq) == (
        "group.updated",
        group_id,
        1,
    )
    if heard.postgres:  # a notification carries ids only: the group as its members see it
        group = client.get(f"/api/groups/{group_id}", headers=bob).json()["group"]
        assert group["owner_id"] == bob_id
    else:
        assert json.loads(owner_changed.frame)["group"]["owner_id"] == bob_id
    assert client.delete(f"{members}/{bob_id}", headers=bob).status_code == 200  # the last
    # The last member's leaving deletes the group: that is the one event (its sockets are
    # told the group is gone, not that its last member left a group that no longer exists).
    assert heard.events() == [Event("group.deleted", group_id=group_id)]


def test_logout_ends_its_own_session_only(client, auth, heard):
    alice = auth.new_user("alice")
    other = auth.header(auth.login("alice"))
    alice_id = _me(client, alice)
    before = _session_ids(alice_id)
    heard.events()
    assert client.post("/api/user/logout", headers=other).status_code == 200
    [ended] = heard.events()
    assert ended.kind == "session.ended" and ended.reason == "logout"
    assert ended.user_id == alice_id
    assert set(ended.session_ids) == before - _session_ids(alice_id) and len(ended.session_ids) == 1


def test_a_password_change_ends_every_session_the_user_had(client, auth, heard):
    alice = auth.new_user("alice")
    auth.login("alice")
    alice_id = _me(client, alice)
    before = _session_ids(alice_id)
    heard.events()
    changed = client.post(
        "/api/user/change_password",
        json={"old_password": "correct horse", "new_password": "battery staple"},
        headers=alice,
    )
    assert changed.status_code == 200, changed.text
    assert heard.events() == [
        Event(
            "session.ended",
            user_id=alice_id,
            session_ids=tuple(sorted(before)),
            reason="password_changed",
        )
    ]
    assert not before & _session_ids(alice_id)  # the fresh session is not among them


def test_cancelling_an_account_leaves_its_groups_and_ends_its_sessions(client, auth, heard):
    alice, bob = auth.new_user("alice"), auth.new_user("bob")
    alice_id = _me(client, alice)
    shared, alone = _group(client, alice, "shared"), _group(client, alice, "alone")
    client.post(f"/api/groups/{shared}/members", json={"name": "bob"}, headers=alice)
    sessions = _session_ids(alice_id)
    heard.events()
    wrong = client.post("/api/user/cancel_account", json={"password": "nope"}, headers=alice)
    assert wrong.status_code == 400
    assert heard.events() == []
    done = client.post(
        "/api/user/cancel_account", json={"password": "correct horse"}, headers=alice
    )
    assert done.status_code == 200, done.text
    assert bob  # bob stays in the shared group, now its owner
    events = heard.events()
    owner_changed = events.pop(1)
    assert (owner_changed.kind, owner_changed.group_id) == ("group.updated", shared)
    assert events == [
        Event("member.removed", group_id=shared, user_id=alice_id),
        Event("group.deleted", group_id=alone),
        Event(
            "session.ended",
            user_id=alice_id,
            session_ids=tuple(sorted(sessions)),
            reason="account_cancelled",
        ),
    ]
