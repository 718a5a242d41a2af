"""HTTP/1.1 over a raw socket, for what a client library will not do: send the headers of an
upload and stop, stop reading a download, or leave in the middle of a body."""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import httpx

BOUNDARY = b"raw-boundary-5e1f"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY.decode()}"


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering

    def json(self) -> dict:
        return json.loads(self.body)


def connect(port: int, *, receive_buffer: int | None = None, timeout: float = 10) -> socket.socket:
    """A connection to the server; a small `receive_buffer` makes a client that reads slowly."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:  # before connecting, so the window announced is small from the start
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return raw


def upload_head(path: str, token: str | None, length: int) -> bytes:
    """The request line and headers of a multipart upload of `length` bytes, and no body."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {CONTENT_TYPE}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def part_head(part: str, filename: str = "f.bin") -> bytes:
    """The opening of the one file part of an upload body."""
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="' + part.encode() + b'"; '
        b'filename="' + filename.encode() + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )


def part_tail() -> bytes:
    return b"\r\n--" + BOUNDARY + b"--\r\n"


def read_answer(raw: socket.socket, timeout: float = 10) -> Answer:
    """One response (headers and a Content-Length body), then whether the server closed."""
    raw.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = raw.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body, _closed(raw))


def _closed(raw: socket.socket, wait: float = 2) -> bool:
    raw.settimeout(wait)
    try:
        return raw.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def get_head(path_and_query: str) -> bytes:
    return f"GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def drain(raw: socket.socket, timeout: float) -> tuple[int, bool]:
    """Read a response until the server closes or `timeout` passes without a byte:
    (bytes of body read, closed)."""
    raw.settimeout(timeout)
    data = bytearray()
    closed = True
    try:
        while chunk := raw.recv(1 << 20):
            data += chunk
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        pass
    head_end = data.find(b"\r\n\r\n")
    return (len(data) - head_end - 4 if head_end >= 0 else 0), closed


def wait_until(condition, timeout: float = 10, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def register(base: str, name: str, password: str = "correct horse") -> str:
    """A new account's token."""
    response = httpx.post(
        f"{base}/user/register", json={"name": name, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
