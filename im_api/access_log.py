"""One readable log line per request: `POST /api/user/login 200 12.3 ms`.

Installed outermost in the app (before the body limit), so refused and failed requests are
logged too. Uvicorn's own access log is turned off by `im-api serve` so that a request is
logged once. The query string is left out: a media URL's `sig` is a credential. The JSON log
(`im_api.log_format`) also gets each part as a field, and the operationId.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_api.paths import operation_id

logger = logging.getLogger("im_api.access")


class AccessLogMiddleware:
    """ASGI middleware logging method, path, status and duration at INFO level.

    The duration runs until the last byte of the response is handed to the server. A request
    whose handler raised before answering is logged as 500, and a client that went away before
    the answer as 499 (as nginx does); the exception is not swallowed.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            if not status:
                status = 499 if _is_disconnect(exc) else 500
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            path = _printable(scope["path"])
            logger.info(
                "%s %s %d %.1f ms",
                scope["method"],
                path,
                status,
                elapsed_ms,
                extra={
                    "access": {
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed_ms, 1),
                        "operation": operation_id(scope),
                    }
                },
            )


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, (ClientDisconnect, asyncio.CancelledError))


def _printable(path: str) -> str:
    """The path with control characters escaped, so one request stays one log line."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in path)
