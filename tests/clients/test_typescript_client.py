"""A TypeScript client typed from the spec drives a real `im-api serve`.

clients/typescript: openapi-typescript turns the spec into types, `tsc --noEmit` checks the
walk-through (src/walkthrough.ts, openapi-fetch) against them, and the compiled walk-through
registers, logs in, reads its profile, makes a group, opens the live socket (ws_url, the
`ws` package with the token on the upgrade), posts a message over REST and receives it on
the socket as `message.created`, adds a second user as a contact (the request heard live on
their socket) and sends them a direct message they receive on their socket, then logs out,
which ends the socket, against the live server.
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


def test_typed_walkthrough_registers_logs_in_posts_receives_on_the_socket_and_logs_out(
    live_server, published, tmp_path
):
    """The types generated from a live server's spec check the walk-through, which then runs
    against the server: a message posted over REST arrives on its socket."""
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
    assert [(s["step"], s["status"]) for s in steps] == [
        ("register", 200),
        ("login", 200),
        ("me", 200),
        ("group", 201),
        ("socket ready", 101),
        ("post message", 201),
        ("message.created", 200),
        ("contact", 200),
        ("direct message", 201),
        ("unread badge", 200),
        ("edit and recall", 200),
        ("admin announcement", 200),
        ("logout", 200),
        ("session.ended", 4410),
        ("me after logout", 401),
    ]
    by_step = {s["step"]: s for s in steps}
    assert [by_step[name]["code"] for name in ("register", "login", "me", "group")] == [0] * 4
    assert (by_step["post message"]["code"], by_step["logout"]["code"]) == (0, 0)
    assert by_step["me after logout"]["code"] == 1004
    registered, signed_in, me = by_step["register"], by_step["login"], by_step["me"]
    assert me["user"] == registered["user"]
    assert me["email"] is None
    assert signed_in["ws_url"] == f"ws/user/{registered['id']}/"

    # ws_url resolved against the API's base URL; `ready` lists the new group at seq 0.
    ready = by_step["socket ready"]
    assert ready["url"] == f"/api/ws/user/{registered['id']}/"
    assert ready["groups"] == {str(by_step["group"]["id"]): 0}
    # The frame carries the message the REST answer gave: same id, seq 1 of the new group.
    posted, live = by_step["post message"], by_step["message.created"]
    assert (live["id"], live["seq"]) == (posted["id"], posted["seq"]) == (posted["id"], 1)
    assert live["text"] == "hello from TypeScript"
    assert live["client_msg_id"].startswith("ts-")
    assert live["sender"] == registered["id"]
    assert by_step["session.ended"]["frame"] == {"type": "session.ended", "reason": "logout"}
    # A contact, asked for by alice, heard live on bob's socket, accepted by bob; their direct
    # chat, heard of live, and a message in it received on bob's socket.
    contact, direct = by_step["contact"], by_step["direct message"]
    assert contact["heard_live"] == contact["request"]
    assert contact["contact"] == registered["user"]
    assert (direct["kind"], direct["heard_live"]) == ("direct", direct["chat"])
    assert direct["peer"].startswith("tb_") and direct["text"] == "hello, Bob"
    # Bob's second device: one unread in the chat at `ready`, none once he read it.
    assert by_step["unread badge"] == {
        "step": "unread badge",
        "status": 200,
        "before": 1,
        "answered": 0,
        "other_device": 0,
    }
    # Alice edits, then recalls, the direct message; bob's socket sees each change.
    changed = by_step["edit and recall"]
    assert (changed["edited"], changed["text_after"]) == ("hello, Bob!", None)
    assert changed["recalled_by"] == registered["user"]
    assert changed["recalled_rev"] == changed["edited_rev"] + 1
    # Alice makes bob an admin; he sets the announcement; carol's socket sees both live.
    roles = by_step["admin announcement"]
    assert roles["admins"] == roles["heard_admins"] and len(roles["admins"]) == 1
    assert roles["announcement"] == roles["heard_announcement"] == "Walk-through notice: be nice."
    assert roles["set_by"].startswith("tb_")
    assert roles["heard_version"] == 2
