"""The fan-out load: a separate process that holds the sockets and posts the messages.

One JSON task per line on stdin, one JSON answer per line on stdout (`bench.fanout` drives
it; not meant to be started by hand):

- `{"command": "open", "server": NAME, "port": P, "users": [[user_id, token], ...]}`:
  opens one socket per user at /api/ws/user/{id}/ (the token on the upgrade), sends
  `{"type": "sync", "since": {}, "revs": {}}` (or the task's `sync` text: an older
  revision of the API refuses a field it does not know) and waits for `ready`; keeps them
  open.
- `{"command": "round", "server": NAME, "port": P, "rate": R, "duration": D, "drain": S,
  "edits": F, "posts": [[group_id, token, recipients], ...]}`: posts text messages over
  REST at a fixed rate R (open loop: the k-th at start + k/R, whatever the answers), cycling
  over the groups, for D seconds, a fraction F of the requests being edits of the group's
  last message of the round instead (PATCH; its frame is `message.updated`); then waits up
  to S seconds for the frames still due. Each message
  carries a `client_msg_id` naming the round and its number; a socket finds it in the
  frame's text with a regular expression (no JSON parsing per frame), so the latency is the
  frame's arrival minus the post's scheduled time (queuing in the client or the server
  counts: no coordinated omission).
- `{"command": "closed", "server": NAME, "port": P, "duration": D, "drain": S,
  "clients": [["post", token, group_id, recipients] or ["rename", token, name stem], ...]}`:
  closed loop (`bench.posts`): one keep-alive connection per client, each sending its next
  request when the answer to the last came, for D seconds; a post is a text message (its
  `client_msg_id` tagged as above, its frames counted from the request's sending), a
  rename a `change_name` between the stem + "a" and + "b". Then up to S seconds for the
  frames still due.
- `{"command": "close", "server": NAME}`: closes that server's sockets.

Written on asyncio with uvloop when present; the websocket client is the `websockets`
package (uvicorn's own websocket dependency), without compression unless asked, without
client pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import time
from collections import Counter

import websockets
from websockets.asyncio.client import connect

SYNC = '{"type":"sync","since":{},"revs":{}}'  # `revs`: the API sends edits (message.updated)
# A posted message carries its tag as its client_msg_id; an edit, in its new text (the
# edited message keeps the client_msg_id of its post, so the text is looked at first).
EDITED = re.compile(r'"text":\s*"edit fo(\d+)-(\d+)"')
MESSAGE = re.compile(r'"client_msg_id":\s*"fo(\d+)-(\d+)"')


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
    token: str, body: str,
) -> tuple[int, bytes]:  # fmt: skip
    """One JSON request on a keep-alive connection: its status and body."""
    writer.write(
        (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


class Round:
    def __init__(self, number: int, server: str, expected_total: int):
        self.number = str(number)
        self.server = server
        self.scheduled: dict[int, float] = {}
        self.latencies: list[float] = []
        self.expected_total = expected_total  # known once every post is answered
        self.last_frame = 0.0
        self.done = asyncio.Event()

    def received(self, index: int, now: float) -> None:
        started = self.scheduled.get(index)
        if started is None:
            return
        self.latencies.append(now - started)
        self.last_frame = now
        if len(self.latencies) >= self.expected_total:
            self.done.set()


class Load:
    def __init__(self):
        self.sockets: dict[str, list] = {}
        self.readers: dict[str, list[asyncio.Task]] = {}
        self.closes: Counter = Counter()
        self.round: Round | None = None
        self.round_number = 0

    async def read(self, server: str, socket) -> None:
        try:
            async for text in socket:
                current = self.round
                if current is None or current.server != server or not isinstance(text, str):
                    continue
                found = EDITED.search(text) or MESSAGE.search(text)
                if found and found.group(1) == current.number:
                    current.received(int(found.group(2)), time.perf_counter())
        except websockets.ConnectionClosed:
            pass
        finally:
            code = socket.close_code
            self.closes[str(code)] += 1

    async def open_one(self, port: int, user_id: int, token: str, compress: bool, sync: str):
        socket = await connect(
            f"ws://127.0.0.1:{port}/api/ws/user/{user_id}/",
            additional_headers={"Authorization": f"Bearer {token}"},
            compression="deflate" if compress else None,
            ping_interval=None,
            max_queue=None,
            open_timeout=60,
        )
        await socket.send(sync)
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 60))
            if frame.get("type") == "ready":
                return socket

    async def open(self, task: dict) -> dict:
        started = time.perf_counter()
        limit = asyncio.Semaphore(32)  # at most this many handshakes at once
        errors: Counter = Counter()

        async def one(user_id, token):
            async with limit:
                try:
                    return await self.open_one(
                        task["port"], user_id, token, task["compress"], task.get("sync", SYNC)
                    )
                except Exception as error:
                    errors[f"{type(error).__name__}: {str(error)[:120]}"] += 1
                    return None

        opened = await asyncio.gather(*(one(u, t) for u, t in task["users"]))
        sockets = [s for s in opened if s is not None]
        self.sockets.setdefault(task["server"], []).extend(sockets)
        readers = [asyncio.create_task(self.read(task["server"], s)) for s in sockets]
        self.readers.setdefault(task["server"], []).extend(readers)
        return {
            "opened": len(sockets),
            "errors": dict(errors.most_common(5)),
            "elapsed": time.perf_counter() - started,
        }

    async def close(self, task: dict) -> dict:
        sockets = self.sockets.pop(task["server"], [])
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
        for reader in self.readers.pop(task["server"], []):
            reader.cancel()
        return {"closed": len(sockets)}

    async def post_loop(self, task: dict, current: Round) -> dict:
        """Posts at the fixed rate over a few keep-alive connections."""
        port, rate, duration = task["port"], task["rate"], task["duration"]
        posts = task["posts"]
        pool: asyncio.Queue = asyncio.Queue()
        for _ in range(task.get("connections", 8)):
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        statuses: Counter = Counter()
        samples: dict[str, str] = {}
        answered: list[float] = []
        expected = 0
        running: list[asyncio.Task] = []
        # Every k-th request edits the group's last message posted in this round instead.
        edits = task.get("edits", 0.0)
        every = round(1 / edits) if edits > 0 else 0
        last_seq: dict[int, int] = {}  # group id -> the seq its last post answered

        async def post(index: int, group_id: int, token: str, recipients: int) -> None:
            nonlocal expected
            tag = f"fo{current.number}-{index}"
            seq = last_seq.get(group_id) if every and index % every == every - 1 else None
            if seq is None:
                method, path = "POST", f"/api/groups/{group_id}/messages"
                body = json.dumps({"text": f"fan-out {index}", "client_msg_id": tag})
            else:
                method, path = "PATCH", f"/api/groups/{group_id}/messages/{seq}"
                body = json.dumps({"text": f"edit {tag}"})
            reader, writer = await pool.get()
            try:
                status, answer = await exchange(reader, writer, method, path, token, body)
                statuses[status] += 1
                answered.append(time.perf_counter() - current.scheduled[index])
                if status == 201 or (method == "PATCH" and status == 200):
                    expected += recipients
                    if method == "POST":
                        last_seq[group_id] = json.loads(answer)["message"]["seq"]
                else:
                    samples.setdefault(str(status), answer[:300].decode(errors="replace"))
            except Exception as error:  # the connection is lost: a new one for the pool
                statuses[type(error).__name__] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            finally:
                pool.put_nowait((reader, writer))

        started = time.perf_counter()
        index = 0
        while True:
            due = started + index / rate
            if due >= started + duration:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            group_id, token, recipients = posts[index % len(posts)]
            current.scheduled[index] = due
            running.append(asyncio.create_task(post(index, group_id, token, recipients)))
            index += 1
        await asyncio.gather(*running)
        while not pool.empty():
            _, writer = pool.get_nowait()
            writer.close()
        return {
            "posted": index,
            "statuses": {str(k): v for k, v in statuses.items()},
            "error_samples": samples,
            "expected": expected,
            "started": started,
            "post_latencies": answered,
        }

    async def run_closed(self, task: dict) -> dict:
        """Closed loop: each client sends its next request when its answer came."""
        self.round_number += 1
        current = Round(self.round_number, task["server"], expected_total=1 << 62)
        self.round = current
        closes_before = sum(self.closes.values())
        port, duration = task["port"], task["duration"]
        numbers = itertools.count()
        statuses: Counter = Counter()
        samples: dict[str, str] = {}
        answered: list[float] = []
        done = 0  # requests answered as expected: 201 for a post, 200 for a rename
        expected = 0  # frames due
        started = time.perf_counter()
        deadline = started + duration

        async def client(spec: list) -> None:
            nonlocal done, expected
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            turn = 0
            try:
                while time.perf_counter() < deadline:
                    index = next(numbers)
                    if spec[0] == "post":
                        _, token, group_id, recipients = spec
                        method, path, wanted = "POST", f"/api/groups/{group_id}/messages", 201
                        tag = f"fo{current.number}-{index}"
                        body = json.dumps({"text": f"post {index}", "client_msg_id": tag})
                    else:
                        _, token, stem = spec
                        method, path, wanted, recipients = "POST", "/api/user/change_name", 200, 0
                        body = json.dumps({"new_name": f"{stem}{'ab'[turn % 2]}"})
                    turn += 1
                    sent = current.scheduled[index] = time.perf_counter()
                    try:
                        status, answer = await exchange(reader, writer, method, path, token, body)
                    except Exception as error:  # the connection is lost: a new one
                        statuses[type(error).__name__] += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        continue
                    statuses[status] += 1
                    if status == wanted:
                        done += 1
                        expected += recipients
                        answered.append(time.perf_counter() - sent)
                    else:
                        samples.setdefault(str(status), answer[:300].decode(errors="replace"))
            finally:
                writer.close()

        await asyncio.gather(*(client(spec) for spec in task["clients"]))
        ended = time.perf_counter()
        current.expected_total = expected
        if len(current.latencies) >= expected:
            current.done.set()
        with contextlib.suppress(asyncio.TimeoutError):  # frames lost or late: counted
            await asyncio.wait_for(current.done.wait(), task["drain"])
        self.round = None
        return {
            "done": done,
            "statuses": {str(k): v for k, v in statuses.items()},
            "error_samples": samples,
            "elapsed": ended - started,
            "expected": expected,
            "received": len(current.latencies),
            "latencies": [round(value, 5) for value in current.latencies],
            "request_latencies": [round(value, 5) for value in answered],
            "sockets_closed": sum(self.closes.values()) - closes_before,
        }

    async def run_round(self, task: dict) -> dict:
        self.round_number += 1
        current = Round(self.round_number, task["server"], expected_total=1 << 62)
        self.round = current
        closes_before = sum(self.closes.values())
        posting = await self.post_loop(task, current)
        current.expected_total = posting["expected"]
        if len(current.latencies) >= current.expected_total:
            current.done.set()
        with contextlib.suppress(asyncio.TimeoutError):  # frames lost or late: counted
            await asyncio.wait_for(current.done.wait(), task["drain"])
        self.round = None
        end = current.last_frame or time.perf_counter()
        return {
            "posted": posting["posted"],
            "statuses": posting["statuses"],
            "error_samples": posting["error_samples"],
            "expected": posting["expected"],
            "received": len(current.latencies),
            "elapsed": max(end - posting["started"], 1e-9),
            "latencies": [round(value, 5) for value in current.latencies],
            "post_latencies": [round(value, 5) for value in posting["post_latencies"]],
            "sockets_closed": sum(self.closes.values()) - closes_before,
            "close_codes": dict(self.closes),
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            task = json.loads(line)
            command = task["command"]
            if command == "open":
                answer = await self.open(task)
            elif command == "round":
                answer = await self.run_round(task)
            elif command == "closed":
                answer = await self.run_closed(task)
            elif command == "close":
                answer = await self.close(task)
            else:
                answer = {"error": f"unknown command {command}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(Load().serve())
    else:
        uvloop.run(Load().serve())


if __name__ == "__main__":
    main()
