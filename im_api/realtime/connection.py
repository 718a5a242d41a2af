"""One authenticated socket: what it is subscribed to, its bounded queue, and the one task
that sends to it (so frames never interleave and a slow client holds only its own task).

The hub calls `deliver` (a live event already rendered to its frame text, the same string
for every socket) from the event loop; nothing here waits on another socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from im_api.realtime import protocol, store
from im_api.realtime.protocol import Sync
from im_core import metrics
from im_core.errors import Error
from models.frames import dumps, session_ended

logger = logging.getLogger(__name__)

# Queue keys that are not groups (group ids start at 1). The user's notices: entries
# (NOTICES, number, text), deduplicated by number as a group's messages are by seq. Changed
# messages: entries (CHANGES, 0, text), sent to a socket that follows changes; a state a
# replay sent already may come again (a client keeps the highest rev of each message).
# Changed groups: entries (STATES, 0, text), sent to a socket that follows group states
# (likewise: a client keeps the highest state_version of each group).
NOTICES = 0
CHANGES = -1
STATES = -2


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
        # Live frames: (group id or None, seq or 0, text, commit time of a message or None).
        # Held until the first `sync`.
        self.queue: deque[tuple[int | None, int, str, float | None]] = deque()
        # Answers to the client's own frames (pong, error): sent even before the first sync.
        self.replies: deque[str] = deque()
        # The groups whose events reach this socket; None until read from the database,
        # events meanwhile are kept in `early` and applied on top of what was read.
        self.groups: set[int] | None = None
        self.early: list[tuple[object, str | None, float | None]] = []
        self.sent: dict[int, int] = {}  # group id (or NOTICES) -> highest seq sent on it
        self.synced = False
        # Whether the client asked for notices (`notices` in its sync): a client of the
        # contract before them gets none, nor the fields of `ready` about them.
        self.wants_notices = False
        self.wants_changes = False  # likewise: `revs` in its sync, for message.updated
        self.wants_states = False  # and `states`, for group.updated
        self.sync_requests: deque[Sync] = deque()
        self.replaying = False
        self.closing: tuple[int, str | None] | None = None
        self.closed = asyncio.Event()  # the close frame went out (or the client went)
        self.wake = asyncio.Event()
        self.sending = False
        # Counted into the metrics when the queue empties, in one call each: a call costs a
        # few microseconds in multiprocess mode, a frame's whole fan-out a few tens.
        self.frames_sent = 0
        self.lag: float | None = None  # of the last live frame sent since the last count
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
        for event, text, committed_at in early:
            self.deliver(event, text, committed_at)

    def deliver(self, event, text, committed_at: float | None = None) -> None:
        """A live event, with its frame text (None when there is no frame to send; for a
        `read` event the pair of texts for its member's own sockets and for the others; for
        a changed message its frame and who deleted it) and, for a message, when its commit
        reached this process (`time.monotonic()`)."""
        if self.closing is not None:
            return
        if self.groups is None:
            self.early.append((event, text, committed_at))
            if len(self.early) > self.queue_size:
                self._overflow()
            return
        kind = event.kind
        if kind == "message.created":
            if event.group_id in self.groups:
                self._push(event.group_id, event.seq, text, committed_at)
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
        elif kind == "message.updated" and event.group_id in self.groups:
            frame, hidden = text  # the new state; the users who deleted the message
            if self.user_id not in hidden:
                self._push(CHANGES, 0, frame)
        elif kind == "group.updated" and event.group_id in self.groups:
            if text is not None:
                self._push(STATES, 0, text)
        elif kind == "read" and event.group_id in self.groups:
            own, receipt = text  # the user's own position, with their counts; a receipt
            if event.user_id == self.user_id:
                self._push(None, 0, own)
            elif event.shared:
                self._push(None, 0, receipt)
        elif kind == "notice" and event.user_id == self.user_id:
            if event.group_id is not None and event.group_id not in self.groups:
                self.groups.add(event.group_id)  # a new conversation of the user's
                self.hub.index(self, event.group_id)
            if text is not None:
                self._push(NOTICES, event.seq, text)
        elif kind == "session.ended" and self.session_id in event.session_ids:
            self.close(protocol.SESSION_ENDED, session_ended(event.reason or ""))

    def reply(self, text: str) -> None:
        """An answer to a client frame; their number is bounded by the frame rate."""
        if self.closing is None:
            self.replies.append(text)
            self.wake.set()

    def sync(self, request: Sync) -> bool:
        """Start a replay from the client's positions; False (nothing started) while one is
        under way: one replay at a time per socket, the next `sync` after its `ready`."""
        if self.closing is not None:
            return True
        if self.replaying or self.sync_requests:
            return False
        self.sync_requests.append(request)
        self.wake.set()
        return True

    def close(self, code: int, last_frame: str | None = None) -> None:
        """Close with `code` (after `last_frame`), dropping whatever was still to send."""
        if self.closing is not None:
            return
        self.closing = (code, last_frame)
        self._drop("closed")
        self.sync_requests.clear()
        if self.hub is not None:
            self.hub.remove(self)
        if self.sending and self.task is not None:
            # Blocked on a client that is not reading: stop that send, close instead.
            self.task.cancel()
        self.wake.set()

    # --- The sending task -------------------------------------------------------------------

    def _push(self, group_id: int | None, seq: int, text: str, committed_at=None) -> None:
        if len(self.queue) >= self.queue_size:
            self.queue.append((group_id, seq, text, committed_at))  # dropped with the rest
            self._overflow()
            return
        self.queue.append((group_id, seq, text, committed_at))
        if self.synced:
            self.wake.set()

    def _overflow(self) -> None:
        """The client does not keep up: closing keeps the server's memory flat, and the
        client resumes from where it is."""
        metrics.refused("ws_queue")
        self._drop("slow_client")
        self.close(protocol.RESUME)

    def _drop(self, reason: str) -> None:
        """Forget the frames not sent yet, counting them as dropped for `reason`."""
        dropped = len(self.queue) + len(self.replies)
        dropped += sum(1 for _, text, _ in self.early if text is not None)
        if dropped:
            metrics.frames_dropped.labels(reason).inc(dropped)
        self.queue.clear()
        self.replies.clear()
        self.early.clear()

    def _leave(self, group_id: int) -> None:
        self.groups.discard(group_id)
        self.hub.unindex(self, group_id)

    async def _run(self) -> None:
        try:
            await self._pump()
        except asyncio.CancelledError:
            self._count_sent()
            if self.closing is None:
                raise  # the endpoint is done with the socket
            _uncancel()
        except ClientGone as gone:  # nothing to send any more
            logger.debug("socket of user %s: %r", self.user_id, gone.__cause__)
            self._count_sent()
            self._drop("closed")
            self.closing = self.closing or (protocol.RESUME, None)
            self.closed.set()
            if self.hub is not None:
                self.hub.remove(self)
            return
        except Exception as error:
            # Not the client's doing (the database, most likely): it comes back and resumes.
            logger.warning("Realtime socket of user %s failed: %r", self.user_id, error)
            self.close(protocol.RESUME)
        self._count_sent()
        await self._send_close()

    async def _pump(self) -> None:
        while self.closing is None:
            if self.replies:
                await self._send(self.replies.popleft())
            elif self.sync_requests:
                await self._replay(self.sync_requests.popleft())
            elif self.synced and self.queue:
                group_id, seq, text, committed_at = self.queue.popleft()
                if group_id == NOTICES and not self.wants_notices:
                    continue
                if group_id == CHANGES:
                    if not self.wants_changes:
                        continue
                elif group_id == STATES:
                    if not self.wants_states:
                        continue
                elif group_id is not None:
                    if seq <= self.sent.get(group_id, 0):
                        continue  # replayed already
                    self.sent[group_id] = seq
                await self._send(text)
                if committed_at is not None:
                    self.lag = time.monotonic() - committed_at
            else:
                self._count_sent()
                self.wake.clear()
                await self.wake.wait()

    def _count_sent(self) -> None:
        """Into the metrics, what was sent since the last count: the frames, and the fan-out
        lag of the last live frame (the largest of a burst, the queue being in order)."""
        if self.frames_sent:
            metrics.frames_sent.inc(self.frames_sent)
            self.frames_sent = 0
        if self.lag is not None:
            metrics.fanout_lag.observe(self.lag)
            self.lag = None

    async def _replay(self, request: Sync) -> None:
        self.replaying = True
        try:
            await self._replay_all(request)
        finally:
            self.replaying = False

    async def _replay_all(self, request: Sync) -> None:
        """The user's notices after the client's (if it asked for them), then every message
        after the client's positions, group by group in seq order, the messages changed after
        its revs and the groups whose state moved on after its versions (if it gave them),
        then `ready`; live frames wait in the queue meanwhile and go after, less those sent.

        Once the user's budget of replayed messages is spent, the replay stops there with an
        `error` frame (REPLAY_LIMIT) before `ready`: what is left, the client pages over REST.
        """
        self.synced = False
        self.wants_notices = request.notices is not None
        self.wants_changes = request.revs is not None
        self.wants_states = request.states is not None
        if self.wants_notices and not await self._replay_notices(request.notices):
            return
        since = request.since
        for group_id in sorted(since):
            after = since[group_id]
            while self.closing is None and group_id in self.groups:
                replayed = await self.store.run(store.replay, self.user_id, group_id, after)
                if replayed is None:
                    break
                if replayed.spent_for is not None:
                    await self._send(_replay_limit(replayed.spent_for))
                    return await self._ready(request)
                for seq, text in replayed.page:
                    if self.closing is not None:
                        return
                    if group_id not in self.groups:
                        break  # removed from the group meanwhile: nothing more of it
                    await self._send(text)
                    self.sent[group_id] = max(self.sent.get(group_id, 0), seq)
                    after = seq
                while self.replies:  # a ping during a long replay is answered
                    await self._send(self.replies.popleft())
                if not replayed.more:
                    break
        if self.wants_changes and not await self._replay_changes(request):
            return
        if self.wants_states:
            for text in await self.store.run(store.changed_states, self.user_id, request.states):
                if self.closing is not None:
                    return
                await self._send(text)
        await self._ready(request)

    async def _ready(self, request: Sync) -> None:
        """`ready`: where every conversation of the user stands (and its notices and states,
        when the client asked for them); live frames follow."""
        if self.closing is not None:
            return
        last, read = await self.store.run(store.ready_state, self.user_id)
        ready = {
            "type": "ready",
            "groups": {str(g): seq for g, (seq, _, _) in last.items()},
            "revs": {str(g): rev for g, (_, rev, _) in last.items()},
            "reads": {
                str(g): {"read_seq": seq, "unread_count": unread, "mention_count": mentions}
                for g, (seq, unread, mentions) in read.items()
            },
        }
        if self.wants_states:
            ready["states"] = {str(g): version for g, (_, _, version) in last.items()}
        if self.wants_notices:
            newest, oldest = await self.store.run(store.notice_position, self.user_id)
            ready["notices"] = newest
            # Notices after the client's position that are no longer kept: it reads its
            # contacts and requests over REST instead.
            ready["notices_complete"] = request.notices >= min(oldest - 1, newest)
        await self._send(dumps(ready))
        self.synced = True

    async def _replay_changes(self, request: Sync) -> bool:
        """For each group of `revs`, the messages changed after the client's rev that it had
        (up to its `since` seq, or any without one), as they are now, in rev order; False if
        the socket closed meanwhile."""
        for group_id in sorted(request.revs):
            after = request.revs[group_id]
            while self.closing is None and group_id in self.groups:
                up_to = request.since.get(group_id)
                page = await self.store.run(
                    store.replay_changes, self.user_id, group_id, after, up_to
                )
                if not page:
                    break
                for rev, _seq, text in page:
                    if self.closing is not None or group_id not in self.groups:
                        break
                    await self._send(text)
                    after = rev
                while self.replies:
                    await self._send(self.replies.popleft())
                if len(page) < store.PAGE:
                    break
        return self.closing is None

    async def _replay_notices(self, after: int) -> bool:
        """The user's notices after `after`, in order; False if the socket closed meanwhile."""
        while self.closing is None:
            page = await self.store.run(store.notices_after, self.user_id, after)
            for number, text in page:
                if self.closing is not None:
                    return False
                await self._send(text)
                self.sent[NOTICES] = max(self.sent.get(NOTICES, 0), number)
                after = number
            if len(page) < store.PAGE:
                return True
        return False

    async def _send(self, text: str) -> None:
        self.sending = True
        try:
            await self._send_asgi({"type": "websocket.send", "text": text})
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise ClientGone() from error
        finally:
            self.sending = False
        self.frames_sent += 1

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
            metrics.frames_sent.inc()
        await self._send_asgi(
            {"type": "websocket.close", "code": code, "reason": protocol.REASONS[code]}
        )


class ClientGone(Exception):
    """A send failed: the client went (its cause says how)."""


def _replay_limit(retry_after: int) -> str:
    error = Error.REPLAY_LIMIT
    info = error.value[2].format(retry_after=max(1, retry_after))
    return protocol.error_frame(protocol.BadFrame(error, info))


def _uncancel() -> None:
    # The cancel was ours (close() interrupting a blocked send), not a request to stop.
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
