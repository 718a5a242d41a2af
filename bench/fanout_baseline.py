"""The fan-out baseline: a bare Starlette app, the stack's limit for `python -m bench.fanout`.

The same uvicorn (event loop, HTTP and websocket protocol code) and the same socket
protocol as the API's realtime hub, with nothing else: one process, a dict of open sockets
per group, and a POST that fans a message out to them.

- `/api/ws/user/{id}/` accepts the upgrade and takes the client's frames: `auth` is taken
  without any check; `sync` looks up the user's groups in the database (the API does that
  work too) and answers `ready`; `ping` gets `pong`.
- `POST /api/groups/{id}/messages` checks the bearer token with the API's own
  `im_core.security.token_info` and runs the API's own handler (`handlers.groups.post_message`)
  in a thread inside a Pony `db_session`, as the API does: the same database work (in a
  bare Flask request context, where the handler finds the client address). Then it
  renders `{"type": "message.created", "message": ...}` once, serializes it once, and
  sends that text to every socket of the group, one after the other on the event loop.
  No per-socket queue, no hub, no replay, no authorization of the socket: that is the
  stack's limit the realtime design is measured against.

If the handler is not there (messages not written yet), the message is made up in memory
with the same shape, and the bench says the baseline did no database work.

    python -m bench.fanout_baseline --port 8002
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from datetime import datetime, timezone

import anyio
import flask
from pony.orm import db_session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from im_core import config, security
from im_core.config import Settings
from models import database

# group id: the open, synced sockets of its members
SOCKETS: dict[int, set[WebSocket]] = {}
# Pony keeps a database connection (with SQLite's page cache) per thread: syncs of many
# sockets opening at once use a few threads, not the pool's 40, or the baseline's memory per
# socket would be mostly caches. (The API's realtime store reads on 4 threads of its own.)
SYNC_THREADS = anyio.CapacityLimiter(4)


def _handler():
    try:
        from handlers.groups import post_message
    except ImportError:
        return None
    return post_message


HANDLER = _handler()
_ids = itertools.count(1)
_seqs: dict[int, itertools.count] = {}


def _groups_of(user_id: int) -> dict[int, int]:
    """The user's conversations and their last seq, read as the API's sync reads them."""
    from im_api.realtime import store

    return store.positions(user_id)


async def socket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    user_id = int(websocket.path_params["user_id"])
    joined: list[int] = []
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "sync":
                groups = await anyio.to_thread.run_sync(_groups_of, user_id, limiter=SYNC_THREADS)
                for group_id in groups:
                    SOCKETS.setdefault(group_id, set()).add(websocket)
                joined = list(groups)
                ready = {"type": "ready", "groups": {str(g): seq for g, seq in groups.items()}}
                await websocket.send_text(json.dumps(ready, separators=(",", ":")))
            elif kind == "ping":
                await websocket.send_text('{"type":"pong"}')
            # `auth` and anything else: no check, no answer.
    except (WebSocketDisconnect, ValueError):
        pass
    finally:
        for group_id in joined:
            SOCKETS.get(group_id, set()).discard(websocket)


# The handler reads the client address from Flask's request (the abuse limits count per
# address), so it runs in a bare request context of a Flask app made for that alone.
_FLASK = flask.Flask(__name__)


def _post(group_id: int, body: dict, token_info: dict, address: str) -> tuple[dict, int]:
    with _FLASK.test_request_context(environ_base={"REMOTE_ADDR": address}), db_session:
        result = HANDLER(group_id=group_id, body=body, token_info=token_info)
    answer, status = result if isinstance(result, tuple) else (result, 200)
    return answer, status


def _made_up(group_id: int, body: dict, token_info: dict, address: str) -> tuple[dict, int]:
    """The message without a database (messages not written yet): the same shape."""
    seq = next(_seqs.setdefault(group_id, itertools.count(1)))
    message = {
        "id": next(_ids),
        "group_id": group_id,
        "seq": seq,
        "kind": "text",
        "sender": {"id": 0, "name": "baseline", "avatar_url": None},
        "text": body.get("text"),
        "client_msg_id": body.get("client_msg_id"),
        "media_id": None,
        "url": None,
        "size": None,
        "content_type": None,
        "filename": None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return {"code": 0, "info": "Succeed", "message": message}, 201


async def post_message(request: Request) -> JSONResponse:
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    token_info = security.token_info(token) if kind.lower() == "bearer" and token else None
    if token_info is None:
        return JSONResponse({"code": 1004, "info": "Invalid token"}, status_code=401)
    body = json.loads(await request.body())
    group_id = int(request.path_params["group_id"])
    work = _post if HANDLER is not None else _made_up
    address = request.client.host if request.client else "unknown"
    answer, status = await anyio.to_thread.run_sync(work, group_id, body, token_info, address)
    if status == 201:  # 200 is a repeated client_msg_id: no new message, no frame
        frame = {"type": "message.created", "message": answer["message"]}
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)  # once
        for websocket in list(SOCKETS.get(group_id, ())):
            try:
                await websocket.send_text(text)
            except Exception:  # a socket closing meanwhile: its reader drops it
                SOCKETS.get(group_id, set()).discard(websocket)
    return JSONResponse(answer, status_code=status)


def _handler_of(name: str):
    try:
        import handlers.groups
    except ImportError:
        return None
    return getattr(handlers.groups, name, None)


EDIT = _handler_of("edit_message")


def _edit(group_id: int, seq: int, body: dict, token_info: dict) -> tuple[dict, int]:
    with _FLASK.test_request_context(), db_session:
        result = EDIT(group_id=group_id, seq=seq, body=body, token_info=token_info)
    answer, status = result if isinstance(result, tuple) else (result, 200)
    return answer, status


async def edit_message(request: Request) -> JSONResponse:
    """The API's own edit handler, then the new state to the group's sockets, as for posts."""
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    token_info = security.token_info(token) if kind.lower() == "bearer" and token else None
    if token_info is None or EDIT is None:
        return JSONResponse({"code": 1004, "info": "Invalid token"}, status_code=401)
    body = json.loads(await request.body())
    group_id, seq = int(request.path_params["group_id"]), int(request.path_params["seq"])
    answer, status = await anyio.to_thread.run_sync(_edit, group_id, seq, body, token_info)
    if status == 200:
        frame = {"type": "message.updated", "message": answer["message"]}
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)  # once
        for websocket in list(SOCKETS.get(group_id, ())):
            try:
                await websocket.send_text(text)
            except Exception:  # a socket closing meanwhile: its reader drops it
                SOCKETS.get(group_id, set()).discard(websocket)
    return JSONResponse(answer, status_code=status)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"code": 0, "info": "Succeed"})


def create_app() -> Starlette:
    settings = Settings.from_env()
    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)
    return Starlette(
        routes=[
            Route("/api/health", health),
            Route("/api/groups/{group_id:int}/messages", post_message, methods=["POST"]),
            Route("/api/groups/{group_id:int}/messages/{seq:int}", edit_message, methods=["PATCH"]),
            WebSocketRoute("/api/ws/user/{user_id:int}/", socket_endpoint),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the bare Starlette fan-out baseline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.workers != 1:
        print("the fan-out baseline is one process (its sockets live in it)", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper())
    settings = Settings.from_env()
    uvicorn.run(
        "bench.fanout_baseline:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        # The websocket options `im-api serve` gives uvicorn (the realtime settings, when
        # this version has them; uvicorn's defaults otherwise): the same protocol code.
        ws_max_size=getattr(settings, "ws_max_frame", 16 * 1024 * 1024),
        ws_ping_interval=getattr(settings, "ws_ping_interval", 20.0),
        ws_ping_timeout=getattr(settings, "ws_ping_timeout", 20.0),
        ws_per_message_deflate=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
