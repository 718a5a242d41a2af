"""Sockets at once per user and per client address, on a real `im-api serve`: counted across
its workers (two on PostgreSQL), and per the address a trusted proxy names.

The close code is the contract's (4409, conformance/test_socket_limits.py checks the default
per user); here the settings are small so the counts are quick to reach.
"""

from __future__ import annotations

import contextlib
import json

import httpx
from raw_http import bearer, register
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def user_id(server, token: str) -> int:
    return httpx.get(f"{server.url}/user/me", headers=bearer(token)).json()["user"]["id"]


def open_socket(server, token: str, stack: contextlib.ExitStack, forwarded: str | None = None):
    """An authenticated socket: (the connection, None) once `pong` came, or (None, the close
    code) when the server closed it instead."""
    headers = bearer(token)
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    url = f"ws://127.0.0.1:{server.port}/api/ws/user/{user_id(server, token)}/"
    made = stack.enter_context(connect(url, additional_headers=headers, open_timeout=10))
    try:
        made.send('{"type": "ping"}')
        assert made.recv(timeout=10) == '{"type":"pong"}'
    except ConnectionClosed as closed:
        return None, closed.rcvd.code if closed.rcvd else 1006
    return made, None


def test_sockets_per_user_are_counted_across_the_workers(serve):
    """IM_WS_MAX_SOCKETS_PER_USER=3: a fourth socket of the user is closed 4409 whichever
    worker it reaches (two on PostgreSQL); another user is served meanwhile."""
    server = serve(IM_WS_MAX_SOCKETS_PER_USER="3")
    token, other = register(server.url, "many_sockets"), register(server.url, "other_user")
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            made, code = open_socket(server, token, stack)
            assert made is not None, code
        # Several tries: with two workers, each lands on either.
        for _ in range(4):
            made, code = open_socket(server, token, stack)
            assert made is None and code == 4409, "a fourth socket of one user was served"
        assert open_socket(server, other, stack)[0] is not None


def test_sockets_per_address_count_the_address_a_trusted_proxy_names(serve):
    """IM_WS_MAX_SOCKETS_PER_ADDRESS=2 behind a trusted proxy (loopback): the third socket
    from one forwarded address is closed 4409, whatever its user; another forwarded address
    is served."""
    server = serve(IM_WS_MAX_SOCKETS_PER_ADDRESS="2", IM_TRUSTED_PROXIES="127.0.0.1")
    tokens = [register(server.url, f"addr_user{n}") for n in range(3)]
    with contextlib.ExitStack() as stack:
        for token in tokens[:2]:
            made, code = open_socket(server, token, stack, forwarded="203.0.113.7")
            assert made is not None, code
        made, code = open_socket(server, tokens[2], stack, forwarded="203.0.113.7")
        assert made is None and code == 4409
        made, code = open_socket(server, tokens[2], stack, forwarded="203.0.113.8")
        assert made is not None, code


def replay(made, group_id: int) -> tuple[list[int], list[dict]]:
    """`sync` the group from 0: the seqs replayed and the error frames, until `ready`."""
    made.send(json.dumps({"type": "sync", "since": {str(group_id): 0}}))
    seqs, errors = [], []
    while True:
        frame = json.loads(made.recv(timeout=30))
        if frame["type"] == "ready":
            return seqs, errors
        if frame["type"] == "error":
            errors.append(frame)
        else:
            seqs.append(frame["message"]["seq"])


def test_replays_past_the_budget_per_user_stop_with_6005_then_ready(serve):
    """IM_LIMIT_REPLAY_PER_USER=150/3600 (messages): a full replay of 100 messages, then a
    second one stops after the 50 left with `error` 6005 and `ready`, and a third replays
    nothing; another socket of the user shares the budget (before: each `sync` from 0 sent
    the whole history again)."""
    server = serve(IM_LIMIT_REPLAY_PER_USER="150/3600")
    token = register(server.url, "replayer")
    group = httpx.post(f"{server.url}/groups", json={"name": "g"}, headers=bearer(token))
    group_id = group.json()["group"]["id"]
    for n in range(100):
        posted = httpx.post(
            f"{server.url}/groups/{group_id}/messages",
            json={"text": f"m{n}"},
            headers=bearer(token),
        )
        assert posted.status_code == 201, posted.text

    with contextlib.ExitStack() as stack:
        first, _ = open_socket(server, token, stack)
        assert replay(first, group_id) == (list(range(1, 101)), [])
        seqs, errors = replay(first, group_id)
        assert seqs == list(range(1, 51))
        assert [error["code"] for error in errors] == [6005]
        assert "retry in" in errors[0]["info"]
        second, _ = open_socket(server, token, stack)
        seqs, errors = replay(second, group_id)
        assert seqs == [] and [error["code"] for error in errors] == [6005]
        # Live delivery goes on.
        httpx.post(
            f"{server.url}/groups/{group_id}/messages", json={"text": "new"}, headers=bearer(token)
        )
        assert json.loads(second.recv(timeout=10))["message"]["seq"] == 101
