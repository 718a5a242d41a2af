"""The live channel across processes and machines: two `im-api serve` processes with their
own instance folders on one PostgreSQL database (LISTEN/NOTIFY), a socket on each.

Runs when the suite runs on PostgreSQL (`IM_TEST_DATABASE_URL=postgresql://...`).
"""

from __future__ import annotations

import secrets
import time

import pytest
from pony.orm import db_session
from test_realtime import Api, Socket, emptied, start_server

from models.entities import db


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory, database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("servers share a PostgreSQL database (IM_TEST_DATABASE_URL)")
    database = emptied(tmp_path_factory, database_url)
    keys = secrets.token_urlsafe(32)
    one = start_server(tmp_path_factory, database, workers=1, IM_SECRET_KEYS=keys)
    two = start_server(tmp_path_factory, database, workers=1, IM_SECRET_KEYS=keys)
    yield one, two
    one.stop()
    two.stop()


def test_a_message_posted_through_one_server_reaches_sockets_on_both(two_servers):
    one, two = two_servers
    alice, bob = Api(one).user(), Api(two).user()
    group_id = alice.group(bob)
    on_one, on_two = alice.socket(), bob.socket()
    on_one.sync(), on_two.sync()
    posted = alice.post(group_id, "across machines")
    assert on_one.recv() == on_two.recv() == {"type": "message.created", "message": posted}
    bob_on_one = Socket.open(one, bob.id, bob.token)
    replayed, ready = bob_on_one.sync({group_id: 0})
    assert [f["message"] for f in replayed] == [posted]
    for socket in (on_one, on_two, bob_on_one):
        socket.close()


def test_a_logout_on_one_server_closes_the_socket_on_the_other_within_a_second(two_servers):
    one, two = two_servers
    alice = Api(one).user()
    on_two = Socket.open(two, alice.id, alice.token)
    on_two.sync()
    alice.call("POST", "/user/logout")
    started = time.monotonic()
    assert on_two.recv(timeout=1) == {"type": "session.ended", "reason": "logout"}
    assert on_two.closed_with(timeout=1) == 4410
    assert time.monotonic() - started < 1


def test_a_worker_that_loses_its_listen_connection_closes_its_sockets_4503_and_listens_again(
    two_servers,
):
    one, two = two_servers
    alice = Api(one).user()
    group_id = alice.group()
    on_one, on_two = alice.socket(), Socket.open(two, alice.id, alice.token)
    on_one.sync(), on_two.sync()
    with db_session:
        # Both servers' listening connections are named so (on this database: other servers
        # of the PostgreSQL cluster are not ours); each server loses its own.
        ended = db.select(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'im-api realtime' AND datname = current_database()"
        )
    assert len(ended) == 2
    assert on_one.closed_with() == 4503 and on_two.closed_with() == 4503
    # Listening again: a new socket hears a new message.
    deadline = time.monotonic() + 10
    while True:
        again = alice.socket()
        again.sync()
        posted = alice.post(group_id, "after the reconnection")
        try:
            assert again.recv(timeout=3) == {"type": "message.created", "message": posted}
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
    again.close()
