"""What one TCP connection may cost before a request reaches the app: the size of its
headers, the time they take to arrive, and how many connections one client address holds.

uvicorn's httptools protocol bounds none of these: headers that never end grow the worker's
memory by about a byte per byte sent, a request sent one byte every few seconds is held
for as long as it goes on, and one address may open connections until the worker runs out
of file handles. `im-api serve` therefore names the two protocols below to uvicorn
(`http=` and `ws=`): uvicorn's own, with these bounds added.

* Headers (request line included) over `IM_MAX_HEADER_BYTES` are answered 431 and the
  connection closed; what is held meanwhile stays under the limit plus one read.
* A request's headers must be whole within `IM_HEADER_TIMEOUT` seconds of its first byte
  (of the connection, for the first request): then 408, closed. Keep-alive idleness
  between requests is uvicorn's own `timeout_keep_alive`.
* At most `IM_MAX_CONNECTIONS_PER_ADDRESS` connections from one peer address at once, per
  worker process (file handles are the process's): a connection past it is closed as it
  is accepted. A websocket keeps its place until it ends. Peers named in
  `IM_TRUSTED_PROXIES` are not counted: a proxy carries many clients.

Why not h11, whose `h11_max_incomplete_event_size` bounds headers: measured on this
machine, it costs 25 to 30 % more server CPU per small request than httptools (1215-1255
against 915-987 us for GET /api/user/me), and it has no header timeout or count per
address either. The checks here cost about 1 % in instructions per request (callgrind).
The answers here are plain text, as uvicorn's own 400 for a malformed request: they come
before any route is known, outside the API's contract.
"""

from __future__ import annotations

import ipaddress
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from im_core.config import Settings, current

logger = logging.getLogger(__name__)

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class Guard:
    """The bounds of one worker process, and its count of connections per address."""

    def __init__(self, settings: Settings):
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout = settings.header_timeout
        self.per_address = settings.max_connections_per_address
        proxies = settings.trusted_proxies
        self.trust_all = "*" in proxies
        self.trusted_names = set()
        self.trusted_networks = []
        for proxy in proxies:
            try:
                self.trusted_networks.append(ipaddress.ip_network(proxy, strict=False))
            except ValueError:
                self.trusted_names.add(proxy)
        self.open: dict[str, int] = {}
        self.warned: set[str] = set()

    def counted(self, host: str | None) -> bool:
        """Whether connections from `host` count against the limit per address."""
        if host is None or self.per_address <= 0 or self.trust_all:
            return False
        if host in self.trusted_names:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True
        return not any(address in network for network in self.trusted_networks)

    def admit(self, host: str | None) -> bool:
        """Count a new connection from `host`; False (nothing counted) when it has all the
        connections it may have."""
        if not self.counted(host):
            return True
        held = self.open.get(host, 0)
        if held >= self.per_address:
            if host not in self.warned:  # once while it stays at the limit, not per refusal
                self.warned.add(host)
                logger.warning(
                    "Connections from %s refused: it holds %d, the most one address may",
                    host,
                    held,
                )
            return False
        self.open[host] = held + 1
        return True

    def release(self, host: str | None) -> None:
        if not self.counted(host):
            return
        held = self.open.get(host, 0) - 1
        if held > 0:
            self.open[host] = held
        else:
            self.open.pop(host, None)
        if held < self.per_address:
            self.warned.discard(host)


_guard: tuple[Settings, Guard] | None = None


def guard() -> Guard:
    """The guard of the app this process serves (made from its settings once)."""
    global _guard
    settings = current()
    if _guard is None or _guard[0] is not settings:
        _guard = (settings, Guard(settings))
    return _guard[1]


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header size, the header time and the count of
    connections per address bounded (the module's docstring says how)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = guard()
        self.counted_host: str | None = None  # the address this connection counts against
        self.reading_headers = True  # from the first byte, until the headers are whole
        self.header_bytes = 0
        self.header_timer = None
        self.message_done_in_read = False
        self.refused = False  # answered 408 or 431: the rest of the read is ignored

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if not self.guard.admit(host):
            transport.close()
            return
        if self.guard.counted(host):
            self.counted_host = host
        self._time_headers()

    def connection_lost(self, exc) -> None:
        self._stop_timing_headers()
        self.guard.release(self.counted_host)
        self.counted_host = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.message_done_in_read = False
        super().data_received(data)
        if self.refused or not self.reading_headers or self.transport.is_closing():
            return
        # Bytes of a request's headers so far. A read that also ended the previous request
        # (pipelining) is not counted: how much of it is the new one's is not known, and at
        # most one read's worth goes uncounted.
        if not self.message_done_in_read:
            self.header_bytes += len(data)
        if self.header_bytes > self.guard.max_header_bytes:
            self._refuse(431)

    def handle_websocket_upgrade(self) -> None:
        if self.refused:  # its headers were too large: answered 431 already
            return
        # The websocket protocol takes the connection, and its place (`GuardedWebSockets`).
        self._stop_timing_headers()
        self.counted_host = None
        super().handle_websocket_upgrade()

    # Parser callbacks (httptools calls them from `data_received`)

    def on_message_begin(self) -> None:
        if self.refused:
            return
        super().on_message_begin()
        self.reading_headers = True
        self.header_bytes = 0
        self._time_headers()

    def on_headers_complete(self) -> None:
        if self.refused:
            return
        self.reading_headers = False
        self._stop_timing_headers()
        # Headers that came whole in one read: their size as parsed (the line's and each
        # header's separators counted as 4 bytes).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size + 16 > self.guard.max_header_bytes:
            self._refuse(431)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        self.message_done_in_read = True
        super().on_message_complete()

    # The header timeout

    def _time_headers(self) -> None:
        if self.header_timer is None and self.guard.header_timeout > 0:
            self.header_timer = self.loop.call_later(
                self.guard.header_timeout, self._headers_too_slow
            )

    def _stop_timing_headers(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if not self.reading_headers or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408)
        else:  # a pipelined request behind an answer still going out: no room for ours
            self.transport.close()

    def _refuse(self, status: int) -> None:
        """Answer `status` in plain text and close, reading nothing more."""
        self._stop_timing_headers()
        self.refused = True
        self.reading_headers = False
        reason = REASONS[status]
        body = reason + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()


class GuardedWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, holding its connection's place per address (taken by
    `GuardedHttpTools` when the connection was accepted) until the socket ends."""

    counted_host: str | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if guard().counted(host):
            self.counted_host = host

    def connection_lost(self, exc) -> None:
        try:
            super().connection_lost(exc)
        finally:
            guard().release(self.counted_host)
            self.counted_host = None
