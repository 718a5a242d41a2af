"""Where the hub's events come from: this process's commits on SQLite, PostgreSQL's
LISTEN/NOTIFY otherwise (every worker on every machine hears every commit)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from im_core import metrics
from models import events

logger = logging.getLogger(__name__)

# The listening connection is checked this often (seconds) besides waiting for its end, so a
# connection that died without a word (a cut network) is found too.
CHECK_EVERY = 10.0
CHECK_TIMEOUT = 5.0
# Named so an operator (or a test) finds it in pg_stat_activity.
APPLICATION_NAME = "im-api realtime"


class LocalEvents:
    """SQLite: one process serves, its own commits are all there is."""

    def __init__(self, hub):
        self.hub = hub
        self.ready = asyncio.Event()
        self.callback = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def callback(event) -> None:
            # Called on the thread that committed, right after the commit: hand the event
            # to the loop, with the time of the commit (its fan-out lag starts there).
            # RuntimeError: the loop is closed, this app stopped serving.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.hub.post, event, time.monotonic())

        self.callback = callback
        events.subscribe(callback)
        self.ready.set()
        metrics.listener_up.set(1)

    async def stop(self) -> None:
        if self.callback is not None:
            events.unsubscribe(self.callback)
            self.callback = None
        self.ready.clear()
        metrics.listener_up.set(0)


class PostgresListener:
    """One connection per worker process LISTENing on `events.CHANNEL`, reconnected when
    it drops; when it does, every socket of the worker is closed to resume (notifications
    sent meanwhile are lost to it)."""

    def __init__(self, hub, url: str):
        self.hub = hub
        self.url = url
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.connections = 0  # made so far: each after the first is a reconnect

    async def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        self.ready.clear()
        metrics.listener_up.set(0)

    async def _run(self) -> None:
        import asyncpg

        delay = 0.2
        while True:
            try:
                connection = await asyncpg.connect(
                    self.url, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as error:
                logger.warning("Realtime cannot LISTEN (retrying in %.1f s): %s", delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await self._listen(connection)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as error:
                logger.debug("LISTEN connection: %r", error)
            finally:
                self.ready.clear()
                metrics.listener_up.set(0)
                connection.terminate()
            logger.warning("Realtime lost its LISTEN connection: this worker's sockets resume")
            self.hub.lost()
            delay = 0.2

    async def _listen(self, connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(events.CHANNEL, self._notified)
        events.forget_kept_frames()  # their notifications went by unheard
        self.ready.set()
        metrics.listener_up.set(1)
        if self.connections:
            metrics.listener_reconnects.inc()
        self.connections += 1
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), CHECK_EVERY)
            except asyncio.TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), CHECK_TIMEOUT)

    def _notified(self, _connection, _pid, _channel, payload: str) -> None:
        try:
            event = events.decode(payload)
        except Exception as error:  # another program's notification: not ours to act on
            logger.warning("Ignored a notification on %s: %r", events.CHANNEL, error)
            return
        if event.kind == "message.created" and event.message_id is not None:
            # A text this process posted: its frame, kept so as not to read it back.
            frame = events.kept_frame(event.group_id, event.seq, event.message_id)
            if frame is not None:
                event = dataclasses.replace(event, frame=frame)
        self.hub.post(event)
