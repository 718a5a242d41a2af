"""One authenticated socket: what it is subscribed to, its bounded queue, and the one task
that sends to it (so frames never interleave and a slow client holds only its own task).

The hub calls `deliver` (a live event already rendered to its frame text, the same string
for every socket) from the event loop; nothing here waits on another socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from im_api.realtime import protocol, store
from im_core.errors import Error
from models.frames import dumps, session_ended

logger = logging.getLogger(__name__)


class Connection:
    def __init__(
        self, send, *, session_id: int, user_id: int, queue_size: int, store_, close_wait=10.0
    ):
        self._send_asgi = send
        self.session_id = session_id
        self.user_id = user_id
        self.store = store_
        self.queue_size = queue_size
        # Seconds the last frame and the close frame may wait for a client that is not
        # reading (they go after what its connection holds already); then it is dropped.
        self.close_wait = close_wait
        # Live frames: (group id or None, seq or 0, text). Held until the first `sync`.
        self.queue: deque[tuple[int | None, int, str]] = deque()
        # Answers to the client's own frames (pong, error): sent even before the first sync.
        self.replies: deque[str] = deque()
        # The groups whose events reach this socket; None until read from the database,
        # events meanwhile are kept in `early` and applied on top of what was read.
        self.groups: set[int] | None = None
        self.early: list[tuple[object, str | None]] = []
        self.sent: dict[int, int] = {}  # group id -> highest seq sent on this socket
        self.synced = False
        self.sync_requests: deque[dict[int, int]] = deque()
        self.replaying = False
        self.closing: tuple[int, str | None] | None = None
        self.closed = asyncio.Event()  # the close frame went out (or the client went)
        self.wake = asyncio.Event()
        self.sending = False
        self.task: asyncio.Task | None = None
        self.hub = None  # set by Hub.add

    # --- Called from the hub and the endpoint (event loop) ----------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def loaded(self, groups: set[int]) -> None:
        """The groups read from the database (the hub indexed the socket under each); the
        events that came meanwhile apply on top, in their order."""
        self.groups = set(groups)
        early, self.early = self.early, []
        for event, text in early:
            self.deliver(event, text)

    def deliver(self, event, text: str | None) -> None:
        """A live event, with its frame text (None when there is no frame to send)."""
        if self.closing is not None:
            return
        if self.groups is None:
            self.early.append((event, text))
            if len(self.early) > self.queue_size:
                self.close(protocol.RESUME)
            return
        kind = event.kind
        if kind == "message.created":
            if event.group_id in self.groups:
                self._push(event.group_id, event.seq, text)
        elif kind == "member.added":
            if event.user_id == self.user_id and event.group_id not in self.groups:
                self.groups.add(event.group_id)
                self.hub.index(self, event.group_id)
            if event.group_id in self.groups and text is not None:
                self._push(None, 0, text)
        elif kind == "member.removed":
            if event.group_id in self.groups:
                self._push(None, 0, text)
                if event.user_id == self.user_id:
                    self._leave(event.group_id)
        elif kind == "group.deleted":
            if event.group_id in self.groups:
                self._push(None, 0, text)
                self._leave(event.group_id)
        elif kind == "session.ended" and self.session_id in event.session_ids:
            self.close(protocol.SESSION_ENDED, session_ended(event.reason or ""))

    def reply(self, text: str) -> None:
        """An answer to a client frame; their number is bounded by the frame rate."""
        if self.closing is None:
            self.replies.append(text)
            self.wake.set()

    def sync(self, since: dict[int, int]) -> bool:
        """Start a replay from `since`; False (nothing started) while one is under way: one
        replay at a time per socket, the next `sync` after its `ready`."""
        if self.closing is not None:
            return True
        if self.replaying or self.sync_requests:
            return False
        self.sync_requests.append(since)
        self.wake.set()
        return True

    def close(self, code: int, last_frame: str | None = None) -> None:
        """Close with `code` (after `last_frame`), dropping whatever was still to send."""
        if self.closing is not None:
            return
        self.closing = (code, last_frame)
        self.queue.clear()
        self.replies.clear()
        self.early.clear()
        self.sync_requests.clear()
        if self.hub is not None:
            self.hub.remove(self)
        if self.sending and self.task is not None:
            # Blocked on a client that is not reading: stop that send, close instead.
            self.task.cancel()
        self.wake.set()

    # --- The sending task -------------------------------------------------------------------

    def _push(self, group_id: int | None, seq: int, text: str) -> None:
        if len(self.queue) >= self.queue_size:
            # The client does not keep up: closing keeps the server's memory flat, and the
            # client resumes from where it is.
            self.close(protocol.RESUME)
            return
        self.queue.append((group_id, seq, text))
        if self.synced:
            self.wake.set()

    def _leave(self, group_id: int) -> None:
        self.groups.discard(group_id)
        self.hub.unindex(self, group_id)

    async def _run(self) -> None:
        try:
            await self._pump()
        except asyncio.CancelledError:
            if self.closing is None:
                raise  # the endpoint is done with the socket
            _uncancel()
        except Exception as error:  # the client went: nothing to send any more
            logger.debug("socket of user %s: %r", self.user_id, error)
            self.closing = self.closing or (protocol.RESUME, None)
            self.closed.set()
            if self.hub is not None:
                self.hub.remove(self)
            return
        await self._send_close()

    async def _pump(self) -> None:
        while self.closing is None:
            if self.replies:
                await self._send(self.replies.popleft())
            elif self.sync_requests:
                await self._replay(self.sync_requests.popleft())
            elif self.synced and self.queue:
                group_id, seq, text = self.queue.popleft()
                if group_id is not None:
                    if seq <= self.sent.get(group_id, 0):
                        continue  # replayed already
                    self.sent[group_id] = seq
                await self._send(text)
            else:
                self.wake.clear()
                await self.wake.wait()

    async def _replay(self, since: dict[int, int]) -> None:
        self.replaying = True
        try:
            await self._replay_groups(since)
        finally:
            self.replaying = False

    async def _replay_groups(self, since: dict[int, int]) -> None:
        """Every message after the client's positions, group by group in seq order, then
        `ready`; live frames wait in the queue meanwhile and go after, less those sent.

        Once the user's budget of replayed messages is spent, the replay stops there with an
        `error` frame (REPLAY_LIMIT) before `ready`: what is left, the client pages over REST.
        """
        self.synced = False
        for group_id in sorted(since):
            after = since[group_id]
            while self.closing is None and group_id in self.groups:
                replayed = await self.store.run(store.replay, self.user_id, group_id, after)
                if replayed is None:
                    break
                if replayed.spent_for is not None:
                    await self._send(_replay_limit(replayed.spent_for))
                    return await self._ready()
                page = replayed.page
                for seq, text in page:
                    # Removed from the group meanwhile: nothing more of it.
                    if self.closing is not None or group_id not in self.groups:
                        return
                    await self._send(text)
                    self.sent[group_id] = max(self.sent.get(group_id, 0), seq)
                    after = seq
                while self.replies:  # a ping during a long replay is answered
                    await self._send(self.replies.popleft())
                if not replayed.more:
                    break
        await self._ready()

    async def _ready(self) -> None:
        if self.closing is not None:
            return
        last = await self.store.run(store.positions, self.user_id)
        await self._send(dumps({"type": "ready", "groups": {str(g): s for g, s in last.items()}}))
        self.synced = True

    async def _send(self, text: str) -> None:
        self.sending = True
        try:
            await self._send_asgi({"type": "websocket.send", "text": text})
        finally:
            self.sending = False

    async def _send_close(self) -> None:
        try:
            await asyncio.wait_for(self._close_frames(), self.close_wait)
        except Exception as error:  # gone, or not reading: it resumes when it comes back
            logger.debug("closing socket of user %s: %r", self.user_id, error)
        finally:
            self.closed.set()

    async def _close_frames(self) -> None:
        code, last_frame = self.closing
        if last_frame is not None:
            await self._send_asgi({"type": "websocket.send", "text": last_frame})
        await self._send_asgi(
            {"type": "websocket.close", "code": code, "reason": protocol.REASONS[code]}
        )


def _replay_limit(retry_after: int) -> str:
    error = Error.REPLAY_LIMIT
    info = error.value[2].format(retry_after=max(1, retry_after))
    return protocol.error_frame(protocol.BadFrame(error, info))


def _uncancel() -> None:
    # The cancel was ours (close() interrupting a blocked send), not a request to stop.
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
