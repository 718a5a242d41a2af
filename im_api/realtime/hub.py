"""The process-wide hub: which sockets hear which user, group and session, and the one task
that turns database events (models.events) into frames.

Events arrive in commit order (PostgreSQL delivers notifications so; on SQLite the hub puts
each group's messages in seq order itself, see `_spans`). Each is handled in that order, so
a removal applies before any later message. A message is serialized once and the same text
is queued on every socket that gets it. On SQLite its event brings that frame, made where
the message was, and the database is read only to fill a gap in a group's seq; on
PostgreSQL a notification carries ids only, so the hub reads the messages of a batch of
events that came together in one database round trip; a text posted through this worker
comes with the frame it kept (`models.events.keep_frame`, given by the listener), as on
SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from im_api.realtime import protocol, store
from models.frames import dumps

logger = logging.getLogger(__name__)

# Events waiting for the hub's task past this mean the database reads cannot keep up: every
# socket is closed to resume (from the database) rather than the backlog growing without end.
MAX_PENDING = 100_000
# Most events handled with one database round trip.
BATCH = 500
# Most messages of one group loaded to fill a gap between the events seen (a socket that
# missed more than this resumes instead).
MAX_SPAN = 1000


@dataclass(frozen=True)
class Live:
    """A message found while filling a gap: it takes the place of its event."""

    group_id: int
    seq: int
    kind: str = "message.created"


class Hub:
    def __init__(self, store_: store.Store):
        self.store = store_
        self.by_user: dict[int, set] = {}
        self.by_group: dict[int, set] = {}
        self.by_session: dict[int, set] = {}
        self.loading: set = set()  # sockets whose groups are being read
        self.pending: deque = deque()
        self.wake = asyncio.Event()
        self.last_seq: dict[int, int] = {}  # the last seq handed out, per group with sockets
        self.task: asyncio.Task | None = None

    # --- Sockets ----------------------------------------------------------------------------

    def add(self, conn) -> None:
        """Register a socket before its groups are read: what happens meanwhile is kept."""
        conn.hub = self
        self.by_user.setdefault(conn.user_id, set()).add(conn)
        self.by_session.setdefault(conn.session_id, set()).add(conn)
        self.loading.add(conn)

    def loaded(self, conn, groups: set[int]) -> None:
        self.loading.discard(conn)
        if conn.closing is not None:
            return
        for group_id in groups:
            self.index(conn, group_id)
        conn.loaded(groups)

    def index(self, conn, group_id: int) -> None:
        self.by_group.setdefault(group_id, set()).add(conn)

    def unindex(self, conn, group_id: int) -> None:
        sockets = self.by_group.get(group_id)
        if sockets is not None:
            sockets.discard(conn)
            if not sockets:
                del self.by_group[group_id]
                self.last_seq.pop(group_id, None)

    def remove(self, conn) -> None:
        self.loading.discard(conn)
        _discard(self.by_user, conn.user_id, conn)
        _discard(self.by_session, conn.session_id, conn)
        for group_id in list(conn.groups or ()):
            self.unindex(conn, group_id)

    def sockets(self) -> list:
        return [conn for sockets in self.by_user.values() for conn in sockets]

    def close_all(self, code: int) -> None:
        for conn in self.sockets():
            conn.close(code)

    # --- Events -----------------------------------------------------------------------------

    def post(self, event, committed_at: float | None = None) -> None:
        """An event committed in the database (called on the event loop), with the moment
        (`time.monotonic()`) its commit reached this process: now, unless the committing
        thread says when (SQLite)."""
        if len(self.pending) >= MAX_PENDING:
            logger.warning("Realtime events backed up: every socket is closed to resume")
            self.pending.clear()
            self.reset()
            self.close_all(protocol.RESUME)
            return
        self.pending.append((committed_at or time.monotonic(), event))
        self.wake.set()

    def lost(self) -> None:
        """The events stopped coming (lost listening connection): every socket resumes."""
        self.pending.clear()
        self.reset()
        self.close_all(protocol.RESUME)

    def reset(self) -> None:
        """Events may have been missed (lost listening connection): forget what was seen."""
        self.last_seq.clear()

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                batch = [self.pending.popleft() for _ in range(min(BATCH, len(self.pending)))]
                try:
                    await self._dispatch(batch)
                except Exception:
                    # A database error must not stop live delivery for good: the sockets that
                    # may have missed these events resume.
                    logger.exception("Realtime events could not be delivered; sockets resume")
                    self.reset()
                    self.close_all(protocol.RESUME)

    async def _dispatch(self, batch: list) -> None:
        """A batch of (commit time, event), in commit order."""
        events = [event for _, event in batch]
        spans = self._spans(events)
        members = {
            (e.group_id, e.user_id)
            for e in events
            if e.kind == "member.added" and self._heard(e.group_id, e.user_id)
        }
        # Notices to read (PostgreSQL: a notification carries no frame): of users heard here.
        wanted = {
            (e.user_id, e.seq)
            for e in events
            if e.kind == "notice" and e.frame is None and self._user_heard(e.user_id)
        }
        # Changed messages: who deleted each for themselves is read (and on PostgreSQL the
        # frame), for the groups heard here.
        changed = {
            (e.group_id, e.seq): e.frame
            for e in events
            if e.kind == "message.updated" and self._heard(e.group_id)
        }
        # Changed groups (PostgreSQL: a notification carries no frame): their state now, once
        # per group however many changes the batch has.
        states = {
            e.group_id
            for e in events
            if e.kind == "group.updated" and e.frame is None and self._heard(e.group_id)
        }
        found = store.Batch()
        if spans or members or wanted or changed or states:
            found = await self.store.run(
                store.batch_frames, spans, members, wanted, changed, states
            )
        touched = set()
        for committed_at, event in batch:
            kind = event.kind
            if kind == "message.created":
                touched.add(event.group_id)
                frames = found.messages.get(event.group_id)
                if frames is None:  # nothing read: the event's own frame, if it has one
                    frames = ((event.seq, event.frame),) if event.frame is not None else ()
                self._message(event, frames, committed_at)
            elif kind == "message.updated":
                text, hidden = found.updates.get((event.group_id, event.seq), (None, ()))
                if text is not None:
                    # Each socket leaves out a message its user deleted (Connection.deliver).
                    targets = list(self.by_group.get(event.group_id, ()))
                    self._send(targets, event, (text, hidden))
            elif kind == "member.added":
                text = found.members.get((event.group_id, event.user_id))
                self._send(self._group_and_user(event), event, text)
            elif kind == "member.removed":
                text = dumps(
                    {"type": "member.removed", "group_id": event.group_id, "user_id": event.user_id}
                )
                self._send(self._group_and_user(event), event, text)
            elif kind == "group.updated":
                text = event.frame or found.states.get(event.group_id)
                self._send(list(self.by_group.get(event.group_id, ())), event, text)
            elif kind == "group.deleted":
                text = dumps({"type": "group.deleted", "group_id": event.group_id})
                self._send(list(self.by_group.get(event.group_id, ())), event, text)
            elif kind == "read":
                self._read(event)
            elif kind == "notice":
                text = event.frame or found.notices.get((event.user_id, event.seq))
                self._send(list(self.by_user.get(event.user_id, ())), event, text)
            elif kind == "session.ended":
                targets = [c for s in event.session_ids for c in self.by_session.get(s, ())]
                self._send(targets, event, None)
        for group_id in touched:
            if group_id not in self.by_group:
                self.last_seq.pop(group_id, None)

    def _user_heard(self, user_id: int) -> bool:
        return bool(self.loading) or user_id in self.by_user

    def _heard(self, group_id: int, user_id: int | None = None) -> bool:
        if self.loading or group_id in self.by_group:
            return True
        return user_id is not None and user_id in self.by_user

    def _spans(self, batch: list) -> dict[int, tuple[int, int]]:
        """Per group with sockets whose events leave a gap in its seq (SQLite's threads call
        back in any order, or an event is lost) or come without their frame (every
        notification), the seq range to load: from the last one handed out to the highest in
        the batch, so every message still goes out, in seq order. A group whose events follow
        on one another with their frames needs nothing read."""
        spans: dict[int, tuple[int, int]] = {}
        reached: dict[int, int] = {}  # per group, the highest seq of the batch so far
        gapped: set[int] = set()
        for event in batch:
            if event.kind != "message.created" or not self._heard(event.group_id):
                continue
            group_id, seq = event.group_id, event.seq
            last = reached.get(group_id, self.last_seq.get(group_id, seq - 1))
            if seq > last and (seq != last + 1 or event.frame is None):
                gapped.add(group_id)
            reached[group_id] = max(last, seq)
            low, high = spans.get(group_id, (self.last_seq.get(group_id, seq - 1), seq))
            spans[group_id] = (min(low, seq - 1), max(high, seq))
        spans = {group_id: span for group_id, span in spans.items() if group_id in gapped}
        for group_id, (low, high) in spans.items():
            low = max(low, self.last_seq.get(group_id, low))
            spans[group_id] = (max(low, high - MAX_SPAN), high)
        return spans

    def _message(self, event, frames, committed_at: float) -> None:
        group_id = event.group_id
        last = self.last_seq.get(group_id, event.seq - 1)
        if event.seq <= last:
            return  # sent already, when a gap before a later one was filled
        self.last_seq[group_id] = event.seq
        targets = list(self.by_group.get(group_id, ())) + list(self.loading)
        if not targets:
            return
        for seq, text in frames:
            if last < seq <= event.seq:
                live = event if seq == event.seq else Live(group_id, seq)
                for conn in targets:
                    conn.deliver(live, text, committed_at)

    def _read(self, event) -> None:
        """A member's new read position: with their counts to their own sockets (badges agree
        across devices), without them to the other members' where receipts are shown."""
        position = {
            "type": "read",
            "group_id": event.group_id,
            "user_id": event.user_id,
            "seq": event.seq,
        }
        unread, mentions = event.counts or (0, 0)
        own = dumps({**position, "unread_count": unread, "mention_count": mentions})
        targets = set(self.by_user.get(event.user_id, ()))
        if event.shared:
            targets |= self.by_group.get(event.group_id, set())
        # Each socket picks the text that is its to have (Connection.deliver).
        self._send(list(targets), event, (own, dumps(position)))

    def _group_and_user(self, event) -> list:
        targets = set(self.by_group.get(event.group_id, ()))
        targets |= self.by_user.get(event.user_id, set())
        return list(targets)

    def _send(self, targets: list, event, text: str | None) -> None:
        # A socket being loaded is also in by_user and by_session: once each.
        for conn in set(targets) | self.loading:
            conn.deliver(event, text)


def _discard(index: dict, key, conn) -> None:
    sockets = index.get(key)
    if sockets is not None:
        sockets.discard(conn)
        if not sockets:
            del index[key]
