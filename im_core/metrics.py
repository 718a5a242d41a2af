"""The server's metrics, in Prometheus' terms: each is named and described here, and moved
by a one-line hook where its event happens (docs/operating.md lists them with their hooks).

Until `start()` every name below is `OFF`, whose methods do nothing, so a server without
metrics (the default) pays a call that returns at once. `start` imports prometheus_client
only then: the client chooses its multiprocess mode when it is first imported, from
`PROMETHEUS_MULTIPROC_DIR`, which `im-api serve` sets before its workers start
(`im_api.metrics_http`). Callers read the names at each call (`metrics.frames_sent.inc()`),
never `from im_core.metrics import ...`, so they see the started ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class _Off:
    """Stands in for every metric while metrics are off."""

    def labels(self, *values, **named):
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


OFF = _Off()

# Request latencies: a few milliseconds (JSON operations) to a bcrypt login (~0.3 s at cost
# 12) to uploads of tens of megabytes.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From a message's commit to its frame leaving: milliseconds when the hub keeps up.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Calls to the media store and the mail server: up to their timeouts and retries.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# The label sets made at start, so a scrape of a fresh server shows every metric.
S3_OPERATIONS = (
    "HeadObject",
    "GetObject",
    "PutObject",
    "DeleteObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
)
MAIL_TRANSPORTS = ("smtp", "outbox")
DROP_REASONS = ("slow_client", "closed")
# Limits refused outside models.throttle's table (whose names the app factory adds).
OTHER_LIMITS = (
    "login_failures",  # IM_LOGIN_MAX_FAILURES in IM_LOGIN_FAILURE_WINDOW, per account
    "code_resend",  # IM_CODE_RESEND_AFTER, per address and purpose
    "uploads_at_once",  # IM_MAX_UPLOADS_PER_ACCOUNT
    "free_disk",  # IM_MIN_FREE_DISK_BYTES
    "request_threads",  # IM_REQUEST_THREADS busy for IM_QUEUE_TIMEOUT
    "body_size",  # IM_MAX_JSON_BYTES and IM_MAX_<KIND>_BYTES
    "ws_frame_rate",  # IM_WS_FRAME_RATE and IM_WS_FRAME_BURST
    "ws_queue",  # IM_WS_QUEUE
)
UNROUTED = "none"  # the operation of a request routed to none (no such path, refused before)

requests = OFF  # Histogram: seconds per HTTP request, by operation and status
open_sockets = OFF  # Gauge: authenticated sockets open
frames_sent = OFF  # Counter: frames sent on sockets
frames_dropped = OFF  # Counter: frames queued for a socket that closed first, by reason
fanout_lag = OFF  # Histogram: seconds from a message's commit to its frames leaving
listener_up = OFF  # Gauge: 1 while the worker hears committed events
listener_reconnects = OFF  # Counter: connections of the listener after its first one
s3_seconds = OFF  # Histogram: seconds per S3 call, by operation
s3_failures = OFF  # Counter: S3 calls that failed, by operation
mail_seconds = OFF  # Histogram: seconds per mail handed on, by transport
mail_failures = OFF  # Counter: mails not handed on, by transport
limit_refusals = OFF  # Counter: requests, sockets and frames refused by a limit, by limit

_lock = threading.Lock()
_started = False
_request_children: dict = {}


def start(operations: dict[str, str], limits: Iterable[str]) -> None:
    """Make the metrics, once per process (a registry takes each name once; tests build many
    apps), with the known label sets: each operation with its success status
    (`operations`: operationId -> status), each limit (`limits` beside `OTHER_LIMITS`), the
    S3 operations, the mail transports and the reasons to drop a frame."""
    global requests, open_sockets, frames_sent, frames_dropped, fanout_lag, listener_up
    global listener_reconnects, s3_seconds, s3_failures, mail_seconds, mail_failures
    global limit_refusals, _started
    with _lock:
        if _started:
            return
        from prometheus_client import Counter, Gauge, Histogram

        requests = Histogram(
            "im_http_request_duration_seconds",
            "HTTP requests: seconds until the last byte of the answer, by operationId "
            f"('{UNROUTED}': routed to none) and status",
            ["operation", "status"],
            buckets=REQUEST_BUCKETS,
        )
        open_sockets = Gauge(
            "im_ws_open_sockets",
            "Authenticated websockets open",
            multiprocess_mode="livesum",
        )
        frames_sent = Counter("im_ws_frames_sent", "Frames sent on websockets")
        frames_dropped = Counter(
            "im_ws_frames_dropped",
            "Frames queued for a websocket that closed before they went: slow_client (its "
            "queue was full), closed (any other close)",
            ["reason"],
        )
        fanout_lag = Histogram(
            "im_fanout_lag_seconds",
            "Seconds from a message's commit reaching this worker to its frame leaving for "
            "a socket: one observation each time a socket has sent all it had, the lag of "
            "the last live frame it sent (the largest of that burst)",
            buckets=LAG_BUCKETS,
        )
        listener_up = Gauge(
            "im_realtime_listener_up",
            "1 while the worker hears committed events (PostgreSQL: its LISTEN connection is "
            "open), else 0",
            multiprocess_mode="liveall",
        )
        listener_reconnects = Counter(
            "im_realtime_listener_reconnects",
            "Times the worker's listener connected again after losing its connection",
        )
        s3_seconds = Histogram(
            "im_s3_request_duration_seconds",
            "Calls to the S3 media store (retries included), by S3 operation",
            ["operation"],
            buckets=CALL_BUCKETS,
        )
        s3_failures = Counter(
            "im_s3_request_failures",
            "Calls to the S3 media store that got no answer or an error (not a 404)",
            ["operation"],
        )
        mail_seconds = Histogram(
            "im_mail_send_duration_seconds",
            "Mails handed to the SMTP server or written to the outbox, by transport",
            ["transport"],
            buckets=CALL_BUCKETS,
        )
        mail_failures = Counter(
            "im_mail_send_failures",
            "Mails that could not be handed on, by transport",
            ["transport"],
        )
        limit_refusals = Counter(
            "im_limit_refusals", "Refusals by a limit (429, 413, 503, socket closes)", ["limit"]
        )

        for operation, status in operations.items():
            requests.labels(operation, status)
        requests.labels(UNROUTED, "404")
        for operation in S3_OPERATIONS:
            s3_seconds.labels(operation)
            s3_failures.labels(operation)
        for transport in MAIL_TRANSPORTS:
            mail_seconds.labels(transport)
            mail_failures.labels(transport)
        for reason in DROP_REASONS:
            frames_dropped.labels(reason)
        for limit in (*limits, *OTHER_LIMITS):
            limit_refusals.labels(limit)
        listener_up.set(0)
        _request_children.clear()
        _started = True


def observe_request(operation: str | None, status: int, seconds: float) -> None:
    """One HTTP request, answered `status` after `seconds`. Each (operation, status) child is
    looked up once: operations come from the spec, statuses from a short list."""
    key = (operation, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = requests.labels(operation or UNROUTED, str(status))
    child.observe(seconds)


def refused(limit: str) -> None:
    """A request, socket or frame refused by `limit` (a `limit_*` setting's name without the
    prefix, or one of `OTHER_LIMITS`)."""
    limit_refusals.labels(limit).inc()


def s3_call(operation: str, seconds: float, failed: bool) -> None:
    s3_seconds.labels(operation).observe(seconds)
    if failed:
        s3_failures.labels(operation).inc()


def mail_sent(transport: str, seconds: float, failed: bool) -> None:
    mail_seconds.labels(transport).observe(seconds)
    if failed:
        mail_failures.labels(transport).inc()
