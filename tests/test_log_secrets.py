"""No line of the server's log carries a credential: a socket URL's query string, a bearer
token, a token given in a query (DESIGN.md, "Facing the internet directly").

Against a real `im-api serve` at log level info, whose log holds uvicorn's own lines (its
websocket lines write the URL) beside ours.
"""

from __future__ import annotations

import contextlib

import httpx
import pytest
from raw_http import bearer, register
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import NO_LIMITS
from im_api.log_secrets import redact


def socket_closed_with(url: str) -> int:
    """Opens a socket and waits for the server to close it: its close code."""
    with connect(url, open_timeout=10) as made:
        try:
            made.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006
        with contextlib.suppress(ConnectionClosed):
            made.recv(timeout=10)
    return made.close_code


def test_the_log_never_carries_a_token_or_a_socket_query_string(
    new_server, tmp_path, served_database
):
    """Sockets opened with `?token=`, `?access_token=` and another query, a REST request with
    a token in its query: the log shows none of the tokens and no query string (before,
    uvicorn's "WebSocket /api/ws/user/1/?token=..." line wrote the token)."""
    server = new_server(
        tmp_path / "server" / "instance", served_database, log_level="info", **NO_LIMITS
    ).start()
    leaked = [register(server.url, f"leak{n}") for n in range(3)]
    header_token = register(server.url, "header")
    me = httpx.get(f"{server.url}/user/me", headers=bearer(header_token)).json()["user"]["id"]
    ws = f"ws://127.0.0.1:{server.port}/api/ws/user/{me}/"

    assert socket_closed_with(f"{ws}?token={leaked[0]}") == 4400
    assert socket_closed_with(f"{ws}?since=3&access_token={leaked[1]}") == 4400
    with connect(f"{ws}?resume=abc", additional_headers=bearer(header_token), open_timeout=10):
        pass  # accepted (and logged by uvicorn with its URL), then closed by us
    httpx.get(f"{server.url}/user/me?token={leaked[2]}", headers=bearer(header_token))
    server.stop()

    log = server.log.read_text()
    assert "WebSocket" in log, "uvicorn's websocket lines are not in the log at all"
    for token in [*leaked, header_token]:
        assert token not in log
        assert token.split(".")[-1] not in log  # not even its signature
    for query in ("?token", "access_token=", "?since", "?resume"):
        assert query not in log, f"{query} is in the log"


@pytest.mark.parametrize(
    "line, secret",
    [
        ('127.0.0.1:5 - "WebSocket /api/ws/user/1/?token=abc.def.ghi" 403', "abc.def.ghi"),
        ("GET /api/media/3?sig=s3cr3t&exp=9 200", "s3cr3t"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("body {'password': 'hunter22', 'name': 'x'}", "hunter22"),
        ('{"security_code": "123456"}', "123456"),
        ("http://h/api/ws/user/1/?access_token=zzz", "zzz"),
    ],
)
def test_redaction_removes_what_a_line_may_carry(line, secret):
    """The filter's rule on its own: each credential goes, the rest of the line stays."""
    cleaned = redact(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned and cleaned[:8] == line[:8]
