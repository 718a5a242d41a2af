"""The live channel at ws_url, `/api/ws/user/{id}/` (openapi/asyncapi.yaml).

`Realtime` is the ASGI endpoint the front hands those websockets to: it authenticates a
socket, registers it with the process's hub, and reads the client's frames; each socket's
own task (`connection.Connection`) sends to it. Frame by frame rules are in `protocol`,
database reads in `store`, fan-out in `hub`, event sources in `sources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from im_api.paths import route_path
from im_api.realtime import protocol, shutdown, store
from im_api.realtime.connection import Connection
from im_api.realtime.hub import Hub
from im_api.realtime.protocol import Auth, BadFrame, Ping, Sync
from im_api.realtime.sources import LocalEvents, PostgresListener
from im_api.upload_slots import Slot, UploadSlots
from im_core import metrics, security
from im_core.config import Settings
from im_core.errors import ApiError, Error

logger = logging.getLogger(__name__)

PREFIX = "/api/ws/user/"
# Seconds a new socket waits for its worker's listening connection (PostgreSQL); past it,
# the socket is closed with 4503 and its client comes back.
LISTEN_WAIT = 5.0


class Realtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        # Sockets at once per user and per client address, counted by every worker of the
        # instance folder (the byte locks of `im_api.upload_slots`, as uploads at once).
        self.user_slots = _slots(settings, "socket-slots-user", settings.ws_max_sockets_per_user)
        self.address_slots = _slots(
            settings, "socket-slots-address", settings.ws_max_sockets_per_address
        )
        # The client address, from X-Forwarded-For only behind IM_TRUSTED_PROXIES (as REST).
        self._addressed = ProxyHeadersMiddleware(
            self._socket, trusted_hosts=list(settings.trusted_proxies)
        )
        # Made at each start, on the loop that starts them (their events and tasks belong to
        # it): `im-api serve` runs one loop per worker process, but each in-process test
        # client runs the app's lifespan on a loop of its own, several at once in the race
        # tests.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.store: store.Store | None = None
        self.hub: Hub | None = None
        self.source: LocalEvents | PostgresListener | None = None
        self.stopping = False

    # --- Life of the worker -----------------------------------------------------------------

    async def startup(self) -> None:
        """Start listening (at the app's startup, or at the first socket without one)."""
        from models import database

        if self.loop is not None and not self.loop.is_closed():
            return  # started, on this loop or on another one still open (a test client's)
        self.loop = asyncio.get_running_loop()
        self.stopping = False
        self.store = store.Store()
        self.hub = Hub(self.store)
        if database.is_sqlite(self.settings):
            self.source = LocalEvents(self.hub)
        else:
            self.source = PostgresListener(self.hub, self.settings.database_url)
        self.hub.start()
        await self.source.start()
        shutdown.before_exit(self.drain)

    async def drain(self) -> None:
        """The server stops: every socket is closed with 4503 so its client resumes."""
        self.stopping = True
        sockets = self.hub.sockets()
        self.hub.close_all(protocol.RESUME)
        if sockets:
            await asyncio.wait([asyncio.ensure_future(c.closed.wait()) for c in sockets])

    async def stop(self) -> None:
        if self.loop is not asyncio.get_running_loop():
            return  # another loop started it (see `startup`): that one's shutdown stops it
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.drain(), 1.0)
        await self.source.stop()
        await self.hub.stop()
        self.store.close()
        self.loop = None

    async def lifespan(self, app, scope: Scope, receive: Receive, send: Send) -> None:
        """Run `app`'s lifespan with this endpoint's startup and shutdown around it."""

        async def receive_and_act():
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
            return message

        await app(scope, receive_and_act, send)

    # --- One socket -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._addressed(scope, receive, send)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        slots: list[Slot] = []
        try:
            # Always accepted, then closed with a code: a refused upgrade carries none.
            await send({"type": "websocket.accept"})
            await self._serve(scope, receive, send, slots)
        except OSError:  # the client went (uvicorn's ClientDisconnected is one)
            pass
        except Exception as error:
            # Not the client's doing (the database, most likely): it comes back and resumes.
            logger.warning("Realtime socket failed: %r", error)
            await _close_quietly(send, protocol.RESUME)
        finally:
            for slot in slots:
                slot.release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, slots: list) -> None:
        """Serve one accepted socket; the places it takes (per address, per user) go in
        `slots`, released when it ends."""
        settings = self.settings
        query = scope.get("query_string", b"")
        if protocol.token_in_query(query):
            exposed = protocol.tokens_in_query(query)
            if exposed:
                await self.startup()
                if await self.store.run(store.end_exposed, exposed):
                    logger.info("A session ended: its token was sent in a socket URL's query")
            return await _close(send, protocol.TOKEN_IN_QUERY)
        if not _take(self.address_slots, _address_number(scope), slots):
            return await _close(send, protocol.TOO_MANY_SOCKETS)
        await self.startup()
        rate = protocol.FrameRate(settings.ws_frame_rate, settings.ws_frame_burst)
        token = await self._token(scope, receive, send, rate)
        if token is None:
            return
        identity = await self.store.run(store.authenticate, token)
        if identity is None:
            return await _close(send, protocol.NOT_AUTHENTICATED)
        session_id, user_id, seconds_left = identity
        if route_path(scope)[len(PREFIX) : -1] != str(user_id):
            return await _close(send, protocol.WRONG_USER)
        if not _take(self.user_slots, user_id, slots):
            return await _close(send, protocol.TOO_MANY_SOCKETS)
        if not await self._listening():
            return await _close(send, protocol.RESUME)

        conn = Connection(
            send,
            session_id=session_id,
            user_id=user_id,
            queue_size=settings.ws_queue,
            store_=self.store,
            # A client that does not read may take its close frame until the heartbeat
            # would find it dead anyway.
            close_wait=max(10.0, settings.ws_ping_interval + settings.ws_ping_timeout),
        )
        self.hub.add(conn)
        conn.start()
        # The session's expiry ends the socket as it ends REST requests (no event says so).
        expiry = asyncio.get_running_loop().call_later(
            seconds_left, conn.close, protocol.NOT_AUTHENTICATED
        )
        reader = asyncio.ensure_future(asyncio.sleep(0))  # replaced once the socket is loaded
        metrics.open_sockets.inc()
        try:
            groups = await self.store.run(store.groups_of, session_id, user_id)
            if groups is None:  # the session ended while the socket was being set up
                conn.close(protocol.NOT_AUTHENTICATED)
            else:
                self.hub.loaded(conn, groups)
            # Until the client goes, or the socket's task is done closing it (a client that
            # does not read gets no disconnect to wait for: the server drops it then).
            reader = asyncio.ensure_future(self._read(conn, receive, rate))
            await asyncio.wait({reader, conn.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            metrics.open_sockets.dec()
            expiry.cancel()
            self.hub.remove(conn)
            for task in (reader, conn.task):
                if not task.done():
                    task.cancel()
            await asyncio.gather(reader, conn.task, return_exceptions=True)

    async def _token(self, scope: Scope, receive: Receive, send: Send, rate) -> str | None:
        """The token of the Authorization header, or else of the first frame; None when the
        socket was closed instead."""
        headers = scope.get("headers", [])
        if any(name == b"authorization" for name, _ in headers):
            try:
                return security.bearer_token(headers)
            except ApiError:
                await _close(send, protocol.NOT_AUTHENTICATED)
                return None
        try:
            message = await asyncio.wait_for(receive(), self.settings.ws_auth_timeout)
        except asyncio.TimeoutError:
            await _close(send, protocol.NOT_AUTHENTICATED)
            return None
        if message["type"] != "websocket.receive":
            return None  # gone
        rate.allow()
        if self._too_large(message):
            await _close(send, protocol.TOO_LARGE)
            return None
        try:
            frame = protocol.parse(message.get("text"))
        except BadFrame:
            frame = None
        if not isinstance(frame, Auth):
            await _close(send, protocol.NOT_AUTHENTICATED)
            return None
        return frame.token

    async def _listening(self) -> bool:
        if self.stopping:
            return False
        try:
            await asyncio.wait_for(self.source.ready.wait(), LISTEN_WAIT)
        except asyncio.TimeoutError:
            return False
        return not self.stopping

    async def _read(self, conn: Connection, receive: Receive, rate) -> None:
        """The client's frames until it goes; after a close was asked for, the rest are
        dropped until the close completes."""
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if conn.closing is not None:
                continue
            if not rate.allow():
                metrics.refused("ws_frame_rate")
                conn.close(protocol.TOO_MANY_FRAMES)
            elif self._too_large(message):
                conn.close(protocol.TOO_LARGE)
            else:
                self._act(conn, message.get("text"))

    def _act(self, conn: Connection, text: str | None) -> None:
        try:
            frame = protocol.parse(text)
        except BadFrame as error:
            conn.reply(protocol.error_frame(error))
            return
        if isinstance(frame, Sync):
            if not conn.sync(frame):
                conn.reply(protocol.error_frame(BadFrame(Error.SYNC_UNDER_WAY)))
        elif isinstance(frame, Ping):
            conn.reply(protocol.PONG)
        else:
            conn.reply(protocol.error_frame(BadFrame(Error.ALREADY_AUTHENTICATED)))

    def _too_large(self, message) -> bool:
        """Over `ws_max_frame` bytes (uvicorn refuses such frames itself when `im-api serve`
        sets its `ws_max_size`; other servers may not)."""
        limit = self.settings.ws_max_frame
        data = message.get("text")
        if data is None:
            return len(message.get("bytes") or b"") > limit
        return len(data) > limit or (
            len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit
        )


def _slots(settings: Settings, name: str, per_key: int) -> UploadSlots | None:
    return UploadSlots(settings.instance_dir / name, per_key) if per_key > 0 else None


def _take(slots: UploadSlots | None, key: int, taken: list) -> bool:
    """Take one of `key`'s places in `slots` (None: no limit) into `taken`; False when all
    of them are held, on any worker."""
    if slots is None:
        return True
    slot = slots.take(key)
    if slot is None:
        return False
    taken.append(slot)
    return True


def _address_number(scope: Scope) -> int:
    """The client address as a number for the slots file (a hash: 2**40 of them)."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    return int.from_bytes(hashlib.sha256(host.encode("utf-8", "replace")).digest()[:5], "big")


async def _close(send: Send, code: int) -> None:
    await send({"type": "websocket.close", "code": code, "reason": protocol.REASONS[code]})


async def _close_quietly(send: Send, code: int) -> None:
    with contextlib.suppress(Exception):  # closed already, or the client went
        await _close(send, code)
