"""Each user's own feed of notices: what changed in their contacts, contact requests, blocks
and conversations, for their sockets live and for a socket that resumes.

A notice is kept as the frame its user's sockets get, numbered 1, 2, 3 ... per user in
commit order with no gaps (like a conversation's seq: the number is taken by raising
`User.last_notice` in the notice's own transaction, under that row's lock). A socket that
gives the last number it saw in `sync` gets every later notice again, in order; live ones
follow. Only the newest `KEPT` notices of a user are kept: a socket further behind is told
so by `ready` and reads the lists over REST instead.
"""

from __future__ import annotations

from pony import orm
from pony.orm import delete, select

from im_core.config import now
from models import events, frames
from models.entities import Notice, User, db

# Notices kept per user; older ones are deleted as new ones come.
KEPT = 1000


def send(user_id: int, kind: str, /, *, joins: int | None = None, **payload) -> None:
    """Add a notice of `kind` (the frame's type, its fields `payload`) for `user_id`, sent to
    their sockets when the transaction commits. `joins`: a conversation the user's sockets
    start hearing with it (a new direct chat)."""
    number = _next_number(user_id)
    frame = frames.dumps({"type": kind, "notice": number, **payload})
    Notice(user=user_id, number=number, frame=frame, created_at=now())
    if number > KEPT:
        delete(n for n in Notice if n.user.id == user_id and n.number <= number - KEPT)
    events.emit(
        events.Event(
            "notice",
            user_id=user_id,
            seq=number,
            group_id=joins,
            frame=frame if events.in_process() else None,
        )
    )


def after(user_id: int, number: int, limit: int) -> list[tuple[int, str]]:
    """Up to `limit` notices of the user after `number`, oldest first: (number, frame)."""
    found = (
        Notice.select(lambda n: n.user.id == user_id and n.number > number)
        .order_by(lambda n: n.number)
        .limit(limit)
    )
    return [(n.number, n.frame) for n in found]


def frames_of(keys: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The frames of the notices named by (user id, number), those still kept."""
    found: dict[tuple[int, int], str] = {}
    by_user: dict[int, list[int]] = {}
    for user_id, number in keys:
        by_user.setdefault(user_id, []).append(number)
    for user_id, numbers in by_user.items():
        kept = select(n for n in Notice if n.user.id == user_id and n.number in numbers)
        for notice in kept:
            found[(user_id, notice.number)] = notice.frame
    return found


def position(user_id: int) -> tuple[int, int]:
    """(the user's last notice number, the oldest one still kept, or last + 1 if none)."""
    last = User[user_id].last_notice
    oldest = orm.min(n.number for n in Notice if n.user.id == user_id)
    return last, oldest if oldest is not None else last + 1


def _next_number(user_id: int) -> int:
    """Raise the user's last_notice by one and return it; the UPDATE holds the row's lock
    until the transaction ends."""
    table = User._table_
    cursor = db.execute(
        f'UPDATE "{table}" SET "last_notice" = "last_notice" + 1 WHERE "id" = $user_id '
        'RETURNING "last_notice"',
        {},
        {"user_id": user_id},
    )
    return cursor.fetchone()[0]
