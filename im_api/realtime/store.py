"""What the socket server reads from the database, as plain functions for worker threads.

Pony is synchronous: the event loop never calls these directly but through `Store.run`, on
a few threads of its own (so the sockets never wait behind the Flask bridge's request
threads, nor those behind a burst of sockets). Each call is one short `db_session` and
returns plain values (ids, numbers, frame texts), never entities.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pony.orm import db_session, exists, select

from im_core import security
from im_core.config import now
from models import frames, messages, notices, profiles, reads, roles, sessions, throttle
from models.entities import Group, Hidden, Membership, Message, Session, User

# Messages rendered per query while replaying: a page of frames held at once per socket.
PAGE = 100
# The limit (models.throttle) of messages replayed per user.
REPLAY_LIMIT = "replay_per_user"


@dataclass
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


def ready_state(user_id: int) -> tuple[dict[int, tuple[int, int, int]], dict]:
    """What `ready` says of every conversation of the user, read in one session: its last
    seq, last rev and state version, and the user's read position, unread and mention counts
    in it."""
    with db_session:
        last = select(
            (m.group.id, m.group.last_seq, m.group.last_rev, m.group.state_version)
            for m in Membership
            if m.user.id == user_id
        )
        return {g: (seq, rev, version) for g, seq, rev, version in last}, reads.states(user_id)


def changed_states(user_id: int, versions: dict[int, int]) -> list[str]:
    """The `group.updated` frames of the user's groups among `versions` (group id to the
    state version the client has) whose state moved on since."""
    with db_session:
        ids = list(versions)
        found = select(
            m.group for m in Membership if m.user.id == user_id and m.group.id in ids
        ).order_by(lambda g: g.id)
        return [roles.state_frame(g) for g in found if g.state_version > versions[g.id]]


def state_frames(group_ids: set[int]) -> dict[int, str]:
    """The `group.updated` frame of each group as it is now (those still there)."""
    with db_session:
        ids = list(group_ids)
        return {g.id: roles.state_frame(g) for g in select(g for g in Group if g.id in ids)}


def notice_position(user_id: int) -> tuple[int, int]:
    """(the user's last notice number, the oldest one kept): see `models.notices.position`."""
    with db_session:
        return notices.position(user_id)


def notices_after(user_id: int, number: int) -> list[tuple[int, str]]:
    """Up to PAGE notice frames of the user after `number`, in order."""
    with db_session:
        return notices.after(user_id, number, PAGE)


def message_frames(spans: dict[int, tuple[int, int]]) -> dict[int, list[tuple[int, str]]]:
    """The `message.created` frames of the messages with `low < seq <= high` of each group
    (`spans` maps group id to (low, high)), in seq order, each serialized once."""
    found_frames: dict[int, list[tuple[int, str]]] = {}
    with db_session:
        for group_id, (low, high) in spans.items():
            found = select(
                m for m in Message if m.group.id == group_id and m.seq > low and m.seq <= high
            ).order_by(lambda m: m.seq)
            found_frames[group_id] = _frames(list(found))
    return found_frames


def replay(user_id: int, group_id: int, after: int) -> Replayed | None:
    """Up to PAGE frames of the group's messages with seq > `after`, in seq order, less those
    the user deleted for themselves (each as it is now), counted against the user's budget
    of replayed messages (`limit_replay_per_user`, shared by its sockets on every worker);
    None when the user is not (or no longer) a member."""
    with db_session:
        if not Membership.exists(group=group_id, user=user_id):
            return None
        budget = throttle.left(REPLAY_LIMIT, str(user_id))
        if budget is not None and budget[0] == 0:
            return Replayed([], spent_for=budget[1])
        asked = PAGE if budget is None else min(PAGE, budget[0])
        found = select(m for m in Message if m.group.id == group_id and m.seq > after)
        page = _frames(list(_visible(found, user_id).order_by(lambda m: m.seq).limit(asked)))
        throttle.spend_many(REPLAY_LIMIT, str(user_id), len(page))
        return Replayed(page, more=len(page) == asked)


def replay_changes(
    user_id: int, group_id: int, after_rev: int, up_to_seq: int | None
) -> list[tuple[int, int, str]] | None:
    """Up to PAGE `message.updated` frames of the group's messages changed after `after_rev`
    (up to seq `up_to_seq`, the ones the client had; any seq when None), in rev order, less
    those the user deleted: (rev, seq, frame). None when the user is not a member."""
    with db_session:
        if not Membership.exists(group=group_id, user=user_id):
            return None
        found = select(m for m in Message if m.group.id == group_id and m.rev > after_rev)
        if up_to_seq is not None:
            found = found.where(lambda m: m.seq <= up_to_seq)
        found = list(_visible(found, user_id).order_by(lambda m: m.rev).limit(PAGE))
        shown = messages.views(found)
        return [
            (m.rev, m.seq, frames.message_updated(v)) for m, v in zip(found, shown, strict=True)
        ]


@dataclass
class Batch:
    """What a batch of events needs from the database (`batch_frames`)."""

    messages: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    members: dict[tuple[int, int], str | None] = field(default_factory=dict)
    notices: dict[tuple[int, int], str] = field(default_factory=dict)
    # (group, seq) of a changed message: its `message.updated` frame (None: it is gone),
    # and the users who deleted it for themselves (their sockets do not get it).
    updates: dict[tuple[int, int], tuple[str | None, frozenset[int]]] = field(default_factory=dict)
    states: dict[int, str] = field(default_factory=dict)  # group id: its group.updated frame


def batch_frames(
    spans: dict[int, tuple[int, int]],
    members: set[tuple[int, int]],
    notice_keys: set[tuple[int, int]] = frozenset(),
    changed: dict[tuple[int, int], str | None] | None = None,
    groups_changed: set[int] = frozenset(),
) -> Batch:
    """What a batch of events needs from the database, in one session: the message frames
    of `spans` (see `message_frames`), the `member.added` frame of each (group, user), the
    frame of each notice named by (user, number), for each changed message (group, seq:
    the frame its event brought, or None) its frame as it is now and who deleted it, and the
    `group.updated` frame of each group in `groups_changed`."""
    with db_session:
        return Batch(
            message_frames(spans),
            {key: member_frame(*key) for key in members},
            notices.frames_of(set(notice_keys)) if notice_keys else {},
            _updates(changed) if changed else {},
            state_frames(set(groups_changed)) if groups_changed else {},
        )


def _updates(changed: dict[tuple[int, int], str | None]) -> dict:
    group_ids = list({g for g, _ in changed})
    seqs = list({s for _, s in changed})
    hidden: dict[tuple[int, int], set[int]] = {}
    for user_id, group_id, seq in select(
        (h.user.id, h.group.id, h.seq) for h in Hidden if h.group.id in group_ids and h.seq in seqs
    ):
        hidden.setdefault((group_id, seq), set()).add(user_id)
    unread = [key for key, frame in changed.items() if frame is None]
    read = {}
    if unread:
        found = list(select(m for m in Message if m.group.id in group_ids and m.seq in seqs))
        wanted = set(unread)
        found = [m for m in found if (m.group.id, m.seq) in wanted]
        read = {
            (m.group.id, m.seq): frames.message_updated(v)
            for m, v in zip(found, messages.views(found), strict=True)
        }
    return {
        key: (frame or read.get(key), frozenset(hidden.get(key, ())))
        for key, frame in changed.items()
    }


def member_frame(group_id: int, user_id: int) -> str | None:
    """The `member.added` frame; None when the account went meanwhile (nothing to show)."""
    with db_session:
        user = User.get(id=user_id)
        if user is None or not Group.exists(id=group_id):
            return None
        return frames.dumps(
            {"type": "member.added", "group_id": group_id, "user": profiles.member_view(user)}
        )


def _visible(query, user_id: int):
    """`query` of messages less those `user_id` deleted for themselves."""
    return query.where(
        lambda m: (
            not exists(
                h for h in Hidden if h.user.id == user_id and h.group == m.group and h.seq == m.seq
            )
        )
    )


def _frames(found: list) -> list[tuple[int, str]]:
    """(seq, `message.created` frame) of each message, their senders read in one query."""
    shown = messages.views(found)
    return [(m.seq, frames.message_created(v)) for m, v in zip(found, shown, strict=True)]
