"""The parts of the hot-path bench (`python -m bench --posts`, issue 21) that can be checked
without measuring anything: the bare websockets server delivers a post to its group's
sockets, a git revision is extracted and runs its own code, and the ratios pair each round
with its neighbours. No timing is asserted: the bench reports, it does not judge here."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from websockets.asyncio.client import connect

from bench import fixtures
from bench.against import Revision, second_database
from bench.posts import made_up, neighbour_ratios, parse_args
from bench.servers import REPO, Server, free_port


def test_each_round_is_held_against_the_reference_rounds_around_it():
    timeline = [("old", 100.0), ("new", 150.0), ("old", 200.0), ("new", 300.0), ("old", 100.0)]
    assert neighbour_ratios(timeline, "new", "old") == [1.0, 2.0]
    # At an end, the one neighbour there is.
    assert neighbour_ratios([("new", 50.0), ("old", 100.0)], "new", "old") == [0.5]
    assert neighbour_ratios([("new", 50.0)], "new", "old") == []


def test_the_bare_server_layout_puts_every_member_in_the_big_group_and_posters_in_theirs():
    layout, groups = made_up(members=5, posters=2)
    assert layout.ids == [1, 2, 3, 4, 5] and layout.everyone == 1 and layout.together == 2
    assert groups == {"1": [1, 2, 3], "2": [1, 2, 4], "3": [1], "4": [1], "5": [1]}
    assert layout.own == [3, 4]


def test_the_second_databases_keep_the_bench_in_their_name():
    url = "postgresql://postgres@127.0.0.1:5432/test_bench"
    assert second_database(url, "_old") == "postgresql://postgres@127.0.0.1:5432/test_bench_old"


def test_more_workers_need_postgresql():
    with pytest.raises(SystemExit):
        parse_args(["--workers", "2"])
    args = parse_args(["--workers", "2", "--database-url", "postgresql://h/test_bench"])
    assert args.workers == 2 and args.rates == [50.0, 100.0, 200.0]


def test_a_revision_is_extracted_and_runs_its_own_modules(tmp_path):
    revision = Revision("HEAD", tmp_path)
    assert (revision.root / "im_api" / "cli.py").is_file()
    assert revision.root.resolve() != REPO.resolve()
    server = Server("rev", "im_api.cli", 1, dict(os.environ), tmp_path / "log", root=revision.root)
    assert server.env["PYTHONPATH"].split(os.pathsep)[0] == str(revision.root)


def test_the_bare_websockets_server_broadcasts_a_post_to_its_group(tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"1": [7], "2": [7], "3": [8]}))
    server = Server("bare", "bench.bare_websockets", 1, dict(os.environ), tmp_path / "log")
    server.ws_port = free_port()
    server.command += ["--ws-port", str(server.ws_port), "--groups", str(groups)]
    server.start()
    try:
        server.wait_ready(timeout=30)
        frames = asyncio.run(_post_and_listen(server))
    finally:
        server.stop()
    member, other_group = frames
    assert member["type"] == "message.created"
    assert member["message"]["group_id"] == 7 and member["message"]["seq"] == 1
    assert member["message"]["client_msg_id"] == "c-1" and member["message"]["text"] == "hello"
    assert other_group is None


async def _post_and_listen(server: Server):
    url = f"ws://127.0.0.1:{server.ws_port}/api/ws/user/{{}}/"
    sockets = [await connect(url.format(user), compression=None) for user in (1, 3)]
    for socket in sockets:
        await socket.send('{"type":"sync","since":{}}')
        assert json.loads(await socket.recv())["type"] == "ready"
    status, answer = await asyncio.to_thread(
        fixtures.call, server.port, "POST", "/api/groups/7/messages", "any",
        {"text": "hello", "client_msg_id": "c-1"},
    )  # fmt: skip
    assert status == 201 and answer["message"]["seq"] == 1
    received = json.loads(await asyncio.wait_for(sockets[0].recv(), 10))
    try:  # the member of another group hears nothing
        other = await asyncio.wait_for(sockets[1].recv(), 0.5)
    except asyncio.TimeoutError:
        other = None
    for socket in sockets:
        await socket.close()
    return received, other


if sys.platform != "linux":  # the bench reads /proc
    pytestmark = pytest.mark.skip("the bench runs on Linux")
