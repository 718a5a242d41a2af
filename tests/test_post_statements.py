"""The hot path's round trips on PostgreSQL: what one text post sends to the database, and
the group lock taken in the same round trip as the read of the sender (bench/README.md,
"Where a post's time goes")."""

from __future__ import annotations

import pytest
from pony.orm import db_session

from models import locks
from models.entities import db


@pytest.fixture
def postgres(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("the round trips counted are PostgreSQL's")


@pytest.fixture
def round_trips(monkeypatch) -> list[str]:
    """Every statement, commit and rollback Pony sends from now on."""
    sent: list[str] = []
    provider = type(db.provider)
    for name in ("execute", "commit", "rollback"):
        original = getattr(provider, name)

        def recording(self, *args, _name=name, _original=original, **kwargs):
            sent.append(str(args[1])[:60] if _name == "execute" else _name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(provider, name, recording)
    return sent


def test_a_text_post_takes_seven_round_trips(postgres, client, auth, round_trips):
    headers = auth.new_user("alice")
    created = client.post("/api/groups", json={"name": "g"}, headers=headers)
    url = f"/api/groups/{created.json()['group']['id']}/messages"
    round_trips.clear()
    posted = client.post(url, json={"text": "hi", "client_msg_id": "c-1"}, headers=headers)
    assert posted.status_code == 201, posted.text
    # The session's row; the limits (one upsert, its commit, the rollback that ends it); the
    # group's lock with the sender's name and avatar; the statement that takes the seq and
    # inserts; the commit.
    assert len(round_trips) == 7, round_trips


def test_the_group_lock_is_taken_whether_the_query_finds_a_row_or_not(postgres, app):
    with db_session:
        found = locks.group_reading(42, "SELECT 7 AS a, NULL AS b WHERE $x = 1", {"x": 1})
        assert found == (7, None)
        assert _shared_group_locks() == 1
    with db_session:
        assert locks.group_reading(42, "SELECT 7 AS a WHERE $x = 1", {"x": 2}) is None
        assert _shared_group_locks() == 1
    with db_session:
        assert _shared_group_locks() == 0  # held until the transaction ended


def _shared_group_locks() -> int:
    return db.select(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
        "AND pid = pg_backend_pid()"
    )[0]
