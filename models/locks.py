"""Locks that make concurrent requests on the same account, group or media file take turns.

Pony checks at commit time that the columns a transaction read are unchanged ("updated
outside of current transaction": a 500), and checks nothing across rows, so two requests
each acting on a state the other is changing break invariants (a group whose owner has left)
or fail. A request that changes an account or a group takes that object's lock before it
reads it, and holds it until its transaction ends: requests on one object then run one after
the other, each reading what the previous one committed.

On PostgreSQL these are transaction-level advisory locks (shared or exclusive), so they
never conflict with the row locks PostgreSQL takes itself. On SQLite, a single writer
anyway, taking any lock begins the transaction as an immediate one: the process holds the
database's write lock until the transaction ends.

To rule out deadlocks, a transaction takes its account locks first (one, or two shared ones
in increasing id order: `pair`), then the lock of a pair of users, then group locks in
increasing id order, then message locks in increasing (group, seq) order; media file locks
come last.
"""

from __future__ import annotations

import hashlib

from pony.orm import flush, rollback

from models.entities import db


def account(user_id: int, *, shared: bool = False) -> None:
    """Lock the account `user_id`: exclusive to change it or delete it, shared to add rows
    that refer to it (a session, a membership), which its deletion must not miss."""
    _lock(_key(f"user:{user_id}"), shared)


def group(group_id: int, *, shared: bool = False) -> None:
    """Lock the group `group_id`: exclusive to change its members or owner, or delete it;
    shared to add a message to it."""
    _lock(_key(f"group:{group_id}"), shared)


def group_reading(group_id: int, query: str, arguments: dict) -> tuple | None:
    """Lock the group `group_id` shared (as `group`) and run `query`, a SELECT of one row at
    most with `$` parameters: its row, or None. On PostgreSQL one round trip does both (the
    hot path: a post reads its sender so), and the query reads what was committed before
    the lock was taken."""
    if db.provider_name != "postgres":
        group(group_id, shared=True)
        found = db.execute(query, {}, arguments).fetchone()
        return None if found is None else tuple(found)
    flush()
    arguments = {**arguments, "lock_key": _key(f"group:{group_id}")}
    # The lock is the outer side of the join, so it is taken whether the query finds a row.
    found = db.execute(
        'SELECT "row".* FROM (SELECT pg_advisory_xact_lock_shared($lock_key)) AS "lock" '
        f'LEFT JOIN (SELECT 1 AS "found", "q".* FROM ({query}) AS "q") AS "row" ON TRUE',
        {},
        arguments,
    ).fetchone()
    return None if found[0] is None else tuple(found[1:])


def pair(user_id: int, other_id: int) -> None:
    """Lock what lies between two users (a contact, its requests, blocks, their direct chat):
    both accounts shared, in id order, so neither is cancelled meanwhile, then the pair
    itself, exclusive. Requests between the same two users take turns."""
    low, high = sorted((user_id, other_id))
    account(low, shared=True)
    account(high, shared=True)
    _lock(_key(f"pair:{low}:{high}"), False)


def message(group_id: int, seq: int, *, shared: bool = False) -> None:
    """Lock one message (after its group's lock): exclusive to change it (edit, recall),
    shared to copy it (forward), which its recall must wait for."""
    _lock(_key(f"message:{group_id}:{seq}"), shared)


def media_file(sha256: str) -> None:
    """Lock the media file with this hash (placing or deleting it)."""
    _lock(int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True), False)


def forget_reads() -> None:
    """End the request's transaction and forget every object it read (Pony keeps what it
    read for the rest of the session, values and all): what is read after the next lock
    is read afresh. What was committed stays."""
    rollback()


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _lock(key: int, shared: bool) -> None:
    """Hold the lock until the transaction ends (`db.execute` begins one if needed)."""
    flush()
    if db.provider_name == "postgres":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        db.execute(f"SELECT {function}($key)", {}, {"key": key})
    else:
        # SQLite has one writer at a time: inside a transaction Pony began IMMEDIATE, this
        # process holds the write lock until the transaction ends.
        db.execute("SELECT 1")
