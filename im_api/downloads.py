"""Media downloads (GET and HEAD /api/media/{media_id}), their bytes sent from the event loop.

The API answers a download as any other operation, on a request thread: the spec's
parameters, the signature, 304, Range, 416, the headers (`im_api.serving`). That thread
leaves the range it opened in the media store in the request's `FileSlot` and is done. The
bytes go out from here, a chunk at a time (`models.stores.async_chunks`: read in the loop
from a local file, in a thread from S3), each sent within `IM_SEND_TIMEOUT` seconds: a
client that stops reading holds a coroutine and an open file or connection, never a
request thread, and is cut off once the timeout passes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_api.serving import SEND_FILE, FileSlot
from im_core.config import Settings
from models import stores

logger = logging.getLogger(__name__)

# Set in the task of a download this module cut off: uvicorn then says, at ERROR, that the
# app "returned without completing response", which is the point here (`QuietCutOffs`).
_cut_off = contextvars.ContextVar("im_api_download_cut_off", default=False)


class QuietCutOffs(logging.Filter):
    """Drops uvicorn's error about an unfinished response when it is a download this module
    cut off on purpose (logged here at INFO); any other unfinished response still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_cut_off.get() and "without completing response" in record.getMessage())


class MediaDownloads:
    def __init__(self, api: ASGIApp, settings: Settings):
        self.api = api
        self.send_timeout = settings.send_timeout
        server_errors = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, QuietCutOffs) for f in server_errors.filters):
            server_errors.addFilter(QuietCutOffs())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slot = FileSlot()
        status = 0

        def sends_file() -> bool:
            return slot.chunks is not None and status in (200, 206)

        async def headers_only(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                await send(message)
            elif not sends_file():
                await send(message)
            # else: the API's empty body of a file answer; the file's bytes follow below

        try:
            await self.api({**scope, SEND_FILE: slot}, receive, headers_only)
            if sends_file():
                await self._send_file(slot, receive, send)
        finally:
            slot.close()

    async def _send_file(self, slot: FileSlot, receive: Receive, send: Send) -> None:
        """Send the slot's bytes; return early, the response unfinished, when the client left
        or stopped reading (the server then closes the connection)."""
        gone = asyncio.Event()
        watcher = asyncio.create_task(_until_disconnected(receive, gone))
        left = slot.length
        chunks = stores.async_chunks(slot.chunks)
        try:
            async for chunk in chunks:
                left -= len(chunk)
                message = {"type": "http.response.body", "body": chunk, "more_body": left > 0}
                await asyncio.wait_for(send(message), self.send_timeout)
                if left <= 0 or gone.is_set():
                    break
            if left > 0 and not gone.is_set():
                logger.error("Media object shorter than its row says: %d bytes missing", left)
        except asyncio.TimeoutError:
            _cut_off.set(True)
            logger.info(
                "Download cut off: its client took nothing for %s s (%d bytes unsent)",
                self.send_timeout,
                left,
            )
        except Exception as error:  # the store failed midway (logged by the store)
            # The status line is gone: ending short of Content-Length is all there is left.
            logger.info("Download ended short: %r (%d bytes unsent)", error, left)
        finally:
            watcher.cancel()
            await chunks.aclose()


async def _until_disconnected(receive: Receive, gone: asyncio.Event) -> None:
    """Set `gone` when the client disconnects (sends to a gone client return at once)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception as error:  # a GET's body over the limit, say: the download ends too
        logger.debug("Download ended by its request: %r", error)
    gone.set()
