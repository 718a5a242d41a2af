"""Swagger UI at /api/ui/ works in a real browser against a real `im-api serve`.

clients/browser/swagger_ui.mjs drives Debian's headless chromium with playwright-core:
POST /user/register through "Try it out", "Authorize" (bearerAuth) with the token the page
shows, then GET /user/me through "Try it out". The test checks what the page shows (the
spec's named schemas among it, the link to the AsyncAPI document and that it answers) and
that the screenshots are real renderings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

PROJECT = Path(__file__).resolve().parents[2] / "clients" / "browser"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

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


def install_packages() -> None:
    """`npm ci`, unless node_modules already holds what package-lock.json pins."""
    installed = PROJECT / "node_modules" / ".package-lock.json"
    lock = PROJECT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROJECT,
            check=True,
            capture_output=True,
            timeout=300,
        )


def test_swagger_ui_registers_authorizes_and_shows_me(live_server, tmp_path):
    """Try it out: register, Authorize with the token shown, GET /user/me shows the user."""
    install_packages()
    shots = tmp_path / "screenshots"
    result = subprocess.run(
        ["node", "swagger_ui.mjs", live_server.url, str(shots), "ui_browser"],
        cwd=PROJECT,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nscreenshots in {shots}"
    shown = json.loads(result.stdout)

    assert shown["title"].startswith("IM account and media API")
    # The UI reads the spec as written: its Schemas section names the components.
    assert {"SignedIn", "ApiError", "RegisterRequest", "Uploaded"} <= set(shown["schemas"])
    # The description links to the socket's contract: the link, as the browser resolves it
    # against /api/ui/, is the served /api/asyncapi.yaml (a relative "asyncapi.yaml" would
    # lead to /api/ui/asyncapi.yaml), and following it gets the AsyncAPI document.
    origin = live_server.url.removesuffix("/api")
    links = {link["href"]: link for link in shown["asyncapi"]}
    assert f"{origin}/api/asyncapi.yaml" in links, shown["asyncapi"]
    followed = links[f"{origin}/api/asyncapi.yaml"]
    assert followed["status"] == 200, followed
    assert re.search(r"^asyncapi: ['\"]?3\.", followed["start"], re.MULTILINE), followed
    register = shown["register"]
    assert register["status"] == 200
    assert (register["body"]["code"], register["body"]["info"]) == (0, "Succeed")
    assert register["body"]["user"]["name"] == "ui_browser"
    token = register["body"]["token"]

    assert "Authorized" in shown["authorized"]
    assert f"Authorization: Bearer {token}" in shown["curl"]

    me = shown["me"]
    assert me["status"] == 200
    assert me["body"]["code"] == 0
    assert me["body"]["info"] == "Succeed"
    assert me["body"]["user"]["name"] == "ui_browser"
    assert me["body"]["user"]["id"] == register["body"]["user"]["id"]
    assert shown["console_errors"] == []

    names = [Path(path).name for path in shown["screenshots"]]
    assert names == ["0-top.png", "1-register.png", "2-authorized.png", "3-me.png"]
    for path in shown["screenshots"]:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 600 and image.height >= 250, (path, image.size)
            darkest, lightest = image.convert("L").getextrema()
            # A rendered page has text on a background, not one flat colour.
            assert lightest - darkest > 128, (path, darkest, lightest)
