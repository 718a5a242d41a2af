"""Ids above 2**31 work through the API: every id is 64-bit since migration 0002 (BIGINT with
a bigint sequence on PostgreSQL, the rowid on SQLite), and the contract's ids go up to
2**53 - 1.

Each table's next id is moved past 2**31 (its sequence, or SQLite's `sqlite_sequence`), then a
user, a session, a group, a membership, a message with its media, a failed login and an email
code are made and used by path, as clients do.
"""

from __future__ import annotations

import pytest
from pony.orm import db_session

from models.entities import db

BEYOND_32_BITS = 2**31 + 10
LARGEST_ID = 2**53 - 1


@pytest.fixture
def large_ids(app):
    """Every table's next id past 2**31 (each a different one), put back afterwards."""
    with db_session:
        for offset, entity in enumerate(db.entities.values()):
            start = BEYOND_32_BITS + offset * 1000
            table = entity._table_
            if db.provider_name == "postgres":
                db.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), {start})")
            else:
                db.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
                db.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('{table}', {start})")
    yield
    # The next test empties the tables; on PostgreSQL that also restarts the sequences.
    if db.provider_name == "sqlite":
        with db_session:
            db.execute("DELETE FROM sqlite_sequence")


def test_ids_beyond_32_bits_work_through_the_api(client, auth, large_ids):
    import media_samples as samples

    alice = auth.new_user("alice")
    bob_id = auth.register("bob")["user"]["id"]
    me = client.get("/api/user/me", headers=alice).json()["user"]
    assert me["id"] > 2**31 and bob_id > 2**31

    made = client.post("/api/groups", json={"name": "big ids"}, headers=alice)
    group_id = made.json()["group"]["id"]
    assert made.status_code == 201 and group_id > 2**31
    assert (
        client.post(
            f"/api/groups/{group_id}/members", json={"name": "bob"}, headers=alice
        ).status_code
        == 200
    )
    assert client.get(f"/api/groups/{group_id}", headers=alice).status_code == 200

    image = samples.png()
    uploaded = client.post(
        f"/api/groups/{group_id}/upload_image", files={"image": ("a.png", image)}, headers=alice
    ).json()
    assert uploaded["media_id"] > 2**31 and uploaded["message_id"] > 2**31
    assert client.get(uploaded["url"]).content == image
    page = client.get(
        f"/api/groups/{group_id}/messages?cursor={uploaded['message_id'] + 1}", headers=alice
    ).json()
    assert [m["id"] for m in page["messages"]] == [uploaded["message_id"]]

    wrong = client.post("/api/user/login", json={"name": "bob", "password": "wrong one"})
    assert wrong.status_code == 400  # a failed login row with a large id
    code = client.post(
        "/api/user/email_code", json={"email": "bob@example.com", "purpose": "register"}
    )
    assert code.status_code == 200  # an email code row with a large id

    removed = client.delete(f"/api/groups/{group_id}/members/{bob_id}", headers=alice)
    assert removed.status_code == 200, removed.text


def test_the_largest_id_of_the_contract_is_looked_up_and_not_found(client, auth):
    """2**53 - 1 is a valid id that names nothing: 404 for a group, a member and a media."""
    from im_core import security

    alice = auth.new_user("alice")
    group_id = client.post("/api/groups", json={"name": "g"}, headers=alice).json()["group"]["id"]
    assert client.get(f"/api/groups/{LARGEST_ID}", headers=alice).status_code == 404
    removed = client.delete(f"/api/groups/{group_id}/members/{LARGEST_ID}", headers=alice)
    assert removed.status_code == 404
    signature = security.sign_media(LARGEST_ID, 60)
    assert client.get(f"/api/media/{LARGEST_ID}?sig={signature}").status_code == 404
