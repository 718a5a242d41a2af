"""What the socket server reads from the database, as plain functions for worker threads.

Pony is synchronous: the event loop never calls these directly but through `Store.run`, on
a few threads of its own (so the sockets never wait behind the Flask bridge's request
threads, nor those behind a burst of sockets). Each call is one short `db_session` and
returns plain values (ids, numbers, frame texts), never entities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor

from pony.orm import db_session, select

from im_core import security
from im_core.config import now
from models import frames, sessions, throttle
from models.entities import Group, Membership, Message, Session, User

# Messages rendered per query while replaying: a page of frames held at once per socket.
PAGE = 100
# The limit (models.throttle) of messages replayed per user.
REPLAY_LIMIT = "replay_per_user"


@dataclasses.dataclass
class Replayed:
    """A page of a replay: (seq, frame) pairs; `spent_for` the seconds until the user's
    replay budget is whole again, when it ran out before this page."""

    page: list[tuple[int, str]]
    more: bool = False  # the page is full: the group may have more after it
    spent_for: int | None = None


class Store:
    """Runs the functions below off the event loop, on `threads` threads of its own."""

    def __init__(self, threads: int = 4):
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="realtime-db")

    async def run(self, function, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def authenticate(token: str) -> tuple[int, int, float] | None:
    """(session id, user id, seconds until the session expires) of a live session named by
    `token`; None for a token that is badly signed, too old, or whose session ended or
    expired."""
    info = security.token_info(token)
    if info is None:
        return None
    with db_session:
        session = Session.get(key=info["sub"])
        if session is None or session.expires_at <= now():
            return None
        return session.id, session.user.id, (session.expires_at - now()).total_seconds()


def end_exposed(tokens: list[str]) -> int:
    """End the sessions of `tokens`, seen in a socket URL's query (`sessions.end_exposed`);
    how many ended. Badly signed or old tokens name nothing and are skipped."""
    ended = 0
    for token in tokens:
        info = security.token_info(token)
        if info is not None:
            with db_session:
                ended += sessions.end_exposed(info)
    return ended


def groups_of(session_id: int, user_id: int) -> set[int] | None:
    """The ids of the user's groups, read after the socket was registered for its events;
    None when the session ended in the meantime (its end event may have gone by already)."""
    with db_session:
        if not Session.exists(id=session_id):
            return None
        return set(select(m.group.id for m in Membership if m.user.id == user_id))


def positions(user_id: int) -> dict[int, int]:
    """Every group of the user and its last seq (the `ready` frame)."""
    with db_session:
        return dict(
            select((m.group.id, m.group.last_seq) for m in Membership if m.user.id == user_id)
        )


def message_frames(spans: dict[int, tuple[int, int]]) -> dict[int, list[tuple[int, str]]]:
    """The `message.created` frames of the messages with `low < seq <= high` of each group
    (`spans` maps group id to (low, high)), in seq order, each serialized once."""
    from models import messages  # late: the model imports the app's config at import

    found_frames: dict[int, list[tuple[int, str]]] = {}
    with db_session:
        for group_id, (low, high) in spans.items():
            found = select(
                m for m in Message if m.group.id == group_id and m.seq > low and m.seq <= high
            ).order_by(lambda m: m.seq)
            found_frames[group_id] = [
                (m.seq, frames.message_created(messages.view(m))) for m in found
            ]
    return found_frames


def replay(user_id: int, group_id: int, after: int) -> Replayed | None:
    """Up to PAGE frames of the group's messages with seq > `after`, in seq order, counted
    against the user's budget of replayed messages (`limit_replay_per_user`, shared by its
    sockets on every worker); None when the user is not (or no longer) a member."""
    from models import messages

    with db_session:
        if not Membership.exists(group=group_id, user=user_id):
            return None
        budget = throttle.left(REPLAY_LIMIT, str(user_id))
        if budget is not None and budget[0] == 0:
            return Replayed([], spent_for=budget[1])
        asked = PAGE if budget is None else min(PAGE, budget[0])
        found = (
            select(m for m in Message if m.group.id == group_id and m.seq > after)
            .order_by(lambda m: m.seq)
            .limit(asked)
        )
        page = [(m.seq, frames.message_created(messages.view(m))) for m in found]
        throttle.spend_many(REPLAY_LIMIT, str(user_id), len(page))
        return Replayed(page, more=len(page) == asked)


def batch_frames(
    spans: dict[int, tuple[int, int]], members: set[tuple[int, int]]
) -> tuple[dict[int, list[tuple[int, str]]], dict[tuple[int, int], str | None]]:
    """What a batch of events needs from the database, in one session: the message frames
    of `spans` (see `message_frames`) and the `member.added` frame of each (group, user)."""
    with db_session:
        return message_frames(spans), {key: member_frame(*key) for key in members}


def member_frame(group_id: int, user_id: int) -> str | None:
    """The `member.added` frame; None when the account went meanwhile (nothing to show)."""
    from models import profiles

    with db_session:
        user = User.get(id=user_id)
        if user is None or not Group.exists(id=group_id):
            return None
        return frames.dumps(
            {"type": "member.added", "group_id": group_id, "user": profiles.member_view(user)}
        )
