"""A bounded wait for a request thread, then 503 with Retry-After.

`connexion.FlaskApp` runs Flask on the thread pool of a2wsgi's `WSGIMiddleware` (its default
size: 10 threads), and `im_api.direct` runs the handlers it calls on a pool of the same size.
When every thread is busy, either queues further requests without limit or deadline.
`RequestThreads` sits in Connexion's stack just before the app (after routing, security and
validation, so a request holds no place while its body arrives) and lets at most
`IM_REQUEST_THREADS` requests through at once, on either pool; the others wait, first come first
served, up to `IM_QUEUE_TIMEOUT` seconds, then are answered 503 SERVER_BUSY with
`Retry-After: IM_RETRY_AFTER`. The count is per worker process, as the threads are.

Requests that read or write the media store (uploads, downloads: the front marks them,
`MEDIA_STORE`) wait in the event loop for a place of their own first: at most
`IM_MEDIA_REQUEST_THREADS` of them hold request threads at once. A store that stops
answering (S3 timeouts of 10 s, several attempts) then holds those few threads, and the
other requests keep the rest: only the requests that need the store wait, and get their
503 (SERVER_BUSY past the wait, MEDIA_STORE_UNAVAILABLE once the store times out).
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
# Set in the ASGI scope of a request that uses the media store (by the front).
MEDIA_STORE = "im_api.media_store"


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
        # 0: media requests share the threads with the rest, as any request.
        self.media_capacity = min(settings.media_request_threads, self.capacity)
        self.queue_timeout = settings.queue_timeout
        self.retry_after = settings.retry_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Semaphore | None = None
        self._media: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        free, media = self._semaphores()
        deadline = asyncio.get_running_loop().time() + self.queue_timeout
        held = []
        try:
            if media is not None and scope.get(MEDIA_STORE):
                await self._take(media, deadline)
                held.append(media)
            await self._take(free, deadline)
            held.append(free)
            await self.app(scope, receive, send)
        finally:
            for semaphore in held:
                semaphore.release()

    async def _take(self, places: asyncio.Semaphore, deadline: float) -> None:
        if not places.locked():
            await places.acquire()  # at once, without a timer
            return
        try:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            await asyncio.wait_for(places.acquire(), left)
        except asyncio.TimeoutError:
            metrics.refused("request_threads")
            raise server_busy(self.retry_after) from None

    def _semaphores(self) -> tuple[asyncio.Semaphore, asyncio.Semaphore | None]:
        """The places of the running event loop (one per server process; tests run several
        loops in turn): all requests', and media requests' (None: no place of their own)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._free = loop, asyncio.Semaphore(self.capacity)
            media = self.media_capacity
            self._media = asyncio.Semaphore(media) if 0 < media < self.capacity else None
        return self._free, self._media
