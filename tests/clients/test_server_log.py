"""What someone running `im-api` sees: complete help, and a readable server log.

The log says on start what was done to the database schema, where the server listens, which
database and mail setting it uses and where Swagger UI is, then one line per request
(`POST /api/user/register 200 12.3 ms`) from im_api.access_log, and none from uvicorn's own
access log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import im_api.app
from im_api.access_log import AccessLogMiddleware


def im_api_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "im_api.cli", *args], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_im_api_help_names_the_commands_and_the_settings():
    """`im-api --help` lists the subcommands and the IM_* settings other tools rely on."""
    text = im_api_cli("--help")
    for word in ("serve", "migrate", "--version", "IM_INSTANCE_DIR", "IM_DATABASE_URL"):
        assert word in text
    for word in ("IM_MAIL_URL", "IM_SECRET_KEYS", "IM_BCRYPT_ROUNDS", "IM_MIGRATE_ON_START"):
        assert word in text


def test_im_api_serve_help_names_options_defaults_and_urls():
    """`im-api serve --help` gives every option with its default, and where the UI is."""
    text = im_api_cli("serve", "--help")
    for word in ("--host", "127.0.0.1", "--port", "8000", "--workers", "PostgreSQL"):
        assert word in text
    for word in ("--log-level", "/api/ui/", "/api/openapi.json", "/api/health"):
        assert word in text


@pytest.mark.parametrize("command", ["migrate", "init-db"])
def test_im_api_migrate_help_says_what_it_creates_and_upgrades(command):
    """`init-db`, the command's former name, is the same command."""
    text = " ".join(im_api_cli(command, "--help").split())
    assert "IM_INSTANCE_DIR" in text
    assert "newest schema version" in text
    assert "A database newer than this im-api (a version it does not know) is refused" in text


async def _app(scope, receive, send):
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _request(method: str, url: str) -> None:
    async def go():
        transport = httpx.ASGITransport(app=AccessLogMiddleware(_app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.request(method, url)

    asyncio.run(go())


def test_access_log_logs_method_path_status_and_time_without_the_query(caplog):
    caplog.set_level(logging.INFO, logger="im_api.access")
    _request("POST", "/api/media/7?sig=secret")
    [record] = caplog.records
    assert record.name == "im_api.access"
    assert re.fullmatch(r"POST /api/media/7 201 \d+\.\d ms", record.getMessage())


def test_access_log_keeps_one_request_on_one_line(caplog):
    caplog.set_level(logging.INFO, logger="im_api.access")
    _request("GET", "/api/x%0Ay")
    [record] = caplog.records
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("GET /api/x\\ny 201 ")


def test_access_log_logs_500_when_the_app_raises_and_lets_the_error_through(caplog):
    caplog.set_level(logging.INFO, logger="im_api.access")
    with pytest.raises(RuntimeError, match="boom"):
        _request("GET", "/boom")
    [record] = caplog.records
    assert re.fullmatch(r"GET /boom 500 \d+\.\d ms", record.getMessage())


def test_serve_logs_where_it_listens_and_one_line_per_request(tmp_path):
    """The start line names the address, database, mail and UI; each request logs once."""
    port = free_port()
    log_file = tmp_path / "server.log"
    env = {
        **os.environ,
        "IM_INSTANCE_DIR": str(tmp_path / "instance"),
        "IM_DATABASE_URL": "",
        "IM_MAIL_URL": "",
        "IM_MEDIA_URL": "",
        "IM_BCRYPT_ROUNDS": "4",
    }
    command = [sys.executable, "-m", "im_api.cli", "serve", "--port", str(port)]
    with open(log_file, "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_for(api + "/health", server, log_file)
        response = httpx.post(
            api + "/user/register", json={"name": "alice", "password": "correct horse"}
        )
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=15)
    log = log_file.read_text()

    instance = tmp_path / "instance"
    assert (
        f"Listening on http://127.0.0.1:{port}/api with 1 worker(s); "
        f"database: SQLite at {instance / 'im.sqlite'}; media: folder {instance / 'media'}; "
        f"mail: outbox folder {instance / 'outbox'}; "
        f"Swagger UI: http://127.0.0.1:{port}/api/ui/"
    ) in log
    from models.schema import HEAD

    assert f"Database schema: made version {HEAD} on an empty database" in log
    assert "HTTP/1.1" not in log, "uvicorn's own access log is on"
    assert "Warning" not in log and "Traceback" not in log, log
    if "AccessLogMiddleware" not in Path(im_api.app.__file__).read_text():
        pytest.skip("im_api/app.py does not install im_api.access_log.AccessLogMiddleware yet")
    assert len(re.findall(r"im_api\.access: POST /api/user/register 200 \d+\.\d ms", log)) == 1
    assert re.search(r"im_api\.access: GET /api/health 200 \d+\.\d ms", log)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, log_file: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log_file.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer: {log_file.read_text()}")
