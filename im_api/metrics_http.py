"""Metrics over HTTP: each request observed (`RequestMetrics`), and the scrape answered, on a
path of the API's port (`IM_METRICS_PATH`) or on a listener of its own that `im-api serve`
opens (`IM_METRICS_PORT`); neither by default, so metrics stay off the public API.

Several uvicorn workers each keep their own metrics: prometheus_client's multiprocess mode
has each write them to files in `PROMETHEUS_MULTIPROC_DIR`, and a scrape merges the files.
`prepare_serving` sets that folder, empty, before the workers start (they inherit it).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_api.envelope import send_error
from im_api.paths import operation_id
from im_core import metrics
from im_core.config import Settings
from im_core.errors import ApiError, Error
from models import throttle

logger = logging.getLogger(__name__)

# What `generate_latest` writes: the text format, version 0.0.4.
TEXT_FORMAT = b"text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class RequestMetrics:
    """Observes each HTTP request in `im_http_request_duration_seconds`, by the operationId
    Connexion routed it to and its status, when the last byte of its answer is handed on
    (before the client has it, so a scrape right after an answer counts it); answers `GET
    settings.metrics_path` with the scrape, which is not counted itself.

    Inside `RequestIds` (which makes the scope's `extensions`), outside everything else, so
    refusals by CORS, the body limit and the front count too (as operation `none` when no
    operation was routed to)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.path = settings.metrics_path
        self.scrape = Scrape() if self.path else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.scrape is not None and scope["path"] == self.path:
            await self.scrape(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        observed = False

        async def send_and_observe(message: Message) -> None:
            nonlocal status, observed
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body")
                and not observed
            ):
                observed = True
                metrics.observe_request(operation_id(scope), status, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        except BaseException as exc:
            if not status:  # as the access log counts it: 499 if the client went, else 500
                gone = isinstance(exc, (ClientDisconnect, asyncio.CancelledError))
                status = 499 if gone else 500
            raise
        finally:
            if not observed:
                metrics.observe_request(operation_id(scope), status, time.perf_counter() - started)


class Scrape:
    """The scrape as an ASGI answer: every worker's metrics in the text format, collected on
    a thread (reading the workers' files), never in the event loop."""

    def __init__(self):
        self.registry = registry()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from prometheus_client import generate_latest

        if scope["method"] not in ("GET", "HEAD"):
            await send_error(
                send, ApiError(Error.METHOD_NOT_ALLOWED, headers={"Allow": "GET, HEAD"})
            )
            return
        body = await asyncio.to_thread(generate_latest, self.registry)
        headers = [(b"content-type", TEXT_FORMAT), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})


def start(settings: Settings, spec: dict) -> None:
    """Make the metrics when a setting asks for them, with the label sets known at start:
    each operation of the spec with its success status, each limit."""
    if not settings.metrics_on:
        return
    operations = {}
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                statuses = sorted(str(s) for s in operation.get("responses", {}))
                success = next((s for s in statuses if s.startswith("2")), "200")
                operations[operation["operationId"]] = success
    metrics.start(operations, throttle.LIMITS)


def registry():
    """What a scrape collects: in multiprocess mode every worker's files, less the live
    gauges of workers that died (uvicorn replaces a worker that dies; its open sockets would
    count forever); else this process's own registry (an app built in-process)."""
    import prometheus_client
    from prometheus_client import CollectorRegistry

    folder = os.environ.get(MULTIPROC_DIR)
    if not folder:
        return prometheus_client.REGISTRY
    collecting = CollectorRegistry()
    collecting.register(LiveWorkers(folder))
    return collecting


class LiveWorkers:
    """prometheus_client's `MultiProcessCollector`, after forgetting the dead workers' gauges
    of the live modes (`multiprocess.mark_process_dead`)."""

    def __init__(self, folder: str):
        from prometheus_client import multiprocess

        self.folder = folder
        self.multiprocess = multiprocess
        self.collector = multiprocess.MultiProcessCollector(None, path=folder)

    def collect(self):
        for file in Path(self.folder).glob("gauge_live*_*.db"):
            pid = file.stem.rpartition("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                self.multiprocess.mark_process_dead(int(pid), self.folder)
        return self.collector.collect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has the number: alive
        return True
    return True


def prepare_serving(settings: Settings) -> str | None:
    """What `im-api serve` does before its workers start, when metrics are on: the
    multiprocess folder (PROMETHEUS_MULTIPROC_DIR as set, emptied of an earlier run's files,
    or else a new temporary one removed at exit) in the environment they inherit; and the
    listener of IM_METRICS_PORT in this process. Returns the folder, None when metrics are
    off. Raises OSError when the port cannot be listened on."""
    if not settings.metrics_on:
        return None
    folder = os.environ.get(MULTIPROC_DIR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()  # an earlier run's counts would be added to this one's
    else:
        folder = tempfile.mkdtemp(prefix="im-api-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[MULTIPROC_DIR] = folder
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry())
    return folder
