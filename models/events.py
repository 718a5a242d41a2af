"""Events for live delivery: what changed, sent only when the change commits.

Code that changes something a socket must hear about calls `emit(Event(...))` inside the
transaction that makes the change. The event then reaches the realtime hub iff that
transaction commits, however it commits (the request's `db_session`, or an explicit
`commit()` in the models), and never when it rolls back:

- PostgreSQL: `SELECT pg_notify(CHANNEL, payload)` runs in the transaction itself, so the
  database delivers it at commit to every process LISTENing on `CHANNEL` (every worker, on
  every machine), and discards it on rollback.
- SQLite (one process): the event waits in this thread's pending list; the provider's
  commit hands it to the local subscribers right after the commit succeeds, in commit order
  across threads, and a rollback (or a dropped connection) discards it.

On SQLite a `message.created` event is made with its frame as sockets get it, rendered once
in the transaction that makes the message, and the hub sends that text and reads nothing
back. A notification carries ids only (DESIGN.md, Fan-out): on PostgreSQL no frame goes with
it, and each worker's hub reads the message from the database, except the worker that
posted a text, which keeps its frame for its own hub (`keep_frame`). A payload stays well under
PostgreSQL's 8000-byte limit on a notification: an event too long for it, a `session.ended`
for a user with very many sessions, is sent as several events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable

from models.entities import db

logger = logging.getLogger(__name__)

CHANNEL = "im_events"
# PostgreSQL refuses a payload of 8000 bytes or more; leave room.
MAX_PAYLOAD = 7900

KINDS = frozenset(
    {
        "message.created",
        "member.added",
        "member.removed",
        "group.deleted",
        "session.ended",
        "notice",  # models.notices: user_id, its number as seq, group_id if it adds one
        "read",  # models.reads: group_id, user_id, the position as seq, counts, shared
        "message.updated",  # models.changes: group_id, seq, rev, message_id
        "group.updated",  # models.roles: group_id, the state version as seq
    }
)
REASONS = frozenset({"logout", "password_changed", "account_cancelled", "token_exposed"})


@dataclasses.dataclass(frozen=True)
class Event:
    kind: str
    group_id: int | None = None
    user_id: int | None = None
    seq: int | None = None
    rev: int | None = None  # message.created, message.updated: the conversation's change
    message_id: int | None = None
    session_ids: tuple[int, ...] = ()
    reason: str | None = None
    counts: tuple[int, ...] = ()  # read: the member's unread and mention counts
    shared: bool = False  # read: the other members see it too (receipts)
    # message.created, message.updated, group.updated, notice: the frame, on SQLite; never in
    # a notification
    frame: str | None = None


# The fields a notification carries (all but the frame), in order, the kind first.
_NOTIFIED = tuple(field for field in dataclasses.fields(Event) if field.name != "frame")

Subscriber = Callable[[Event], None]

_subscribers: list[Subscriber] = []
_subscribers_lock = threading.Lock()
_local = threading.local()  # .pending: events of this thread's open SQLite transaction
_hooked: set[int] = set()  # ids of the providers whose commit/rollback deliver/discard
_in_commit_order = threading.Lock()

# PostgreSQL: the `message.created` frames of text messages this process wrote, by (group
# id, seq, message id), until its hub hears their notification (`kept_frame`). A
# notification carries ids only (DESIGN.md), and the worker that made a message need not read
# back what it has just written: only the other workers do. The message's id is in the key
# because a rollback gives the seq back to the next message, never the id. Bounded, for the
# frames of transactions that rolled back or that no listener here hears.
KEPT_FRAMES = 1024
_kept: dict[tuple[int, int, int], str] = {}
_kept_lock = threading.Lock()


def emit(event: Event) -> None:
    """Send `event` when the caller's transaction commits (see the module's docstring).

    On PostgreSQL this runs a statement, so Pony flushes the changes made so far first:
    flush() before it where a unique key may refuse them, to handle that refusal."""
    for part in _split(event):
        if db.provider_name == "postgres":
            db.execute(
                "SELECT pg_notify($channel, $payload)",
                {},
                {"channel": CHANNEL, "payload": encode(part)},
            )
        else:
            _hook(db.provider)
            _pending().append(part)


def notify_sql(kind: str, **fields: str) -> str | None:
    """On PostgreSQL, an SQL expression that sends the event `kind` whose fields are the SQL
    expressions `fields` (columns of the statement it goes in, say), for a statement's
    RETURNING: the notification goes with the change, one round trip less than `emit`, and
    reads as `decode` expects. None on SQLite, where the caller emits the event instead."""
    if in_process():
        return None
    pairs = ", ".join(f"'{name}', {expression}" for name, expression in fields.items())
    return f"pg_notify('{CHANNEL}', json_build_object('kind', '{kind}', {pairs})::text)"


def in_process() -> bool:
    """Whether events reach the hub as they were made (SQLite), not as notifications: only
    then is a frame made with an event any use."""
    return db.provider_name != "postgres"


def keep_frame(group_id: int, seq: int, message_id: int, frame: str) -> None:
    """On PostgreSQL, before the commit of a message: its `message.created` frame, for this
    process's hub (`kept_frame`)."""
    with _kept_lock:
        _kept[(group_id, seq, message_id)] = frame
        if len(_kept) > KEPT_FRAMES:
            del _kept[next(iter(_kept))]  # the oldest


def kept_frame(group_id: int, seq: int, message_id: int) -> str | None:
    """The frame `keep_frame` kept for the message (once: it is forgotten), or None."""
    with _kept_lock:
        return _kept.pop((group_id, seq, message_id), None)


def forget_kept_frames() -> None:
    """A listener begins (again): what was kept is of notifications it never hears, and the
    database may have begun again too (a test's, whose ids restart)."""
    with _kept_lock:
        _kept.clear()


def encode(event: Event) -> str:
    """Compact JSON of the fields that are set (ids, the kind, the reason), the frame left
    out: a notification carries ids only."""
    fields = {"kind": event.kind}
    for field in _NOTIFIED[1:]:
        value = getattr(event, field.name)
        if value is not None and value != () and value is not False:
            fields[field.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(fields, separators=(",", ":"))


def decode(payload: str) -> Event:
    """The event `encode` wrote. Raises ValueError for anything else."""
    try:
        fields = json.loads(payload)
        if not isinstance(fields, dict) or fields.get("kind") not in KINDS:
            raise ValueError("not an event")
        known = {field.name for field in _NOTIFIED}
        if set(fields) - known:
            raise ValueError(f"unknown fields {sorted(set(fields) - known)}")
        for name in ("session_ids", "counts"):
            if name in fields:
                fields[name] = tuple(fields[name])
                if any(type(i) is not int for i in fields[name]):
                    raise ValueError(f"{name} are not integers")
        for name in ("group_id", "user_id", "seq", "rev", "message_id"):
            if name in fields and (type(fields[name]) is not int):
                raise ValueError(f"{name} is not an integer")
        if "shared" in fields and fields["shared"] is not True:
            raise ValueError("shared is not true")
        return Event(**fields)
    except (TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"not an event: {error}") from None


def subscribe(callback: Subscriber) -> None:
    """Call `callback(event)` for every event committed in this process (the SQLite path;
    on PostgreSQL events arrive by LISTEN instead). It runs in the thread that committed,
    right after the commit: it must be quick and thread-safe (hand the event over, e.g. with
    `loop.call_soon_threadsafe`). What it raises is logged, never the committer's problem."""
    with _subscribers_lock:
        _subscribers.append(callback)


def unsubscribe(callback: Subscriber) -> None:
    with _subscribers_lock:
        if callback in _subscribers:
            _subscribers.remove(callback)


def _split(event: Event) -> list[Event]:
    """The event as one or more events, each with a payload PostgreSQL accepts."""
    if len(encode(event).encode()) <= MAX_PAYLOAD or len(event.session_ids) <= 1:
        return [event]
    half = len(event.session_ids) // 2
    return [
        *_split(dataclasses.replace(event, session_ids=event.session_ids[:half])),
        *_split(dataclasses.replace(event, session_ids=event.session_ids[half:])),
    ]


def _pending() -> list[Event]:
    if not hasattr(_local, "pending"):
        _local.pending = []
    return _local.pending


def _deliver() -> None:
    events, _local.pending = _pending(), []
    if not events:
        return
    with _subscribers_lock:
        subscribers = list(_subscribers)
    for event in events:
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a subscriber's failure must not undo or fail the commit
                logger.exception("An event subscriber failed on %s", event)


def _discard() -> None:
    _local.pending = []


def _hook(provider) -> None:
    """Make the SQLite provider deliver this thread's pending events after each commit and
    discard them on rollback. Pony has no transaction hooks; its provider's commit and
    rollback are where every commit and rollback ends, whoever asked for them."""
    if id(provider) in _hooked:
        return
    with _subscribers_lock:
        if id(provider) in _hooked:
            return
        commit, rollback = provider.commit, provider.rollback
        drop, release = provider.drop, provider.release

        def commit_then_deliver(connection, cache=None):
            # Commit and hand over as one step, so the hub gets events in commit order
            # (two threads' commits could otherwise hand over in the other order). Only one
            # transaction at a time holds SQLite's write lock, so one that waits here never
            # holds it: no deadlock.
            with _in_commit_order:
                try:
                    commit(connection, cache)
                except BaseException:
                    _discard()  # Pony rolls back after a failed commit
                    raise
                _deliver()

        def rollback_and_discard(connection, cache=None):
            _discard()
            return rollback(connection, cache)

        def drop_and_discard(connection, cache=None):
            _discard()  # a dropped connection's transaction is gone
            return drop(connection, cache)

        def release_and_discard(connection, cache=None):
            _discard()  # the db_session ended: whatever did not commit never will
            return release(connection, cache)

        provider.commit = commit_then_deliver
        provider.release = release_and_discard
        provider.rollback = rollback_and_discard
        provider.drop = drop_and_discard
        _hooked.add(id(provider))
