"""Operating it, on a real server: a two-worker `im-api serve` on PostgreSQL, its metrics
scraped over HTTP from their own port, each checked to move when its event happens.

Everything the server talks to is real and on loopback: PostgreSQL (through a TCP proxy
the test can cut), an S3 endpoint (moto's server mode, behind a proxy that can refuse), an
SMTP server (aiosmtpd), websocket clients. One server serves the module; the test that takes
the database away comes last.

Runs when the suite runs on PostgreSQL (`IM_TEST_DATABASE_URL=postgresql://...`): several
workers need it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import media_samples
import pytest
from prometheus_client.parser import text_string_to_metric_families
from s3_endpoint import FaultyProxy
from test_mail import start_smtp
from test_realtime import NO_LIMITS, Api, emptied

from conftest import LiveServer, free_port

STALE = "im_stale_from_an_earlier_run"


class Operated:
    """The module's server and what it talks to."""

    def __init__(self, server, metrics_port, database, media, smtp, bucket_url):
        self.server = server
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.database = database  # the proxy in front of PostgreSQL
        self.media = media  # the proxy in front of the S3 endpoint
        self.smtp = smtp
        self.bucket_url = bucket_url
        self.fresh = ""  # the first scrape, before any test's request

    def scrape(self) -> dict[tuple, float]:
        response = httpx.get(self.metrics_url, timeout=10)
        assert response.status_code == 200, response.text
        return samples(response.text)

    def value(self, name: str, **labels: str) -> float:
        return value(self.scrape(), name, **labels)

    def wait_for(self, name: str, expected: float, timeout: float = 15, **labels: str) -> float:
        """The value once it reaches `expected` (some metrics are recorded just after the
        answer goes out), or whatever it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.value(name, **labels)
            if found == expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def samples(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (over workers' `pid`, say)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in scraped.items() if n == name and wanted <= set(found))


def through(proxy: FaultyProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def operated(tmp_path_factory, database_url, s3):
    if not database_url.startswith("postgres"):
        pytest.skip("several workers share a PostgreSQL database (IM_TEST_DATABASE_URL)")
    database_url = emptied(tmp_path_factory, database_url)
    folder = tmp_path_factory.mktemp("operated")

    # A metrics folder an earlier run left behind: the server must empty it before starting.
    metrics_dir = folder / "prometheus"
    metrics_dir.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from prometheus_client import Counter; Counter({STALE!r}, 'stale').inc(5)",
        ],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        check=True,
    )
    assert list(metrics_dir.iterdir())

    database = FaultyProxy(urlsplit(database_url).port or 5432)
    media = FaultyProxy(s3.port)
    bucket = s3.new_bucket()
    controller, smtp = start_smtp()
    metrics_port = free_port()
    env = {
        **NO_LIMITS,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "IM_METRICS_PORT": str(metrics_port),
        "IM_METRICS_PATH": "/internal/metrics",
        "IM_MEDIA_URL": s3.media_url(bucket, prefix="media", endpoint=media.url),
        "IM_MEDIA_ATTEMPTS": "1",
        "IM_MEDIA_TIMEOUT": "2",
        "IM_MAIL_URL": smtp.url,
        "IM_LIMIT_LOGIN_PER_TARGET": "2/3600",
        "IM_WS_QUEUE": "3",
        "IM_READY_TIMEOUT": "2",
    }
    server = LiveServer(
        folder / "instance", through(database, database_url), workers=2, **env
    ).start()
    operated = Operated(server, metrics_port, database, media, smtp, env["IM_MEDIA_URL"])
    operated.fresh = httpx.get(operated.metrics_url, timeout=10).text
    operated.metrics_dir = metrics_dir
    yield operated
    server.stop()
    controller.stop()
    media.stop()
    database.stop()


def test_metrics_listen_on_their_own_port_and_not_on_the_api(operated):
    response = httpx.get(operated.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    api_root = operated.server.url.removesuffix("/api")
    for path in ("/metrics", "/api/metrics"):
        assert httpx.get(api_root + path).status_code == 404, path


def test_a_metrics_path_on_the_api_port_answers_every_worker_s_metrics(operated):
    """IM_METRICS_PATH: whichever worker answers merges every worker's files (both
    listeners are up, one per worker, in each scrape)."""
    api_root = operated.server.url.removesuffix("/api")
    assert operated.wait_for("im_realtime_listener_up", 2) == 2
    for _ in range(4):  # a new connection each time: either worker may answer
        response = httpx.get(api_root + "/internal/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert value(samples(response.text), "im_realtime_listener_up") == 2


def test_the_multiprocess_folder_was_emptied_before_the_workers_started(operated):
    assert STALE not in operated.fresh
    assert STALE not in httpx.get(operated.metrics_url).text


def test_a_fresh_server_already_shows_the_known_label_sets(operated):
    fresh = samples(operated.fresh)
    for name, labels in [
        ("im_http_request_duration_seconds_count", {"operation": "changeName", "status": "200"}),
        ("im_limit_refusals_total", {"limit": "login_per_target"}),
        ("im_limit_refusals_total", {"limit": "ws_queue"}),
        ("im_ws_frames_dropped_total", {"reason": "slow_client"}),
        ("im_s3_request_duration_seconds_count", {"operation": "PutObject"}),
        ("im_s3_request_failures_total", {"operation": "HeadObject"}),
        ("im_mail_send_duration_seconds_count", {"transport": "smtp"}),
        ("im_mail_send_failures_total", {"transport": "smtp"}),
    ]:
        wanted = set(labels.items())
        assert any(n == name and wanted <= set(found) for n, found in fresh), (name, labels)


def test_requests_count_by_operation_id_and_status_with_their_latency(operated):
    alice = Api(operated.server).user()
    me = {"operation": "getMe", "status": "200"}
    refused = {"operation": "getMe", "status": "401"}
    before = operated.scrape()
    for _ in range(3):
        alice.call("GET", "/user/me")
    assert httpx.get(operated.server.url + "/user/me").status_code == 401
    count = "im_http_request_duration_seconds_count"
    assert (
        operated.wait_for(count, value(before, count, **refused) + 1, **refused)
        == value(before, count, **refused) + 1
    )
    after = operated.scrape()
    assert value(after, count, **me) == value(before, count, **me) + 3
    seconds = "im_http_request_duration_seconds_sum"
    assert value(after, seconds, **me) > value(before, seconds, **me)
    slowest = "im_http_request_duration_seconds_bucket"
    assert value(after, slowest, le="+Inf", **me) == value(after, count, **me)


def test_open_sockets_rise_and_fall_with_the_sockets(operated):
    api = Api(operated.server)
    alice, bob = api.user(), api.user()
    before = operated.value("im_ws_open_sockets")
    sockets = [alice.socket(), bob.socket()]
    for socket in sockets:
        socket.sync()
    assert operated.value("im_ws_open_sockets") == before + 2
    for socket in sockets:
        socket.close()
    assert operated.wait_for("im_ws_open_sockets", before) == before


def test_each_frame_sent_counts_and_the_fan_out_lag_is_observed_as_a_socket_catches_up(
    operated,
):
    """Frames are counted, and the lag observed, each time a socket has sent all it had: a
    client reading each message before the next is posted makes one observation each."""
    alice = Api(operated.server).user()
    group_id = alice.group()
    before = operated.scrape()
    socket = alice.socket()
    socket.sync()  # its `ready` is a frame sent
    for text in ("one", "two"):
        alice.post(group_id, text)
        assert socket.recv()["type"] == "message.created"
    sent, lag = "im_ws_frames_sent_total", "im_fanout_lag_seconds_count"
    assert operated.wait_for(sent, value(before, sent) + 3) == value(before, sent) + 3
    assert operated.wait_for(lag, value(before, lag) + 2) == value(before, lag) + 2
    after = operated.scrape()
    socket.close()
    assert value(after, "im_fanout_lag_seconds_sum") > value(before, "im_fanout_lag_seconds_sum")


def test_the_frames_of_a_socket_closed_for_not_keeping_up_count_as_dropped(operated):
    """A socket gets nothing live before its first `sync`: with IM_WS_QUEUE=3, the fourth
    message finds its queue full; the three held and the fourth are dropped, and it is
    closed with 4503 (a limit refused: `ws_queue`)."""
    alice = Api(operated.server).user()
    group_id = alice.group()
    before = operated.scrape()
    socket = alice.socket()
    time.sleep(0.5)  # its groups are read before the first message is posted
    for index in range(4):
        alice.post(group_id, f"message {index}")
    assert socket.closed_with() == 4503
    dropped = {"reason": "slow_client"}
    name = "im_ws_frames_dropped_total"
    assert operated.wait_for(name, value(before, name, **dropped) + 4, **dropped) == (
        value(before, name, **dropped) + 4
    )
    refusals = "im_limit_refusals_total"
    assert (
        operated.value(refusals, limit="ws_queue") == value(before, refusals, limit="ws_queue") + 1
    )


def test_a_refusal_counts_under_the_limit_that_refused(operated):
    api = Api(operated.server)
    name = "im_limit_refusals_total"
    before = operated.scrape()
    # A name nobody signed in with from this address: the limit per name spares the addresses
    # an account signed in from (models.users), so its owner's logins would all pass.
    stranger = {"name": "nobody_here", "password": "secret12"}
    logins = [api.http.post("/user/login", json=stranger).status_code for _ in range(3)]
    assert logins[2] == 429 and 429 not in logins[:2], logins
    too_large = api.http.post(
        "/user/login",
        content=b"{" + b" " * (64 * 1024 + 10) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    after = operated.scrape()
    for limit in ("login_per_target", "body_size"):
        assert value(after, name, limit=limit) == value(before, name, limit=limit) + 1, limit
    assert value(after, name) == value(before, name) + 2  # nothing else was counted


def test_mail_sent_and_refused_count_with_their_latency(operated):
    api = Api(operated.server)
    smtp = {"transport": "smtp"}
    before = operated.scrape()
    sent = api.http.post(
        "/user/email_code", json={"email": "carol@example.com", "purpose": "register"}
    )
    assert sent.status_code == 200, sent.text
    operated.smtp.sink.reply = "550 No such mailbox"
    try:
        refused = api.http.post(
            "/user/email_code", json={"email": "dave@example.com", "purpose": "register"}
        )
    finally:
        operated.smtp.sink.reply = None
    assert refused.status_code == 503, refused.text
    after = operated.scrape()
    count = "im_mail_send_duration_seconds_count"
    assert value(after, count, **smtp) == value(before, count, **smtp) + 2
    failures = "im_mail_send_failures_total"
    assert value(after, failures, **smtp) == value(before, failures, **smtp) + 1
    assert value(after, "im_mail_send_duration_seconds_sum", **smtp) > value(
        before, "im_mail_send_duration_seconds_sum", **smtp
    )


def test_s3_calls_count_their_latency_and_a_store_that_fails_counts_and_is_not_ready(operated):
    alice = Api(operated.server).user()
    group_id = alice.group()
    put = {"operation": "PutObject"}
    head = {"operation": "HeadObject"}
    before = operated.scrape()
    uploaded = alice.api.http.post(
        f"/groups/{group_id}/upload_image",
        files={"image": ("a.png", media_samples.png())},
        headers=alice.auth,
    )
    assert uploaded.status_code == 201, uploaded.text
    after = operated.scrape()
    count = "im_s3_request_duration_seconds_count"
    assert value(after, count, **put) == value(before, count, **put) + 1
    assert value(after, count, **head) > value(before, count, **head)
    failures = "im_s3_request_failures_total"
    assert value(after, failures) == value(before, failures)

    operated.media.mode = "refuse"
    try:
        refused = alice.api.http.post(
            f"/groups/{group_id}/upload_image",
            files={"image": ("b.png", media_samples.png(color=(9, 9, 9)))},
            headers=alice.auth,
        )
        assert refused.status_code == 503 and refused.json()["code"] == 4015, refused.text
        assert operated.value(failures, **head) == value(after, failures, **head) + 1
        ready = httpx.get(operated.server.url + "/health/ready", timeout=30)
        assert ready.status_code == 503, ready.text
        assert ready.json()["info"].startswith("Not ready: media (")
        assert "database" not in ready.json()["info"] and "listener" not in ready.json()["info"]
    finally:
        operated.media.mode = "pass"
    assert httpx.get(operated.server.url + "/health/ready", timeout=30).status_code == 200


def test_a_lost_database_is_not_ready_the_listeners_go_down_and_reconnect(operated):
    """Last: the database goes away (its proxy refuses and cuts every connection), so both
    workers' listeners are down and readiness names the database and the listener; when it
    comes back, each listener reconnects once."""
    up, reconnects = "im_realtime_listener_up", "im_realtime_listener_reconnects_total"
    assert operated.wait_for(up, 2) == 2  # one per worker, each listening
    before = operated.value(reconnects)
    operated.database.mode = "refuse"
    operated.database.cut_all()
    try:
        assert operated.wait_for(up, 0) == 0
        ready = httpx.get(operated.server.url + "/health/ready", timeout=30)
        assert ready.status_code == 503, ready.text
        info = ready.json()["info"]
        assert info.startswith("Not ready: database (") and "listener (not connected)" in info
        assert httpx.get(operated.server.url + "/health", timeout=30).status_code == 503
        assert operated.value(reconnects) == before
    finally:
        operated.database.mode = "pass"
    assert operated.wait_for(up, 2) == 2
    assert operated.value(reconnects) == before + 2
    deadline = time.monotonic() + 15
    while httpx.get(operated.server.url + "/health/ready", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the database came back"
        time.sleep(0.2)
