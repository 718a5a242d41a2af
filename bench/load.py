"""The load generator: a separate process that drives one server with a fixed concurrent load.

It reads one task per line on stdin (JSON: operation, server address, connections, duration,
request cap, parameters) and answers one result per line on stdout (counts, errors, elapsed
time and every successful request's latency). Each connection is a keep-alive HTTP/1.1
client written on asyncio streams with the requests built as bytes up front, so the client
costs tens of microseconds per request and the server under test gets the CPU.

Run by `bench.run`; not meant to be started by hand.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass

CHUNK = 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | tuple[bytes, ...] = b""
    expect: tuple[int, ...] = (200,)
    # True: declare the body's length but send none (a too-large upload the server refuses).
    headers_only: bool = False


def json_request(method: str, path: str, token: str | None, payload=None, expect=(200,)):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = b""
    if payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    return Request(method, path, headers, body, expect)


def multipart(part: str, filename: str, content: tuple[bytes, ...]) -> tuple[str, tuple]:
    boundary = "benchboundary" + os.urandom(8).hex()
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{part}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", (head, *content, tail)


class Operation:
    """Builds the request of connection `conn`'s `seq`-th call from the task's parameters."""

    def __init__(self, params: dict):
        self.params = params

    def build(self, conn: int, seq: int) -> Request:
        raise NotImplementedError


class Me(Operation):
    def build(self, conn, seq):
        tokens = self.params["tokens"]
        return json_request("GET", "/api/user/me", tokens[conn % len(tokens)])


class ChangeName(Operation):
    def build(self, conn, seq):
        index = conn % len(self.params["tokens"])
        # Each connection renames its own user between two names, so every call does the
        # whole work (uniqueness check, update, commit) and no two connections collide.
        new_name = f"{self.params['names'][index]}{'ab'[seq % 2]}"
        return json_request(
            "POST", "/api/user/change_name", self.params["tokens"][index], {"new_name": new_name}
        )


class Login(Operation):
    def build(self, conn, seq):
        names = self.params["login_names"]
        payload = {"name": names[(conn + seq) % len(names)], "password": self.params["password"]}
        return json_request("POST", "/api/user/login", None, payload)


class Register(Operation):
    counter = itertools.count()

    def build(self, conn, seq):
        # A prefix unique per task and a counter: names never repeat within a run.
        name = f"{self.params['prefix']}{_base36(next(self.counter))}"
        payload = {"name": name, "password": self.params["password"]}
        return json_request("POST", "/api/user/register", None, payload)


class ListMessages(Operation):
    def build(self, conn, seq):
        tokens = self.params["tokens"]
        path = f"/api/groups/{self.params['group_id']}/messages"
        return json_request("GET", path, tokens[conn % len(tokens)])


class ListConversations(Operation):
    def build(self, conn, seq):
        return json_request("GET", "/api/groups?limit=50", self.params["tokens"][0])


class Upload(Operation):
    """A file of `size` bytes into the group; the first bytes change so no two are alike."""

    def __init__(self, params):
        super().__init__(params)
        self.content = memoryview(os.urandom(params["size"]))
        self.nonce = os.urandom(4).hex()

    def build(self, conn, seq):
        unique = f"{self.nonce}{conn:04x}{seq:08x}".encode()[:16]
        content_type, body = multipart("file", "bench.bin", (unique, self.content[len(unique) :]))
        headers = {
            "Authorization": f"Bearer {self.params['tokens'][0]}",
            "Content-Type": content_type,
        }
        path = f"/api/groups/{self.params['group_id']}/upload_file"
        return Request("POST", path, headers, body, expect=(200, 201))


class TooLarge(Operation):
    """Declares a body over the limit and sends none: the server must refuse it at once."""

    def build(self, conn, seq):
        content_type, _ = multipart("file", "big.bin", ())
        headers = {
            "Authorization": f"Bearer {self.params['tokens'][0]}",
            "Content-Type": content_type,
            "Content-Length": str(self.params["size"]),
        }
        path = f"/api/groups/{self.params['group_id']}/upload_file"
        return Request("POST", path, headers, b"", expect=(413,), headers_only=True)


OPERATIONS = {
    "me": Me,
    "change_name": ChangeName,
    "login": Login,
    "register": Register,
    "list_messages": ListMessages,
    "list_conversations": ListConversations,
    "upload_1mb": Upload,
    "upload_max": Upload,
    "upload_too_large": TooLarge,
}


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


class ProtocolError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        parts = request.body if isinstance(request.body, tuple) else (request.body,)
        length = sum(len(part) for part in parts)
        headers = {"Host": f"{self.host}:{self.port}", "Content-Length": str(length)}
        headers.update(request.headers)
        head = f"{request.method} {request.path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        self.writer.write(head.encode() + b"\r\n")
        if not request.headers_only:
            for part in parts:
                for start in range(0, len(part), CHUNK):
                    self.writer.write(part[start : start + CHUNK])
                    await self.writer.drain()
        await self.writer.drain()
        status, body, close = await self._response()
        if close or request.headers_only:
            self.close()
        return status, body

    async def _response(self) -> tuple[int, bytes, bool]:
        line = await self.reader.readline()
        if not line:
            raise ProtocolError("connection closed by the server")
        status = int(line.split(b" ", 2)[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            return status, bytes(body), close
        if length is None:
            return status, await self.reader.read(), True
        return status, await self.reader.readexactly(length), close

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_task(task: dict) -> dict:
    """Keep `connections` requests in flight until `duration` or `max_requests` is reached."""
    operation = OPERATIONS[task["operation"]](task["params"])
    host, port = task["host"], task["port"]
    deadline_after = task["duration"]
    max_requests = task["max_requests"]
    timeout = task["timeout"]
    latencies: list[float] = []
    errors: Counter = Counter()
    samples: dict[str, str] = {}
    issued = 0
    started = time.perf_counter()
    deadline = started + deadline_after

    async def connection_loop(conn: int) -> None:
        nonlocal issued
        client = Connection(host, port)
        seq = 0
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            request = operation.build(conn, seq)
            seq += 1
            begun = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(client.send(request), timeout)
            except (
                OSError,
                asyncio.TimeoutError,
                asyncio.IncompleteReadError,
                ProtocolError,
                ValueError,
                IndexError,
            ) as error:
                client.close()
                kind = type(error).__name__
                errors[kind] += 1
                samples.setdefault(kind, str(error)[:200])
                await asyncio.sleep(0.05)  # a server that refuses connections is not hammered
                continue
            if status in request.expect:
                latencies.append(time.perf_counter() - begun)
            else:
                kind = f"HTTP {status}"
                errors[kind] += 1
                samples.setdefault(kind, body[:200].decode("utf-8", "replace"))
        client.close()

    await asyncio.gather(*(connection_loop(conn) for conn in range(task["connections"])))
    return {
        "count": len(latencies),
        "errors": dict(errors),
        "error_samples": samples,
        "elapsed": time.perf_counter() - started,
        "latencies": latencies,
    }


def main() -> int:
    try:
        import uvloop  # keeps the client's own overhead small

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    for line in sys.stdin:
        if not line.strip():
            continue
        result = run(run_task(json.loads(line)))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
