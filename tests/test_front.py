"""The ASGI front against a real `im-api serve`: stalled downloads, refused, aborted and
concurrent uploads, the free-disk floor, overload, and the websocket door.

Run on SQLite (one worker) and on PostgreSQL (two workers) like the rest of `tests/`. The
figures the stalled-download test prints are ratios against the same requests without the
load, never asserted as times (`-s` shows them).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import threading
import time
from contextlib import ExitStack, contextmanager
from itertools import count

import httpx
import pytest
from envelope import error_body
from raw_http import (
    Answer,
    bearer,
    connect,
    drain,
    get_head,
    part_head,
    read_answer,
    register,
    upload_head,
    wait_until,
)

MB = 1024 * 1024
_names = count()


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_names):03d}"


def spools(server) -> list[str]:
    incoming = server.instance_dir / "media" / ".incoming"
    return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []


def media_files(server) -> list[str]:
    media = server.instance_dir / "media"
    return sorted(p.name for p in media.iterdir() if p.is_file()) if media.exists() else []


def member(server, name: str | None = None) -> tuple[str, int]:
    """A new account and a group it owns: (token, group id)."""
    token = register(server.url, name or unique("m"))
    group = httpx.post(f"{server.url}/groups", json={"name": "g"}, headers=bearer(token))
    assert group.status_code == 201, group.text
    return token, group.json()["group"]["id"]


def upload_file(server, token: str, group_id: int, content: bytes) -> str:
    """Uploads `content` as a file; its signed URL path (`/api/media/...?sig=...`)."""
    response = httpx.post(
        f"{server.url}/groups/{group_id}/upload_file",
        files={"file": ("big.bin", content)},
        headers=bearer(token),
        timeout=120,
    )
    assert response.status_code == 201, response.text
    return response.json()["url"]


def refused_at_once(server, path: str, token: str | None, length: int) -> Answer:
    """Sends only the headers of an upload of `length` bytes and reads the answer."""
    with connect(server.port) as raw:
        raw.sendall(upload_head(path, token, length))
        return read_answer(raw, timeout=10)


def logged_out_token(server) -> str:
    token = register(server.url, unique("gone"))
    assert httpx.post(f"{server.url}/user/logout", headers=bearer(token)).status_code == 200
    return token


# --- Downloads -------------------------------------------------------------------------------


def latencies(server, token: str, requests: int) -> list[float]:
    """Seconds each of `requests` GETs took, /api/health and /api/user/me in turn; every one
    must be answered (a frozen server fails here, on the client's timeout)."""
    taken = []
    with httpx.Client(base_url=server.url, timeout=20) as http:
        for number in range(requests):
            started = time.perf_counter()
            if number % 2:
                response = http.get("/user/me", headers=bearer(token))
            else:
                response = http.get("/health")
            taken.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return taken


class Trickle(threading.Thread):
    """Keeps uploads going slowly: a few bytes to each socket every `every` seconds."""

    def __init__(self, sockets, every: float = 0.25):
        super().__init__(daemon=True)
        self.sockets, self.every, self.stop = sockets, every, threading.Event()

    def run(self):
        while not self.stop.wait(self.every):
            for raw in self.sockets:
                raw.sendall(b"\x00" * 512)


def _refuse(port: int, path: str, token: str, rate: float, active, stop, done, wrong) -> None:
    """In a process of its own (the timed client must not share its interpreter): while
    `active`, uploads refused on their headers, one at a time, `rate` a second."""
    while not stop.is_set():
        if not active.wait(0.1):
            continue
        started = time.monotonic()
        with connect(port) as raw:
            raw.sendall(upload_head(path, token, 40 * MB))
            status = read_answer(raw).status
        with done.get_lock():
            done.value += 1
        if status != 401:
            with wrong.get_lock():
                wrong.value += 1
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


class Refusals:
    """A process refusing uploads at `rate` a second (a logged-out token) when switched on:
    `with refusals.on(): ...`; `done` and `wrong` (not 401) count them."""

    def __init__(self, server, group_id: int, token: str, rate: float = 100):
        context = multiprocessing.get_context("spawn")
        self.active, self.stop = context.Event(), context.Event()
        self.done, self.wrong = context.Value("i", 0), context.Value("i", 0)
        path = f"/api/groups/{group_id}/upload_file"
        arguments = (server.port, path, token, rate, self.active, self.stop, self.done, self.wrong)
        self.process = context.Process(target=_refuse, args=arguments)
        self.process.start()

    @contextmanager
    def on(self):
        before = self.done.value
        self.active.set()
        try:
            assert wait_until(lambda: self.done.value >= before + 5), "no refusals"
            yield
        finally:
            self.active.clear()

    def close(self) -> None:
        self.stop.set()
        self.process.join(30)


@contextmanager
def stalled_downloads(server, url: str, count: int):
    """`count` clients that GET `url` and read nothing (a 4 KiB receive window), once every
    download is under way (its answer began; the requests themselves cost what any costs)."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            raw = stack.enter_context(connect(server.port, receive_buffer=4096, timeout=60))
            raw.sendall(get_head(url))
            sockets.append(raw)
        for raw in sockets:
            raw.recv(1, socket.MSG_PEEK)  # waits for the answer, reads nothing
        time.sleep(0.5)  # the server fills what the network buffers take, then waits
        yield


@contextmanager
def slow_uploads(server, accounts: list[tuple[str, int]]):
    """Three uploads per account, each sending 512 bytes every quarter of a second."""
    with ExitStack() as stack:
        uploads = []
        for token, group in accounts:
            for _ in range(3):
                raw = stack.enter_context(connect(server.port))
                path = f"/api/groups/{group}/upload_file"
                raw.sendall(upload_head(path, token, 4 * MB) + part_head("file"))
                uploads.append(raw)
        trickle = Trickle(uploads)
        trickle.start()
        try:
            yield
        finally:
            trickle.stop.set()
            trickle.join()


def ratio_under(load, server, token: str, rounds: int = 5, requests: int = 60):
    """Rounds of timed GETs under `load()`, each against the mean of the rounds without it
    just before and after (the machine is shared and noisy): the median ratio and the
    lowest and highest. The rounds without it start once the server has settled (closing
    hundreds of connections is work of its own, not the steady cost measured here)."""
    ratios = []
    before = statistics.median(latencies(server, token, requests))
    for _ in range(rounds):
        with load():
            loaded = statistics.median(latencies(server, token, requests))
        time.sleep(0.5)
        after = statistics.median(latencies(server, token, requests))
        ratios.append(loaded / ((before + after) / 2))
        before = after
    return statistics.median(ratios), min(ratios), max(ratios)


def test_stalled_downloads_slow_and_refused_uploads_leave_other_requests_answered(
    serve, database_url
):
    """Hundreds of clients that GET a large media and stop reading, slow uploads and a stream
    of refused uploads: /api/health and /api/user/me are answered all along; the ratio of
    their median time to the same requests without that load is printed."""
    server = serve(IM_SEND_TIMEOUT="300")
    token, group_id = member(server)
    url = upload_file(server, token, group_id, os.urandom(16 * MB))
    accounts = [member(server) for _ in range(10)]
    refusals = Refusals(server, group_id, logged_out_token(server))
    loads = {
        "200 stalled downloads": lambda: stalled_downloads(server, url, 200),
        "30 slow uploads": lambda: slow_uploads(server, accounts),
        "refused uploads, 100/s": refusals.on,
    }
    try:
        figures = {label: ratio_under(load, server, token) for label, load in loads.items()}
    finally:
        refusals.close()
    assert refusals.wrong.value == 0

    database = "SQLite, 1 worker" if database_url.startswith("sqlite") else "PostgreSQL, 2 workers"
    print(f"\nfront under load ({database}): median time of GET /api/health and /api/user/me")
    print("under the load / without it, median of 5 rounds (lowest-highest)")
    for label, (ratio, low, high) in figures.items():
        print(f"  {label:24} {ratio:.2f} ({low:.2f}-{high:.2f})")


def test_a_download_that_stops_reading_is_cut_off_after_the_send_timeout(serve):
    """GET /api/media/{id}: a client that reads nothing for IM_SEND_TIMEOUT seconds loses
    the connection; what it had not read is never sent."""
    server = serve(IM_SEND_TIMEOUT="1")
    token, group_id = member(server)
    size = 16 * MB
    url = upload_file(server, token, group_id, os.urandom(size))

    with connect(server.port, receive_buffer=4096) as raw:
        raw.sendall(get_head(url))
        time.sleep(4)  # reading nothing, well past the timeout
        read, closed = drain(raw, timeout=10)

    assert read < size, "the whole file was sent"
    assert closed, "the server kept the stalled download open"


def test_a_download_read_to_the_end_is_whole(serve):
    """GET /api/media/{id} over a real socket: the whole file, as long as it is read."""
    server = serve(IM_SEND_TIMEOUT="5")
    token, group_id = member(server)
    content = os.urandom(3 * MB + 17)
    url = upload_file(server, token, group_id, content)
    response = httpx.get(server.url.removesuffix("/api") + url, timeout=30)
    assert response.status_code == 200 and response.content == content


# --- Uploads ---------------------------------------------------------------------------------


def test_refused_uploads_answer_before_the_body_and_leave_nothing(serve):
    """POST upload_* and change_image: token, session, group, membership and declared size
    are judged on the headers alone; the answer comes at once, in the envelope, and the
    server closes the connection."""
    server = serve()
    alice, group_id = member(server)
    bob = register(server.url, unique("bob"))
    gone = logged_out_token(server)
    into = f"/api/groups/{group_id}/upload_file"
    cases = [
        ("no token", into, None, 40 * MB, 401, 1003),
        ("logged-out token", into, gone, 40 * MB, 401, 1004),
        ("forged token", into, "not-a-token", 40 * MB, 401, 1004),
        ("not a member", into, bob, 40 * MB, 403, 3002),
        ("unknown group", "/api/groups/987654/upload_image", alice, 5 * MB, 404, 3001),
        ("too large", into, alice, 60 * MB, 413, 4003),
        ("avatar, logged-out token", "/api/user/change_image", gone, MB, 401, 1004),
        ("avatar too large", "/api/user/change_image", alice, 3 * MB, 413, 4003),
    ]
    for label, path, token, length, status, code in cases:
        answer = refused_at_once(server, path, token, length)
        assert (answer.status, answer.json()["code"]) == (status, code), label
        assert set(answer.json()) == {"code", "info", "request_id"}, label
        assert answer.headers["content-type"] == "application/json", label
        assert answer.closed, f"{label}: the connection stayed open"
    assert spools(server) == [] and media_files(server) == []


def test_an_aborted_upload_leaves_no_spool_once_it_aborts(serve):
    """A client that leaves in the middle of an upload: its spool file goes at once."""
    server = serve()
    token, group_id = member(server)
    with connect(server.port) as raw:
        raw.sendall(upload_head(f"/api/groups/{group_id}/upload_file", token, 8 * MB))
        raw.sendall(part_head("file") + b"\x00" * MB)
        assert wait_until(lambda: len(spools(server)) == 1), "the upload was not being spooled"
    assert wait_until(lambda: spools(server) == [], timeout=5), spools(server)
    assert media_files(server) == []


def test_uploads_beyond_the_limit_per_account_are_429(serve):
    """At most IM_MAX_UPLOADS_PER_ACCOUNT uploads of one account at once, on every worker;
    one more is 429 with Retry-After at once; other accounts go on; a slot frees when an
    upload ends."""
    server = serve(IM_MAX_UPLOADS_PER_ACCOUNT="2", IM_RETRY_AFTER="4")
    token, group_id = member(server)
    path = f"/api/groups/{group_id}/upload_file"
    with ExitStack() as stack:
        running = []
        for _ in range(2):
            raw = stack.enter_context(connect(server.port))
            raw.sendall(upload_head(path, token, 4 * MB) + part_head("file") + b"\x00" * 1000)
            running.append(raw)
        assert wait_until(lambda: len(spools(server)) == 2), spools(server)

        answer = refused_at_once(server, path, token, 4 * MB)
        assert (answer.status, answer.json()["code"]) == (429, 4009)
        assert answer.headers["retry-after"] == "4" and answer.json()["retry_after"] == 4
        assert answer.closed

        other, other_group = member(server)
        upload_file(server, other, other_group, b"another account")

        running.pop().close()  # one upload aborts: its slot is free again
        assert wait_until(lambda: len(spools(server)) == 1), spools(server)
        upload_file(server, token, group_id, b"now there is room")


def test_uploads_answer_507_below_the_free_disk_floor(serve):
    """Below IM_MIN_FREE_DISK_BYTES of free disk an upload is 507 before its body is read;
    everything else goes on."""
    server = serve(IM_MIN_FREE_DISK_BYTES=str(10**18))
    token, group_id = member(server)
    answer = refused_at_once(server, f"/api/groups/{group_id}/upload_image", token, 1000)
    assert (answer.status, answer.json()["code"]) == (507, 4010)
    assert answer.closed
    assert spools(server) == [] and media_files(server) == []
    assert httpx.get(f"{server.url}/user/me", headers=bearer(token)).status_code == 200


# --- Overload --------------------------------------------------------------------------------


def test_a_request_that_finds_every_thread_busy_gets_503_with_retry_after(serve):
    """Every request thread busy (two, hashing slow passwords): a new request waits
    IM_QUEUE_TIMEOUT, then is 503 with Retry-After; once a thread frees, requests pass.

    One worker: the threads and the wait are per process."""
    server = serve(
        workers=1,
        IM_REQUEST_THREADS="2",
        IM_QUEUE_TIMEOUT="0.3",
        IM_RETRY_AFTER="7",
        IM_BCRYPT_ROUNDS="15",
    )
    name = unique("slow")
    register(server.url, name, "slow password")

    def login():
        return httpx.post(
            f"{server.url}/user/login",
            json={"name": name, "password": "slow password"},
            timeout=60,
        )

    logins = [threading.Thread(target=login) for _ in range(2)]
    for thread in logins:
        thread.start()
    time.sleep(0.5)  # both logins are hashing in the two threads
    busy = httpx.get(f"{server.url}/health", timeout=30)
    for thread in logins:
        thread.join()

    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "7"
    assert error_body(busy) == {"code": 1013, "info": "Server busy, retry in 7 s"}
    assert httpx.get(f"{server.url}/health").status_code == 200


# --- Websockets ------------------------------------------------------------------------------


def test_a_websocket_at_ws_url_reaches_the_realtime_endpoint(client):
    """/api/ws/user/{id}/ (register's `ws_url`) is the realtime endpoint's: a socket whose
    first frame is not `auth` is closed 4401 (tests/test_realtime.py has the rest)."""
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/ws/user/1/") as socket,
    ):
        socket.send_json({"type": "ping"})
        socket.receive_text()
    assert closed.value.code == 4401


def test_the_realtime_endpoint_plugs_in_and_gets_the_websockets_of_ws_url(settings):
    """`Front(..., realtime=endpoint)`: /api/ws/user/{id}/ reaches it; another path is
    refused at the upgrade."""
    from connexion import FlaskApp
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from im_api.front import Front

    async def endpoint(scope, receive, send):
        socket = WebSocket(scope, receive, send)
        await socket.accept()
        await socket.send_text(scope["path"])
        await socket.close()

    front = Front(FlaskApp(__name__), settings, realtime=endpoint)
    with front.test_client() as client:
        with client.websocket_connect("/api/ws/user/7/") as socket:
            assert socket.receive_text() == "/api/ws/user/7/"
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/api/elsewhere"):
            pass


def test_lifespan_reaches_connexion_through_the_front(settings):
    """A lifespan given to the FlaskApp runs at startup and shutdown of the served front."""
    from contextlib import asynccontextmanager

    from connexion import FlaskApp

    from im_api.front import Front

    ran = []

    @asynccontextmanager
    async def lifespan(app):
        ran.append("startup")
        yield
        ran.append("shutdown")

    with Front(FlaskApp(__name__, lifespan=lifespan), settings).test_client():
        assert ran == ["startup"]
    assert ran == ["startup", "shutdown"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not-a-token", "bearer  x y"],
)
def test_uploads_judge_the_authorization_header_as_connexion_does(client, authorization):
    """The front checks an upload's token itself (before Connexion): same answers as
    Connexion's bearer check gives GET /api/user/me."""
    headers = {} if authorization is None else {"Authorization": authorization}
    upload = client.post(
        "/api/user/change_image", headers=headers, files={"avatar": ("a.png", b"x")}
    )
    me = client.get("/api/user/me", headers=headers)
    assert (upload.status_code, error_body(upload)) == (me.status_code, error_body(me))
