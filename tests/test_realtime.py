"""The live channel at ws_url against a real `im-api serve` (uvicorn) and a real websocket
client: authentication both ways, every close code, error frames, live delivery of messages
posted over REST, resume without loss, removal, ended sessions, slow readers, shutdown.

One server serves the module (two workers on PostgreSQL, so a post and a socket are often
on different workers); tests that stop or measure a server start their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import NO_LIMITS, LiveServer, empty_tables
from im_api.app import create_app
from im_core.config import Settings


@pytest.fixture(scope="module")
def database(tmp_path_factory, database_url):
    """The test database emptied once for the module's servers (users have unique names)."""
    return emptied(tmp_path_factory, database_url)


def emptied(tmp_path_factory, database_url: str) -> str:
    # This process binds the test database only to empty it; servers have their own process.
    create_app(
        Settings.from_env(
            environ={},
            instance_dir=tmp_path_factory.mktemp("parent") / "instance",
            database_url=database_url,
        )
    )
    empty_tables()
    return database_url


def start_server(tmp_path_factory, database_url, workers=None, **env) -> LiveServer:
    if workers is None:
        workers = 1 if database_url.startswith("sqlite") else 2
    instance = tmp_path_factory.mktemp("server") / "instance"
    return LiveServer(
        instance, database_url, workers=workers, log_level="info", **{**NO_LIMITS, **env}
    ).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, database):
    live = start_server(tmp_path_factory, database, IM_WS_AUTH_TIMEOUT="1")
    yield live
    live.stop()


# --- A client: REST for the setup, websockets for the channel --------------------------------


class Api:
    def __init__(self, server: LiveServer):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def user(self, prefix: str = "u") -> User:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        answer = self.http.post("/user/register", json={"name": name, "password": "secret12"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return User(self, name, body["user"]["id"], body["token"])


@dataclasses.dataclass
class User:
    api: Api
    name: str
    id: int
    token: str

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, status: int = 200, **kwargs) -> dict:
        answer = self.api.http.request(method, path, headers=self.auth, **kwargs)
        assert answer.status_code == status, answer.text
        return answer.json()

    def group(self, *members: User) -> int:
        group_id = self.call("POST", "/groups", 201, json={"name": "g"})["group"]["id"]
        for member in members:
            self.call("POST", f"/groups/{group_id}/members", json={"name": member.name})
        return group_id

    def post(self, group_id: int, text: str, **extra) -> dict:
        answer = self.api.http.post(
            f"/groups/{group_id}/messages", headers=self.auth, json={"text": text, **extra}
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()["message"]

    def login_again(self) -> str:
        answer = self.api.http.post("/user/login", json={"name": self.name, "password": "secret12"})
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def socket(self, **kwargs) -> Socket:
        return Socket.open(self.api.server, self.id, self.token, **kwargs)


def ws_url(server: LiveServer, user_id, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + f"/ws/user/{user_id}/" + query


class Socket:
    """A websocket client that reads frames as JSON."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    def open(cls, server, user_id, token=None, *, header=True, query="", **kwargs) -> Socket:
        headers = {"Authorization": f"Bearer {token}"} if token and header else None
        ws = connect(
            ws_url(server, user_id, query),
            additional_headers=headers,
            open_timeout=10,
            close_timeout=2,
            max_size=None,
            legacy=True,  # a connection held across calls, not a `with` block
            **kwargs,
        )
        socket = cls(ws)
        if token and not header:
            socket.send({"type": "auth", "token": token})
        return socket

    def send(self, frame) -> None:
        self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    def recv(self, timeout: float = 10) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def sync(self, since: dict | None = None) -> tuple[list[dict], dict]:
        """Send `sync`; the frames replayed before `ready`, and `ready`."""
        self.send({"type": "sync", "since": {str(g): s for g, s in (since or {}).items()}})
        replayed = []
        while (frame := self.recv())["type"] != "ready":
            replayed.append(frame)
        return replayed, frame

    def nothing_pending(self) -> list[dict]:
        """What arrived before the answer to a ping (the server answers in order)."""
        self.send({"type": "ping"})
        before = []
        while (frame := self.recv())["type"] != "pong":
            before.append(frame)
        return before

    def closed_with(self, timeout: float = 10) -> int | None:
        """Read until the server closes; its close code."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def api(server):
    client = Api(server)
    yield client
    client.http.close()


def messages_of(frames: list[dict]) -> list[tuple[int, int]]:
    return [
        (f["message"]["group_id"], f["message"]["seq"])
        for f in frames
        if f["type"] == "message.created"
    ]


# --- Authentication and refusals -------------------------------------------------------------


def test_a_socket_authenticated_by_header_gets_ready_with_its_groups(api):
    alice = api.user()
    group_id = alice.group()
    alice.post(group_id, "hello")
    socket = alice.socket()
    replayed, ready = socket.sync()
    assert replayed == []
    assert ready == {
        "type": "ready",
        "groups": {str(group_id): 1},
        "revs": {str(group_id): 1},
        "reads": {str(group_id): {"read_seq": 0, "unread_count": 0, "mention_count": 0}},
    }
    socket.close()


def test_a_socket_authenticated_by_its_first_frame(api):
    alice = api.user()
    socket = alice.socket(header=False)
    assert socket.sync()[1] == {"type": "ready", "groups": {}, "revs": {}, "reads": {}}
    assert socket.nothing_pending() == []
    socket.close()


@pytest.mark.parametrize(
    "case",
    [
        "no auth in time",
        "ping first",
        "auth without token",
        "auth token not a string",
        "not json first",
        "bad header token",
        "basic scheme",
        "bad frame token",
        "logged out",
    ],
)
def test_unauthenticated_sockets_are_closed_4401(api, case):
    alice = api.user()
    header, first = None, None
    if case == "ping first":
        first = {"type": "ping"}
    elif case == "auth without token":
        first = {"type": "auth"}
    elif case == "auth token not a string":
        first = {"type": "auth", "token": 12}
    elif case == "not json first":
        first = "{"
    elif case == "bad header token":
        header = "Bearer not-a-token"
    elif case == "basic scheme":
        header = "Basic dXNlcjpwYXNz"
    elif case == "bad frame token":
        first = {"type": "auth", "token": alice.token[:-2]}
    elif case == "logged out":
        alice.call("POST", "/user/logout")
        header = f"Bearer {alice.token}"
    ws = connect(
        ws_url(api.server, alice.id),
        additional_headers={"Authorization": header} if header else None,
        open_timeout=10,
        legacy=True,
    )
    socket = Socket(ws)
    if first is not None:
        socket.send(first)
    assert socket.closed_with() == 4401


def test_a_token_of_another_user_is_closed_4403(api):
    alice, bob = api.user(), api.user()
    assert Socket.open(api.server, bob.id, alice.token).closed_with() == 4403
    assert Socket.open(api.server, "me", alice.token, header=False).closed_with() == 4403


@pytest.mark.parametrize(
    "query", ["?token=abc", "?access_token=abc", "?x=1&token", "?Access_Token="]
)
def test_a_token_in_the_query_string_is_closed_4400(api, query):
    alice = api.user()
    # Even with a good header: the URL has leaked the token into logs already.
    socket = Socket.open(api.server, alice.id, alice.token, query=query)
    assert socket.closed_with() == 4400


def test_an_expired_token_is_closed_4401(tmp_path_factory, database):
    server = start_server(tmp_path_factory, database, workers=1, IM_TOKEN_TTL="1")
    try:
        alice = Api(server).user()
        time.sleep(1.5)
        assert alice.socket().closed_with() == 4401
    finally:
        server.stop()


def test_an_open_socket_is_closed_4401_when_its_session_expires(tmp_path_factory, database):
    """A session's expiry ends its socket too, as it ends its REST requests: a socket is not a
    way to outlive the token it was opened with."""
    server = start_server(tmp_path_factory, database, workers=1, IM_TOKEN_TTL="3")
    try:
        alice = Api(server).user()
        socket = alice.socket()
        socket.sync()
        assert socket.closed_with(timeout=10) == 4401
    finally:
        server.stop()


# --- Frames after authentication -------------------------------------------------------------


def test_bad_frames_get_error_frames_and_the_socket_stays_open(api):
    alice = api.user()
    socket = alice.socket()
    cases = [
        ("not json", 6001),
        ("[1, 2]", 6001),
        ("{}", 6001),
        ('{"type": 5}', 6001),
        ('{"type": "sync"}', 6001),
        ('{"type": "sync", "since": {"x": 1}}', 6001),
        ('{"type": "sync", "since": {"1": -1}}', 6001),
        ('{"type": "sync", "since": {"1": true}}', 6001),
        ('{"type": "sync", "since": {"1": 1.5}}', 6001),
        ('{"type": "sync", "since": {"99999999999999999": 1}}', 6001),
        ('{"type": "sync", "since": {"0": 1}}', 6001),
        ('{"type": "sync", "since": {"1": 9007199254740992}}', 6001),
        ('{"type": "ping", "extra": [1]}', 6001),
        ('{"type": "auth", "token": ""}', 6001),
        ('{"type": "subscribe"}', 6002),
        ('{"type": "subscribe", "extra": 1}', 6002),
        ('{"type": "auth", "token": "x"}', 6003),
        (b"\x00\x01", 6001),
    ]
    for frame, code in cases:
        socket.send(frame)
        answer = socket.recv()
        assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
        assert isinstance(answer["info"], str) and answer["info"]
    socket.send({"type": "ping"})
    assert socket.recv() == {"type": "pong"}
    assert socket.sync()[1]["type"] == "ready"
    socket.close()


def test_deep_json_within_the_size_limit_is_a_bad_frame_not_a_crash(api):
    socket = api.user().socket()
    socket.send("[" * 30_000 + "]" * 30_000)
    assert socket.recv()["code"] == 6001
    socket.close()


def test_a_frame_over_the_size_limit_closes_1009(api):
    socket = api.user().socket()
    socket.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert socket.closed_with() == 1009


def test_a_flood_of_frames_closes_4429_and_others_are_served(api):
    alice, bob = api.user(), api.user()
    flood, calm = alice.socket(), bob.socket()
    for _ in range(200):
        try:
            flood.send({"type": "ping"})
        except ConnectionClosed:
            break
    assert flood.closed_with() == 4429
    assert calm.nothing_pending() == []
    calm.close()


# --- Delivery --------------------------------------------------------------------------------


def test_a_message_posted_over_rest_reaches_every_member_and_no_one_else(api):
    alice, bob, carol = api.user(), api.user(), api.user()
    group_id = alice.group(bob)
    sockets = {user.name: user.socket() for user in (alice, bob, carol)}
    for socket in sockets.values():
        socket.sync()
    posted = alice.post(group_id, "héllo, wörld", client_msg_id="m-1")
    for name in (alice.name, bob.name):
        frame = sockets[name].recv()
        assert frame == {"type": "message.created", "message": posted}
        assert frame["message"]["text"] == "héllo, wörld" and frame["message"]["seq"] == 1
    assert sockets[carol.name].nothing_pending() == []
    for socket in sockets.values():
        socket.close()


def test_live_events_wait_for_the_first_sync(api):
    alice = api.user()
    group_id = alice.group()
    socket = alice.socket()
    assert socket.nothing_pending() == []  # ready to hear, not yet synced
    alice.post(group_id, "one")
    assert socket.nothing_pending() == []  # held
    replayed, ready = socket.sync({group_id: 0})
    assert [f["message"]["text"] for f in replayed] == ["one"]
    assert ready["groups"] == {str(group_id): 1}
    # The held live frame of seq 1 is not sent again after ready.
    assert socket.nothing_pending() == []
    alice.post(group_id, "two")
    assert socket.recv()["message"]["seq"] == 2
    socket.close()


def test_members_added_and_removed_and_groups_deleted_reach_the_sockets(api):
    alice, bob = api.user(), api.user()
    group_id = alice.group()
    a, b = alice.socket(), bob.socket()
    a.sync(), b.sync()

    alice.call("POST", f"/groups/{group_id}/members", json={"name": bob.name})
    added = {
        "type": "member.added",
        "group_id": group_id,
        "user": {"id": bob.id, "name": bob.name, "avatar_url": None},
    }
    assert a.recv() == added and b.recv() == added
    alice.post(group_id, "welcome")
    assert a.recv()["message"]["text"] == b.recv()["message"]["text"] == "welcome"

    alice.call("DELETE", f"/groups/{group_id}/members/{bob.id}")
    removed = {"type": "member.removed", "group_id": group_id, "user_id": bob.id}
    assert a.recv() == removed and b.recv() == removed
    alice.post(group_id, "after bob left")
    assert a.recv()["message"]["text"] == "after bob left"
    assert b.nothing_pending() == []  # nothing more of that group reaches bob

    # The last member leaves: the group goes with her, and her sockets hear that it is gone
    # (group.deleted), then nothing more of it.
    alice.call("DELETE", f"/groups/{group_id}/members/{alice.id}")
    assert a.recv() == {"type": "group.deleted", "group_id": group_id}
    assert a.nothing_pending() == []
    a.close(), b.close()


def test_resume_loses_nothing_while_messages_are_posted_concurrently(api):
    """100 messages in three groups from three senders at once, while the reader drops and
    reconnects with its positions twice: each message exactly once per (group, seq) after
    dedup, every group's seq 1..n without a gap, in order on each connection."""
    alice, bob, carol = api.user(), api.user(), api.user()
    groups = [alice.group(bob, carol) for _ in range(3)]
    reader = api.user("reader")
    for group_id in groups:
        alice.call("POST", f"/groups/{group_id}/members", json={"name": reader.name})
    senders = [alice, bob, carol]

    def post(index: int) -> None:
        random.seed(index)
        time.sleep(random.random() * 2)
        senders[index % 3].post(groups[index % 3], f"m{index}", client_msg_id=f"c{index}")

    positions = {g: 0 for g in groups}
    seen: dict[int, list[int]] = {g: [] for g in groups}
    with ThreadPoolExecutor(max_workers=6) as pool:
        posting = [pool.submit(post, i) for i in range(100)]
        for connection in range(3):
            socket = reader.socket()
            replayed, ready = socket.sync(positions)
            got = messages_of(replayed)
            deadline = time.monotonic() + (0.6 if connection < 2 else 30)
            while time.monotonic() < deadline and sum(map(len, seen.values())) + len(got) < 100:
                try:
                    frame = socket.recv(timeout=0.2)
                except TimeoutError:
                    continue
                got += messages_of([frame])
            socket.close()
            for group_id, seq in got:
                # In order on each connection, never a seq twice from one connection.
                assert (
                    seq > (seen[group_id][-1] if seen[group_id] else 0)
                    or seq <= positions[group_id]
                )
                if seq > positions[group_id]:
                    seen[group_id].append(seq)
                    positions[group_id] = seq
        for future in posting:
            future.result()
    assert sum(map(len, seen.values())) == 100
    for group_id in groups:
        assert seen[group_id] == list(range(1, len(seen[group_id]) + 1))


def test_logout_password_change_and_cancel_close_the_sessions_sockets_within_a_second(api):
    alice = api.user()
    other_token = alice.login_again()
    mine, other = alice.socket(), Socket.open(api.server, alice.id, other_token)
    mine.sync(), other.sync()

    alice.call("POST", "/user/logout")
    started = time.monotonic()
    assert mine.recv(timeout=1) == {"type": "session.ended", "reason": "logout"}
    assert mine.closed_with(timeout=1) == 4410
    assert time.monotonic() - started < 1
    assert other.nothing_pending() == []  # another session of the same user stays

    alice.token = other_token
    answer = alice.call(
        "POST",
        "/user/change_password",
        json={"old_password": "secret12", "new_password": "secret34"},
    )
    started = time.monotonic()
    assert other.recv(timeout=1) == {"type": "session.ended", "reason": "password_changed"}
    assert other.closed_with(timeout=1) == 4410
    assert time.monotonic() - started < 1

    alice.token = answer["token"]
    last = alice.socket()
    last.sync()
    alice.call("POST", "/user/cancel_account", json={"password": "secret34"})
    started = time.monotonic()
    assert last.recv(timeout=1) == {"type": "session.ended", "reason": "account_cancelled"}
    assert last.closed_with(timeout=1) == 4410
    assert time.monotonic() - started < 1


def test_the_server_logged_no_traceback(server):
    """Last in the module: all of the above left no stack trace in the server's log."""
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]


# --- Back-pressure, memory, shutdown (servers of their own) ----------------------------------


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def measured(tmp_path_factory, database):
    """One worker process (its RSS is the server's), a small queue; no heartbeat during the
    slow reader's pause (it would end the connection before it reads its close frame)."""
    live = start_server(
        tmp_path_factory, database, workers=1, IM_WS_QUEUE="50", IM_WS_PING_INTERVAL="300"
    )
    yield live
    live.stop()


def test_a_client_that_stops_reading_is_closed_4503_and_memory_stays_flat(measured):
    api = Api(measured)
    alice, reader = api.user(), api.user()
    group_id = alice.group(reader)
    # A queue of one frame on the client side: past it, the client stops reading its socket.
    stalled = connect(
        ws_url(measured, reader.id),
        additional_headers={"Authorization": f"Bearer {reader.token}"},
        max_queue=1,
        max_size=None,
        ping_interval=None,  # its own pings would time out while it is not reading
        legacy=True,
    )
    stalled.send(json.dumps({"type": "sync", "since": {}}))
    text = "é" * 4000  # 8000 bytes in a frame
    count = 2000
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Warm up the server's request threads, caches and allocator first.
        list(pool.map(lambda i: alice.post(group_id, text), range(300)))
        before = rss(measured.process.pid)
        started = time.monotonic()
        list(pool.map(lambda i: alice.post(group_id, text), range(count)))
        took = time.monotonic() - started
    after = rss(measured.process.pid)
    posted = count * len(text.encode())
    print(
        f"\nslow reader: server RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB while "
        f"{posted / 2**20:.1f} MiB of messages were posted to its group ({took:.0f} s)"
    )
    # Unbounded, the stalled socket's queue would have grown by about `posted`.
    assert after - before < posted / 4
    # Reading again, it finds what was sent before the queue filled, then the close.
    codes = Socket(stalled).closed_with(timeout=30)
    assert codes == 4503
    # The server goes on for others.
    assert Socket.open(measured, alice.id, alice.token).nothing_pending() == []


def test_memory_per_idle_socket(measured):
    api = Api(measured)
    users = [api.user() for _ in range(4)]
    sockets = [users[i % 4].socket() for i in range(10)]
    for s in sockets:
        s.sync()
    before = rss(measured.process.pid)
    count = 300
    more = [users[i % 4].socket() for i in range(count)]
    for s in more:
        s.sync()
    after = rss(measured.process.pid)
    per_socket = (after - before) / count
    print(f"\nmemory per idle socket: {per_socket / 1024:.1f} KiB ({count} sockets)")
    assert per_socket < 64 * 1024
    for s in sockets + more:
        s.close()


def test_a_stopping_server_closes_its_sockets_4503_without_a_traceback(tmp_path_factory, database):
    server = start_server(tmp_path_factory, database, workers=1)
    try:
        alice = Api(server).user()
        sockets = [alice.socket() for _ in range(3)]
        sockets[0].sync()
        os.kill(server.process.pid, signal.SIGTERM)
        assert [s.closed_with() for s in sockets] == [4503, 4503, 4503]
        server.process.wait(timeout=15)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log


def test_the_server_publishes_the_socket_contract_beside_the_rest_one(api):
    spec = Path(__file__).resolve().parent.parent / "openapi" / "asyncapi.yaml"
    if not spec.exists():
        pytest.skip("openapi/asyncapi.yaml arrives with the socket contract (socketspec)")
    answer = api.http.get("/asyncapi.yaml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.content == spec.read_bytes()
