"""Closing the sockets with 4503 when the server is told to stop.

uvicorn, on SIGINT or SIGTERM, closes every open websocket itself with 1012 before the app
hears of the shutdown (its lifespan shutdown comes after). Clients are promised 4503
("reconnect and resume"), so the app steps in front of uvicorn's signal handler: it closes
its sockets first (giving them at most `grace` seconds), then calls uvicorn's handler, and
uvicorn finds them closed already.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def before_exit(drain: Callable[[], Awaitable[None]], grace: float = 1.0) -> None:
    """Run `drain` on the event loop when uvicorn's exit signals arrive, then uvicorn's own
    handler. Only under uvicorn (a handler of its `Server`), on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread's handlers (tests run apps elsewhere)
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        owner = getattr(previous, "__self__", None)
        if not type(owner).__module__.startswith("uvicorn"):
            continue
        signal.signal(sig, _handler(loop, previous, drain, grace))


def _handler(loop, previous, drain, grace):
    started = False

    def handle(sig, frame):
        nonlocal started
        if started or loop.is_closed():
            previous(sig, frame)  # a second signal: uvicorn's own (forced) exit
            return
        started = True

        async def then_exit():
            try:
                await asyncio.wait_for(drain(), grace)
            except Exception as error:  # closing is best effort: uvicorn closes the rest
                logger.debug("closing sockets at exit: %r", error)
            previous(sig, frame)

        loop.call_soon_threadsafe(loop.create_task, then_exit())

    return handle
