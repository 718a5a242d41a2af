"""A real S3 endpoint for the tests, and a TCP proxy in front of it that can fail on demand.

`MotoEndpoint` is moto's server mode (`ThreadedMotoServer`) on a free loopback port: a real
HTTP server speaking the S3 protocol, reached through boto3 exactly as a deployment reaches
AWS or MinIO. `FaultyProxy` forwards a port to it and can refuse connections, stall (accept
and never answer: the store's timeouts must fire), or cut a connection after some bytes
(a store lost in the middle of an upload or a download).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from urllib.parse import quote

import boto3
from botocore.config import Config

# Fake credentials: moto accepts any, and a developer's real ones must never be sent.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that would point boto3 at a developer's own profile or config.
FOREIGN = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL")


def use_fake_credentials(environ=os.environ) -> None:
    """Make boto3 in this process (and the servers it starts) use the fake credentials."""
    for name in FOREIGN:
        environ.pop(name, None)
    environ.update(CREDENTIALS)


class MotoEndpoint:
    """moto's S3 in server mode on 127.0.0.1, with a boto3 client to look inside."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        use_fake_credentials()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.url = f"http://{host}:{self.port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        name = f"media-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def media_url(self, bucket: str, prefix: str = "", endpoint: str | None = None) -> str:
        """The `IM_MEDIA_URL` of a bucket (and prefix) on this endpoint or another address."""
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={quote(endpoint or self.url, safe=':/')}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The object keys under `prefix` (all of them, sorted)."""
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def unfinished_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        uploads = self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def stop(self) -> None:
        self._server.stop()


class FaultyProxy:
    """Forwards 127.0.0.1:`port` to `target_port`, failing as told.

    Modes: "pass" forwards; "refuse" closes each new connection at once, and an open one
    at its next byte (the store is down); "stall" accepts and reads but never answers (the
    store hangs), open connections included. `cut_all()` closes the open connections at
    once. `cut_after(n)` forwards until `n` more bytes went towards the store (or,
    `towards_store=False`, came back from it), then closes that connection; later ones
    pass. `upstream_bytes` counts what the store sent back.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode = "pass"
        self.upstream_bytes = 0
        self._cut_left: int | None = None
        self._cut_towards_store = True
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, count: int, towards_store: bool = True) -> None:
        with self._lock:
            self._cut_left = count
            self._cut_towards_store = towards_store

    def cut_all(self) -> None:
        """Close every connection open now (new ones follow `mode`): a server gone at once,
        not only at its next byte."""
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.mode == "refuse":
                _close(client)
            elif self.mode == "stall":
                threading.Thread(target=_drain, args=(client,), daemon=True).start()
            else:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    _close(client)
                    continue
                self._sockets.append(upstream)
                threading.Thread(
                    target=self._pump, args=(client, upstream, True), daemon=True
                ).start()
                threading.Thread(
                    target=self._pump, args=(upstream, client, False), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, towards_store: bool) -> None:
        try:
            while data := source.recv(65536):
                # Open connections fail too (a pooled keep-alive one would dodge the mode).
                if self.mode == "refuse":
                    break
                if self.mode == "stall":
                    continue
                if not towards_store:
                    self.upstream_bytes += len(data)
                with self._lock:
                    if self._cut_left is not None and towards_store == self._cut_towards_store:
                        if len(data) >= self._cut_left:
                            self._cut_left = None
                            break
                        self._cut_left -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(sink)

    def stop(self) -> None:
        self._stopped = True
        _close(self._listener)
        for sock in self._sockets:
            _close(sock)


def _drain(client: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while client.recv(65536):
            pass


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
