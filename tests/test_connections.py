"""What one connection may cost `im-api serve` before the app sees a request: the size of
its headers, the time they take, and how many connections one client address holds.

Against a real server (uvicorn's protocol is what is bounded), one worker, so that its
memory is the process's and the count per address is one process's. Small settings keep
the tests short: the behaviour, not the defaults, is what they check.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx
from raw_http import read_answer, wait_until

MB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect_from(port: int, address: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    """A connection from `address` (any 127.x.y.z is this machine's loopback)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.bind((address, 0))
    raw.connect(("127.0.0.1", port))
    return raw


def cut_or_refused(raw: socket.socket, wait: float = 5) -> bool:
    """True when the server closed the connection (with or without an answer first)."""
    raw.settimeout(wait)
    try:
        while data := raw.recv(65536):
            if b"\r\n\r\n" in data and not data.startswith((b"HTTP/1.1 431", b"HTTP/1.1 408")):
                return False  # answered something else
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_headers_that_never_end_get_431_or_a_cut_and_leave_memory_flat(serve):
    """A request whose header never ends: past IM_MAX_HEADER_BYTES the connection is
    answered 431 or cut, and 4 such connections sending 8 MiB each move the server's
    memory by a few MiB at most (before: +1 byte per byte sent, then a 200)."""
    server = serve(workers=1, IM_MAX_HEADER_BYTES="16384")
    pid = server.process.pid
    httpx.get(f"{server.url}/health")  # the first request's own allocations
    before = rss_mib(pid)
    chunk = b"a" * 65536
    outcomes = []
    for _ in range(4):
        with contextlib.closing(connect_from(server.port)) as raw:
            raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Long: ")
            try:
                for _ in range(8 * MB // len(chunk)):
                    raw.sendall(chunk)
                raw.sendall(b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            outcomes.append(cut_or_refused(raw))
    grown = rss_mib(pid) - before

    assert outcomes == [True] * 4 and grown < 8, (
        f"answered instead of refused: {outcomes.count(False)} of 4; "
        f"the server grew by {grown:.1f} MiB"
    )
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_request_with_headers_just_under_the_limit_is_answered(serve):
    """Headers under IM_MAX_HEADER_BYTES are served as usual."""
    server = serve(workers=1, IM_MAX_HEADER_BYTES="16384")
    response = httpx.get(f"{server.url}/health", headers={"X-Padding": "p" * 12000})
    assert response.status_code == 200


def test_a_431_answer_says_so(serve):
    """Headers sent whole but over the limit, of a request or a websocket upgrade: 431 with
    Connection: close."""
    server = serve(workers=1, IM_MAX_HEADER_BYTES="16384")
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    upgrade += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    for path, extra in (("/api/health", b""), ("/api/ws/user/1/", upgrade)):
        with contextlib.closing(connect_from(server.port)) as raw:
            raw.sendall(
                f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
                + extra
                + b"X-Pad: "
                + b"p" * 40000
                + b"\r\n\r\n"
            )
            answer = read_answer(raw)
        assert answer.status == 431, path
        assert answer.closed, path
    assert "Traceback" not in server.log.read_text()


def test_headers_sent_a_byte_at_a_time_are_cut_after_the_header_timeout(serve):
    """A client that sends its headers one byte every 0.3 s (and one that sends nothing) is
    cut once IM_HEADER_TIMEOUT has passed, whatever it sends meanwhile (before: held for
    as long as it kept sending)."""
    server = serve(workers=1, IM_HEADER_TIMEOUT="2")
    slow = connect_from(server.port)
    silent = connect_from(server.port)
    request = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 40
    started = time.monotonic()
    cut_after = None
    for byte in request:
        try:
            slow.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            cut_after = time.monotonic() - started
            break
        slow.settimeout(0.3)
        try:
            if slow.recv(4096) == b"":
                cut_after = time.monotonic() - started
                break
        except TimeoutError:
            pass
        except ConnectionResetError:
            cut_after = time.monotonic() - started
            break
    assert cut_after is not None, "the slow client was held for the whole request"
    assert cut_after < 30
    assert cut_or_refused(silent, wait=5), "the silent client was held"
    slow.close()
    silent.close()


def test_one_address_holds_at_most_the_connections_it_may(serve):
    """IM_MAX_CONNECTIONS_PER_ADDRESS=5: a sixth connection from the same address is cut at
    once, another address is served meanwhile, and a connection that ends frees its place
    (before: every connection was kept)."""
    server = serve(workers=1, IM_MAX_CONNECTIONS_PER_ADDRESS="5", IM_HEADER_TIMEOUT="60")
    held = [connect_from(server.port, "127.0.0.2") for _ in range(5)]
    for raw in held:
        raw.sendall(b"GET /api/health HTTP/1.1\r\n")  # unfinished: each holds its place
    time.sleep(0.3)
    sixth = connect_from(server.port, "127.0.0.2")
    sixth.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert cut_or_refused(sixth), "a sixth connection from one address was served"
    sixth.close()

    other = httpx.get(f"{server.url}/health")  # from 127.0.0.1
    assert other.status_code == 200

    held.pop().close()

    def served_again() -> bool:
        with contextlib.closing(connect_from(server.port, "127.0.0.2")) as raw:
            raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return read_answer(raw, timeout=5).status == 200
            except (AssertionError, OSError):
                return False

    assert wait_until(served_again, timeout=10), "the freed place was not given again"
    for raw in held:
        raw.close()


def test_a_websocket_counts_against_its_address_until_it_ends(serve):
    """An upgraded connection still holds its address's place (it is one open connection);
    once it closes, the place is free again."""
    from websockets.sync.client import connect

    server = serve(
        workers=1,
        IM_MAX_CONNECTIONS_PER_ADDRESS="2",
        IM_HEADER_TIMEOUT="60",
        IM_WS_AUTH_TIMEOUT="60",
    )
    ws_url = f"ws://127.0.0.1:{server.port}/api/ws/user/1/"
    with contextlib.ExitStack() as sockets:
        for _ in range(2):
            sock = connect_from(server.port, "127.0.0.3")
            sockets.enter_context(connect(ws_url, sock=sock, open_timeout=10))
        third = connect_from(server.port, "127.0.0.3")
        third.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert cut_or_refused(third), "a third connection was served while two sockets were open"
        third.close()

    def served_again() -> bool:
        with contextlib.closing(connect_from(server.port, "127.0.0.3")) as raw:
            raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return read_answer(raw, timeout=5).status == 200
            except (AssertionError, OSError):
                return False

    assert wait_until(served_again, timeout=10)
