"""A TypeScript client typed from the spec drives a real `im-api serve`.

clients/typescript: openapi-typescript turns the spec into types, `tsc --noEmit` checks the
walk-through (src/walkthrough.ts, openapi-fetch) against them, and the compiled walk-through
registers, logs in, reads its profile and logs out against the live server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "clients" / "typescript"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are needed for the TypeScript client",
)


def run(*command: str, env: dict | None = None, timeout: float = 300, stderr=False) -> str:
    """The command's output; fails the test when it fails."""
    result = subprocess.run(
        command,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    if stderr:
        return result.stdout + result.stderr
    return result.stdout


def install_packages() -> None:
    """`npm ci`, unless node_modules already holds what package-lock.json pins."""
    installed = PROJECT / "node_modules" / ".package-lock.json"
    lock = PROJECT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")


def test_typed_walkthrough_registers_logs_in_reads_me_and_logs_out(
    live_server, published, tmp_path
):
    """The types generated from a live server's spec check the walk-through, which then runs
    against the server."""
    install_packages()
    url = f"{published.url}/openapi.json"
    generated = run(
        "node", "node_modules/.bin/openapi-typescript", url, "-o", "src/schema.d.ts", stderr=True
    )
    assert "warn" not in generated.lower(), generated
    schema = (PROJECT / "src" / "schema.d.ts").read_text()
    assert "export interface paths" in schema
    assert "SignedIn: {" in schema and "ApiError: {" in schema  # the components' names
    # The type check (`npm run check`, here also writing the JavaScript): tsc exits non-zero,
    # and with noEmitOnError writes nothing, when a path, body or response does not match.
    run("node", "node_modules/typescript/bin/tsc", "--outDir", str(tmp_path / "dist"))

    # Compiled outside the project, so node finds the packages through NODE_PATH.
    output = run(
        "node",
        str(tmp_path / "dist" / "walkthrough.js"),
        live_server.url,
        env={"NODE_PATH": str(PROJECT / "node_modules")},
        timeout=60,
    )

    steps = [json.loads(line) for line in output.splitlines()]
    assert [(s["step"], s["status"], s["code"]) for s in steps] == [
        ("register", 200, 0),
        ("login", 200, 0),
        ("me", 200, 0),
        ("logout", 200, 0),
        ("me after logout", 401, 1004),
    ]
    registered, signed_in, me = steps[0], steps[1], steps[2]
    assert me["user"] == registered["user"]
    assert me["email"] is None
    assert signed_in["ws_url"] == f"ws/user/{registered['id']}/"
