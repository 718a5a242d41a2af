"""The bare `websockets` broadcast server: the lowest cost a Python server delivers a frame at.

The second fan-out reference of the bench (`python -m bench --fanout`, `python -m bench
--posts`), beside the bare Starlette app of `bench.fanout_baseline`: no framework, no ASGI,
no database, no authentication. One process on uvloop (when installed, as uvicorn picks it)
with two listening sockets:

- `--ws-port`: the `websockets` package's asyncio server. A socket at
  `/api/ws/user/{id}/` is taken without any check; its `sync` frame joins it to the user's
  groups (from the `--groups` file the bench writes: `{"user id": [group ids]}`) and is
  answered `ready`; `ping` gets `pong`; anything else is ignored.
- `--port`: a hand-written HTTP/1.1 reader on asyncio streams (keep-alive, Content-Length
  bodies; the `websockets` server's own HTTP parser takes only the GET of a handshake).
  `POST /api/groups/{id}/messages` makes a message of the API's shape (id, seq per group,
  the sender, the text and `client_msg_id`, ...), serializes the `message.created` frame
  once and hands that text to `websockets.broadcast` for the group's sockets (a write to
  each transport, no await, no queue per socket), then answers 201 with the message.
  `PATCH /api/groups/{id}/messages/{seq}` does the same with the new text and a
  `message.updated` frame (the fan-out bench's edits). `GET /api/health` answers 200.

So what this server spends per frame is the `websockets` framing and the transport write:
what any Python server pays at least, whatever it does to accept the message.

    python -m bench.bare_websockets --port 8003 --ws-port 8004 --groups groups.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

SOCKET_PATH = re.compile(r"/api/ws/user/(\d+)/?$")
MESSAGES_PATH = re.compile(r"/api/groups/(\d+)/messages(?:/(\d+))?$")
# The API's websocket limits (`IM_WS_MAX_FRAME`, pings): the same protocol work.
MAX_FRAME = 65536
PING = 20.0
SENDER = {"id": 0, "name": "bare", "avatar_url": None}
# Messages kept per group for edits: the fan-out bench edits one of the group's last posts.
KEPT = 256


class Broadcaster:
    """The groups' open sockets and the recent messages of each group (those edits change)."""

    def __init__(self, memberships: dict[int, list[int]]):
        self.memberships = memberships
        self.sockets: dict[int, set[ServerConnection]] = {}
        self.ids = itertools.count(1)
        self.seqs: dict[int, int] = {}
        self.recent: dict[tuple[int, int], dict] = {}  # (group id, seq): the last KEPT

    async def socket(self, connection: ServerConnection) -> None:
        found = SOCKET_PATH.match(connection.request.path.split("?", 1)[0])
        if found is None:
            await connection.close(4404, "No such path")
            return
        groups = self.memberships.get(int(found.group(1)), [])
        joined = False
        try:
            async for text in connection:
                try:
                    kind = json.loads(text).get("type")
                except (ValueError, AttributeError):
                    continue
                if kind == "sync":
                    if not joined:
                        for group_id in groups:
                            self.sockets.setdefault(group_id, set()).add(connection)
                        joined = True
                    seqs = {str(g): self.seqs.get(g, 0) for g in groups}
                    await connection.send(json.dumps({"type": "ready", "groups": seqs}))
                elif kind == "ping":
                    await connection.send('{"type":"pong"}')
        except ConnectionClosed:
            pass
        finally:
            for group_id in groups:
                self.sockets.get(group_id, set()).discard(connection)

    def post(self, group_id: int, body: dict) -> tuple[int, dict]:
        seq = self.seqs[group_id] = self.seqs.get(group_id, 0) + 1
        message = {
            "id": next(self.ids),
            "group_id": group_id,
            "seq": seq,
            "rev": seq,
            "kind": "text",
            "sender": SENDER,
            "text": body.get("text"),
            "client_msg_id": body.get("client_msg_id"),
            "mentions": [],
            "media_id": None,
            "url": None,
            "size": None,
            "content_type": None,
            "filename": None,
            "created_at": _now(),
            "edited_at": None,
            "forwarded": False,
        }
        self.recent[group_id, seq] = message
        self.recent.pop((group_id, seq - KEPT), None)
        self._send(group_id, "message.created", message)
        return 201, {"code": 0, "info": "Succeed", "message": message}

    def edit(self, group_id: int, seq: int, body: dict) -> tuple[int, dict]:
        message = self.recent.get((group_id, seq))
        if message is None:
            return 404, {"code": 5004, "info": "Message not found"}
        message = {**message, "text": body.get("text"), "edited_at": _now()}
        self.recent[group_id, seq] = message
        self._send(group_id, "message.updated", message)
        return 200, {"code": 0, "info": "Succeed", "message": message}

    def _send(self, group_id: int, kind: str, message: dict) -> None:
        # Serialized once, written to every socket of the group without awaiting any.
        text = json.dumps({"type": kind, "message": message}, separators=(",", ":"))
        broadcast(self.sockets.get(group_id, ()), text)

    def answer(self, method: bytes, target: str, body: bytes) -> tuple[int, dict]:
        path = target.split("?", 1)[0]
        if path == "/api/health":
            return 200, {"code": 0, "info": "Succeed"}
        found = MESSAGES_PATH.match(path)
        if found is None:
            return 404, {"code": 1, "info": "Not found"}
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, {"code": 1001, "info": "Not JSON"}
        group_id = int(found.group(1))
        if method == b"POST" and found.group(2) is None:
            return self.post(group_id, payload)
        if method == b"PATCH" and found.group(2) is not None:
            return self.edit(group_id, int(found.group(2)), payload)
        return 405, {"code": 1, "info": "Method not allowed"}

    async def http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive HTTP/1.1 connection: requests with Content-Length bodies."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, headers = head.partition(b"\r\n")
                method, target, _ = request_line.split(b" ", 2)
                length = 0
                for line in headers.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                status, answer = self.answer(method, target.decode("latin-1"), body)
                data = json.dumps(answer, separators=(",", ":")).encode()
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (status, _REASONS.get(status, b"Error"),
                                                       len(data), data)
                )  # fmt: skip
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


_REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request", 404: b"Not Found"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_groups(path: Path | None) -> dict[int, list[int]]:
    if path is None:
        return {}
    return {int(user): groups for user, groups in json.loads(path.read_text()).items()}


async def serve_forever(host: str, port: int, ws_port: int, memberships: dict) -> None:
    hub = Broadcaster(memberships)
    http = await asyncio.start_server(hub.http, host, port)
    async with serve(
        hub.socket, host, ws_port,
        compression=None,  # as `im-api serve`: permessage-deflate declined
        max_size=MAX_FRAME, ping_interval=PING, ping_timeout=PING,
        max_queue=None,  # frames from a client are few; never stop reading them
    ), http:  # fmt: skip
        await asyncio.Future()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The bare websockets broadcast server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003, help="the HTTP side (posts, health)")
    parser.add_argument("--ws-port", type=int, default=8004, help="the websocket side")
    parser.add_argument("--groups", type=Path, help='JSON {"user id": [group ids]}')
    # As the other servers the bench starts take them; one process only.
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.workers != 1:
        print("the bare websockets server is one process (its sockets live in it)", file=sys.stderr)
        return 2
    memberships = read_groups(args.groups)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_forever(args.host, args.port, args.ws_port, memberships))
    else:
        uvloop.run(serve_forever(args.host, args.port, args.ws_port, memberships))
    return 0


if __name__ == "__main__":
    sys.exit(main())
