"""A password check (bcrypt, a quarter of a second at the default cost) never holds the
database's write lock: on SQLite, the embedded default, one request's check would otherwise
make every other request that writes wait behind it, and logins of different accounts would
run one after the other (issue 21: 0.48 of the bcrypt limit).

Each operation that checks a password is run with the check wrapped: while it runs, another
connection must be able to take SQLite's write lock at once.
"""

from __future__ import annotations

import sqlite3

import pytest

from models import users

PASSWORD = "correct horse"


@pytest.fixture
def write_lock_free_during_checks(settings, monkeypatch):
    """Records, for each password check, whether another connection could take SQLite's
    write lock at once while it ran."""
    path = settings.sqlite_file
    if path is None:
        pytest.skip("SQLite's write lock: PostgreSQL locks rows, not the database")
    seen: list[bool] = []
    original = users.check_password

    def checking(password, password_hash):
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            seen.append(True)
        except sqlite3.OperationalError:  # "database is locked"
            seen.append(False)
        finally:
            other.close()
        return original(password, password_hash)

    monkeypatch.setattr(users, "check_password", checking)
    return seen


def test_login_checks_the_password_without_the_write_lock(
    client, auth, write_lock_free_during_checks
):
    auth.register("alice", PASSWORD)
    right = client.post("/api/user/login", json={"name": "alice", "password": PASSWORD})
    wrong = client.post("/api/user/login", json={"name": "alice", "password": "wrong horse"})
    assert (right.status_code, wrong.status_code) == (200, 400)
    assert write_lock_free_during_checks == [True, True]


def test_change_password_and_cancel_check_without_the_write_lock(
    client, auth, write_lock_free_during_checks
):
    token = auth.register("alice", PASSWORD)["token"]
    headers = auth.header(token)
    changed = client.post(
        "/api/user/change_password",
        json={"old_password": PASSWORD, "new_password": "battery staple"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    cancelled = client.post(
        "/api/user/cancel_account",
        json={"password": "battery staple"},
        headers=auth.header(changed.json()["token"]),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert write_lock_free_during_checks == [True, True]
