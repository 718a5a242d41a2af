"""The socket side of the conformance suite: the contract in `openapi/asyncapi.yaml`, a server
to talk to, and a websocket client that checks every frame it receives against the contract.

The server is the one `IM_CONFORMANCE_URL` names (as for the rest of the suite), reached at the
`ws_url` register answers, resolved against that base URL (`ws://` for `http://`, `wss://`
for `https://`). Without `IM_CONFORMANCE_URL` the socket scenarios cannot use the in-process
app (a websocket client needs a listening socket), so they start one real `im-api serve` of
their own for the run (SQLite in a temporary folder, or `IM_TEST_DATABASE_URL`), with the
same settings `run_live.sh` gives its server, and send their REST requests to it too.

The scenarios assume the server's socket settings are the documented defaults
(`IM_WS_AUTH_TIMEOUT` 5 s, `IM_WS_MAX_FRAME` 65536 bytes, `IM_WS_FRAME_RATE` 20/s burst 40,
`IM_WS_QUEUE` 1000 frames, `IM_WS_MAX_SOCKETS_PER_USER` 20).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft7Validator
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from conformance import target as targets
from conformance.target import Target, Users

ASYNCAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "asyncapi.yaml"
OPENAPI_FORMATS = {
    f"application/vnd.oai.openapi{suffix};version=3.0.0" for suffix in ("", "+json", "+yaml")
}

# The documented defaults of the server's socket settings (see the module's docstring).
AUTH_TIMEOUT = 5.0
MAX_FRAME = 65536
FRAME_BURST = 40
QUEUE = 1000
SOCKETS_PER_USER = 20

# How long a frame the scenario waits for may take to arrive.
WAIT = float(os.environ.get("IM_CONFORMANCE_TIMEOUT", "30"))
# How long a frame that must not arrive is waited for: long enough for a frame sent at the
# same time as one that did arrive to have arrived too.
QUIET = 1.0


# The contract ------------------------------------------------------------------------------


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.cache
def _document(path: Path) -> dict:
    return _load(path)


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def resolved(node: Any, path: Path = ASYNCAPI_PATH, _seen: tuple = ()) -> Any:
    """`node` (from the document at `path`) with every `$ref` replaced by what it names.

    References into other files (`./openapi.yaml#/components/schemas/Message`) are read
    relative to the file that holds them, and references inside that file relative to it, so
    the schema that comes out stands alone.
    """
    if isinstance(node, list):
        return [resolved(item, path, _seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        location, _, pointer = node["$ref"].partition("#")
        where = (path.parent / location).resolve() if location else path
        key = (str(where), pointer)
        if key in _seen:
            raise ValueError(f"circular $ref {node['$ref']} in {path}")
        return resolved(_pointer(_document(where), pointer), where, (*_seen, key))
    return {key: resolved(value, path, _seen) for key, value in node.items()}


def reached_compositions(
    node: Any, path: Path = ASYNCAPI_PATH, pointer: str = "", _seen: tuple = ()
) -> list[str]:
    """Where (`file#pointer`) each `allOf`/`anyOf`/`oneOf` list reached from `node` lies,
    once per path that reaches it, following `$ref`s into other files."""
    if isinstance(node, list):
        return [
            where
            for index, item in enumerate(node)
            for where in reached_compositions(item, path, f"{pointer}/{index}", _seen)
        ]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        location, _, target = node["$ref"].partition("#")
        where = (path.parent / location).resolve() if location else path
        key = (str(where), target)
        if key in _seen:
            raise ValueError(f"circular $ref {node['$ref']} in {path}")
        return reached_compositions(
            _pointer(_document(where), target), where, target, (*_seen, key)
        )
    found = [
        f"{path.name}#{pointer}/{key}"
        for key in ("allOf", "anyOf", "oneOf")
        if isinstance(node.get(key), list)
    ]
    for key, value in node.items():
        if key not in ("example", "examples"):
            found += reached_compositions(value, path, f"{pointer}/{key}", _seen)
    return found


@dataclass
class Frame:
    """One message of the contract: its `type` and payload schema (references resolved)."""

    type: str
    name: str  # the message's key in components.messages
    schema: dict
    openapi: bool  # the schema is in OpenAPI 3.0's dialect (nullable), not JSON Schema's

    def errors(self, frame: Any) -> list[str]:
        if self.openapi:
            validator = OAS30Validator(self.schema, format_checker=oas30_format_checker)
        else:
            validator = Draft7Validator(self.schema, format_checker=Draft7Validator.FORMAT_CHECKER)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(frame)'}: {error.message}"
            for error in validator.iter_errors(frame)
        ]


@dataclass
class Contract:
    """What `asyncapi.yaml` says of the socket."""

    server_frames: dict[str, Frame]  # by `type`: the frames the server sends
    client_frames: dict[str, Frame]  # by `type`: the frames the client sends
    close_codes: dict[int, str] = field(default_factory=dict)  # code -> name

    def check(self, frame: Any) -> None:
        """Fails unless `frame` is one the server may send, valid against its payload."""
        assert isinstance(frame, dict), f"not a JSON object: {frame!r}"
        kind = frame.get("type")
        assert kind in self.server_frames, f"no server frame of type {kind!r}: {frame!r}"
        errors = self.server_frames[kind].errors(frame)
        assert not errors, f"{kind} frame against asyncapi.yaml: {errors}: {frame!r}"


def _frame_type(schema: dict) -> str:
    declared = schema["properties"]["type"]
    return declared["const"] if "const" in declared else declared["enum"][0]


@functools.cache
def contract() -> Contract:
    """The socket's contract, read from `openapi/asyncapi.yaml` once per run.

    Which frames go which way is read from the operations: the messages of a `send`
    operation or of any operation's reply go from the server to the client (the document
    describes the server), those of a `receive` operation from the client to the server.
    """
    document = _load(ASYNCAPI_PATH)
    channel_messages = {}
    for channel_name, channel in document["channels"].items():
        for key, message in channel["messages"].items():
            channel_messages[f"#/channels/{channel_name}/messages/{key}"] = message

    def frame(reference: dict) -> Frame:
        message = resolved(channel_messages[reference["$ref"]])
        payload = message["payload"]
        if "schema" in payload:
            openapi = payload.get("schemaFormat") in OPENAPI_FORMATS
            schema = payload["schema"]
        else:
            openapi, schema = False, payload
        name = reference["$ref"].rsplit("/", 1)[1]
        return Frame(_frame_type(schema), name, schema, openapi)

    server, client = {}, {}
    for operation in document["operations"].values():
        into = server if operation["action"] == "send" else client
        for reference in operation["messages"]:
            made = frame(reference)
            into[made.type] = made
        for reference in operation.get("reply", {}).get("messages", []):
            made = frame(reference)
            server[made.type] = made
    codes = {
        entry["code"]: entry["name"]
        for channel in document["channels"].values()
        for entry in channel.get("x-close-codes", [])
    }
    return Contract(server, client, codes)


# The server --------------------------------------------------------------------------------


@dataclass
class Server:
    """The server the socket scenarios talk to: REST at `base_url`, sockets at its `ws_url`s."""

    base_url: str  # up to and including /api
    secret_keys: list[str]

    def target(self) -> Target:
        return Target(self.base_url, secret_keys=self.secret_keys)

    def client(self) -> httpx.Client:
        return self.target().client()

    def ws_url(self, ws_url: str) -> str:
        """A `ws_url` of register or login, resolved against the API's base as documented
        (an absolute one, from a server with a public base URL, as it is)."""
        url = urllib.parse.urljoin(self.base_url + "/", ws_url)
        scheme, rest = url.split(":", 1)
        return {"http": "ws", "https": "wss"}.get(scheme, scheme) + ":" + rest

    def user_socket_url(self, user_id: int, query: str = "") -> str:
        return self.ws_url(f"ws/user/{user_id}/") + (f"?{query}" if query else "")


@functools.cache
def server() -> Server:
    """The server of the run: `IM_CONFORMANCE_URL`'s, or one started for the run."""
    live = targets.current()
    if live.is_live:
        return Server(live.base_url, live.secret_keys)
    return _start_own_server()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_own_server() -> Server:
    folder = Path(tempfile.mkdtemp(prefix="im-conformance-socket-"))
    port = _free_port()
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "IM_INSTANCE_DIR": str(folder / "instance"),
        "IM_DATABASE_URL": os.environ.get("IM_TEST_DATABASE_URL", ""),
        "IM_SECRET_KEYS": secret,
        "IM_BCRYPT_ROUNDS": "4",
        # The suite names a client address of its own per request (X-Forwarded-For).
        "IM_TRUSTED_PROXIES": "127.0.0.1",
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "im_api.cli", "serve", "--port", str(port), "--workers", "1"]
        + ["--log-level", "warning"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    base_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            log.flush()
            raise RuntimeError(
                "im-api serve exited: " + (folder / "server.log").read_text(errors="replace")
            )
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer from {base_url}/health")
        time.sleep(0.2)
    return Server(base_url, [secret])


# The client --------------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the socket; `code` is its close code (1006 when none was received)."""

    def __init__(self, code: int, reason: str = ""):
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


class Socket:
    """A websocket to the server that checks every frame it receives against the contract."""

    def __init__(self, connection: ClientConnection):
        self.connection = connection
        self.received: list[dict] = []  # every frame received, in order

    def send(self, frame: Any) -> None:
        """Sends a dict as a JSON text frame, a str as a text frame, bytes as a binary one."""
        if isinstance(frame, dict | list) or frame is None or isinstance(frame, int | float):
            frame = json.dumps(frame)
        self.connection.send(frame)

    def recv(self, timeout: float = WAIT) -> dict:
        """The next frame, checked against `asyncapi.yaml`; `Closed` if the server closed."""
        try:
            data = self.connection.recv(timeout=timeout)
        except ConnectionClosed as closed:
            raise _closed(closed) from None
        assert isinstance(data, str), f"a binary frame from the server: {data[:100]!r}"
        frame = json.loads(data)
        contract().check(frame)
        self.received.append(frame)
        return frame

    def expect(self, kind: str, timeout: float = WAIT) -> dict:
        """The next frame, which must be of type `kind`."""
        frame = self.recv(timeout)
        assert frame["type"] == kind, f"expected a {kind} frame, got {frame!r}"
        return frame

    def nothing_for(self, seconds: float = QUIET) -> None:
        """Fails if a frame arrives (or the socket closes) within `seconds`."""
        try:
            frame = self.recv(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"an unexpected frame: {frame!r}")

    def closed_with(self, timeout: float = WAIT) -> int:
        """Reads (and checks) frames until the server closes; returns the close code."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"still open after {timeout} s")
            try:
                self.recv(timeout=left)
            except Closed as closed:
                return closed.code
            except TimeoutError:
                continue

    def sync(
        self,
        since: dict[int, int] | None = None,
        notices: int | None = None,
        revs: dict[int, int] | None = None,
        states: dict[int, int] | None = None,
    ) -> tuple[list[dict], dict]:
        """Sends `sync` (with `notices`, `revs` and `states` when given); the frames replayed
        before `ready`, and `ready`."""
        frame = {"type": "sync", "since": {str(g): s for g, s in (since or {}).items()}}
        if notices is not None:
            frame["notices"] = notices
        if revs is not None:
            frame["revs"] = {str(g): r for g, r in revs.items()}
        if states is not None:
            frame["states"] = {str(g): v for g, v in states.items()}
        self.send(frame)
        replayed = []
        while True:
            frame = self.recv()
            if frame["type"] == "ready":
                return replayed, frame
            replayed.append(frame)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _closed(closed: ConnectionClosed) -> Closed:
    if closed.rcvd is None:
        return Closed(1006)
    return Closed(closed.rcvd.code, closed.rcvd.reason)


def open_socket(
    url: str,
    token: str | None = None,
    *,
    receive_buffer: int | None = None,
    max_queue: int | None = 16,
    address: str | None = None,
) -> Socket:
    """A socket on `url`, with `Authorization: Bearer <token>` on the upgrade when given.

    `receive_buffer` shrinks the kernel's receive buffer (SO_RCVBUF) before connecting, for a
    client that stops reading to push back on the server at once rather than after megabytes.
    The upgrade comes from `address`, or from an address of its own (`X-Forwarded-For`, as
    the suite's REST requests: `target.client_address`), so the server's limit of sockets
    per client address counts one scenario's sockets only.
    """
    headers = {"X-Forwarded-For": address or targets.client_address()}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    sock = None
    if receive_buffer is not None:
        parts = urllib.parse.urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(WAIT)
        sock.connect((parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)))
        sock.settimeout(None)
    try:
        connection = connect(
            url,
            sock=sock,
            additional_headers=headers,
            open_timeout=WAIT,
            close_timeout=5,
            # The server's frames are small; a larger limit would hide nothing.
            max_size=2**20,
            max_queue=max_queue,
            # The suite checks the server's behaviour, not a compression extension.
            compression=None,
        )
    except InvalidHandshake as refused:
        raise AssertionError(
            f"upgrade to {url} refused ({refused}); the server must accept it and close "
            "with a documented code"
        ) from None
    # The connection lives longer than a `with` block here (`Socket.close` ends it);
    # entering it by hand is what websockets (17.1+) asks of such connections.
    return Socket(connection.__enter__())


# Accounts and groups -----------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class World:
    """The scenario's accounts, groups and sockets on `server()`, through its REST API."""

    def __init__(self, srv: Server, api: httpx.Client):
        self.server = srv
        self.api = api
        self.users = Users(api)
        self.sockets: list[Socket] = []

    def account(self) -> dict:
        """A new account: register's body plus `name` and `password`."""
        return self.users.register()

    def socket(self, account: dict, *, by: str = "header", **options) -> Socket:
        """An authenticated socket of `account`, by the header or by the `auth` frame."""
        url = self.server.ws_url(account["ws_url"])
        if by == "header":
            made = open_socket(url, account["token"], **options)
        else:
            made = open_socket(url, **options)
            made.send({"type": "auth", "token": account["token"]})
        self.sockets.append(made)
        return made

    def live_socket(
        self,
        account: dict,
        since: dict[int, int] | None = None,
        notices: int | None = None,
        states: dict[int, int] | None = None,
        **options,
    ) -> Socket:
        """An authenticated socket past `sync` and `ready`: live events come next (notices
        too when `notices` is given, group states when `states` is)."""
        made = self.socket(account, **options)
        made.sync(since, notices, states=states)
        return made

    def group(self, owner: dict, *members: dict) -> int:
        created = self.api.post(
            "/groups", json={"name": "socket test"}, headers=bearer(owner["token"])
        )
        assert created.status_code == 201, created.text
        group_id = created.json()["group"]["id"]
        for member in members:
            self.add(group_id, owner, member)
        return group_id

    def add(self, group_id: int, by: dict, member: dict) -> None:
        added = self.api.post(
            f"/groups/{group_id}/members",
            json={"name": member["name"]},
            headers=bearer(by["token"]),
        )
        assert added.status_code == 200, added.text

    def remove(self, group_id: int, by: dict, member: dict) -> None:
        removed = self.api.delete(
            f"/groups/{group_id}/members/{member['user']['id']}", headers=bearer(by["token"])
        )
        assert removed.status_code == 200, removed.text

    def post(
        self, group_id: int, sender: dict, text: str, client_msg_id: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"text": text}
        if client_msg_id is not None:
            body["client_msg_id"] = client_msg_id
        return self.api.post(
            f"/groups/{group_id}/messages", json=body, headers=bearer(sender["token"])
        )

    def say(self, group_id: int, sender: dict, text: str, **options) -> dict:
        """Posts a text message; the `Message` made."""
        response = self.post(group_id, sender, text, **options)
        assert response.status_code == 201, response.text
        return response.json()["message"]

    def close(self) -> None:
        for made in self.sockets:
            made.close()


def worlds():
    """A pytest fixture's body: a `World` on the run's server, its sockets closed after."""
    srv = server()
    with srv.client() as api:
        made = World(srv, api)
        try:
            yield made
        finally:
            made.close()
