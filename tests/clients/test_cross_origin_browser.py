"""A web frontend on another origin uses the API from a real browser (CORS).

A page served from its own origin (another port: clients/browser/cross_origin.html) runs in
Debian's headless chromium, with CORS enforced, against a real `im-api serve` that lists that
origin in IM_CORS_ORIGINS: it registers, logs in, reads `me`, creates a group, uploads an
image, fetches it back, and reads the headers the server exposes (Content-Disposition, ETag,
Retry-After). A server that does not list the origin cannot be read by the page. With
IM_PUBLIC_BASE_URL, the page uses the `url` and `ws_url` it is given as they are.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.clients.test_swagger_ui_browser import CHROMIUM, install_packages

PROJECT = Path(__file__).resolve().parents[2] / "clients" / "browser"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None,
        reason="node and npm are needed to drive the browser",
    ),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason="chromium is not installed (clients/install.sh installs Debian's)",
    ),
]


@pytest.fixture
def page_origin():
    """An HTTP server of the frontend's page on a port of its own: another origin."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(PROJECT))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cors_server(tmp_path, page_origin):
    from tests.conftest import LiveServer

    server = LiveServer(tmp_path / "instance", "", IM_CORS_ORIGINS=page_origin).start()
    yield server
    server.stop()


def run_page(page_origin: str, **query: str) -> dict:
    """What cross_origin.html saw, opened in chromium with `query`."""
    install_packages()
    result = subprocess.run(
        ["node", "cross_origin.mjs", f"{page_origin}/cross_origin.html?{urlencode(query)}"],
        cwd=PROJECT,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_a_page_on_another_origin_registers_logs_in_and_uploads(
    page_origin, cors_server, published
):
    seen = run_page(page_origin, api=cors_server.url, blocked=published.url)

    assert "error" not in seen, seen
    assert seen["origin"] == page_origin
    assert (seen["register"]["status"], seen["register"]["code"]) == (200, 0)
    assert (seen["login"]["status"], seen["login"]["code"]) == (200, 0)
    assert seen["me"]["status"] == 200
    assert seen["me"]["name"] == seen["register"]["name"]
    assert seen["group"]["status"] == 201
    assert seen["upload"] == {
        "status": 201,
        "kind": "image",
        "content_type": "image/png",
        "size": seen["media"]["size"],
    }
    media = seen["media"]
    assert media["status"] == 200
    assert media["content_type"] == "image/png"
    assert media["content_disposition"].startswith('inline; filename="drawn.png"')
    assert media["etag"]
    assert seen["wrong_password"]["status"] == 400
    assert seen["wrong_password"]["code"] == 2004
    assert seen["too_many"]["status"] == 429
    assert int(seen["too_many"]["retry_after"]) > 0
    # The server without IM_CORS_ORIGINS: the browser does not let the page read it.
    assert seen["blocked"].startswith("refused: TypeError")


def test_a_page_on_another_origin_uses_absolute_urls_as_they_are(page_origin, tmp_path):
    """With IM_PUBLIC_BASE_URL naming the server, the page fetches the media `url`, shows it
    in an <img> and opens the socket at `ws_url` without resolving anything."""
    from tests.conftest import LiveServer

    server = LiveServer(tmp_path / "instance", "", IM_CORS_ORIGINS=page_origin)
    origin = server.url.removesuffix("/api")
    server.env["IM_PUBLIC_BASE_URL"] = origin
    server.start()
    try:
        seen = run_page(page_origin, api=server.url, absolute="1")
    finally:
        server.stop()

    assert "error" not in seen, seen
    assert seen["urls"]["url"].startswith(f"{origin}/api/media/")
    assert seen["urls"]["ws_url"] == (
        f"{origin.replace('http://', 'ws://')}/api/ws/user/{seen['me']['id']}/"
    )
    assert seen["media"]["status"] == 200 and seen["media"]["content_type"] == "image/png"
    assert seen["image"] == {"width": 16, "height": 12}
    assert seen["socket"] == {"frames": ["ready"]}
