"""A bounded wait for a request thread, then 503 with Retry-After.

`connexion.FlaskApp` runs Flask on the thread pool of a2wsgi's `WSGIMiddleware` (its default
size: 10 threads). When every thread is busy, a2wsgi queues further requests without limit
or deadline. `RequestThreads` sits in Connexion's stack just before the app (after routing,
security and validation, so a request holds no place while its body arrives) and lets at
most `IM_REQUEST_THREADS` requests through at once; the others wait, first come first
served, up to `IM_QUEUE_TIMEOUT` seconds, then are answered 503 SERVER_BUSY with
`Retry-After: IM_RETRY_AFTER`. The count is per worker process, as the threads are.
"""

from __future__ import annotations

import asyncio
import inspect
import logging

from a2wsgi import WSGIMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from im_core import metrics
from im_core.config import Settings
from im_core.errors import server_busy

logger = logging.getLogger(__name__)

# The threads of the bridge: a2wsgi's default pool, which FlaskApp does not change.
BRIDGE_THREADS = inspect.signature(WSGIMiddleware).parameters["workers"].default


class RequestThreads:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.capacity = max(1, min(settings.request_threads, BRIDGE_THREADS))
        if settings.request_threads > BRIDGE_THREADS:
            logger.warning(
                "IM_REQUEST_THREADS=%d: the bridge has %d threads, so at most %d requests "
                "run at once",
                settings.request_threads,
                BRIDGE_THREADS,
                BRIDGE_THREADS,
            )
        self.queue_timeout = settings.queue_timeout
        self.retry_after = settings.retry_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        free = self._semaphore()
        if free.locked():
            try:
                await asyncio.wait_for(free.acquire(), self.queue_timeout)
            except asyncio.TimeoutError:
                metrics.refused("request_threads")
                raise server_busy(self.retry_after) from None
        else:
            await free.acquire()  # at once, without a timer
        try:
            await self.app(scope, receive, send)
        finally:
            free.release()

    def _semaphore(self) -> asyncio.Semaphore:
        """The places of the running event loop (one per server process; tests run several
        loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._free = loop, asyncio.Semaphore(self.capacity)
        return self._free
