"""The served app: a small ASGI front, and Connexion's FlaskApp behind it."""

from __future__ import annotations

from connexion import FlaskApp
from starlette.types import ASGIApp, Receive, Scope, Send

from im_api.admission import UploadAdmission
from im_api.downloads import MediaDownloads
from im_api.overload import MEDIA_STORE
from im_api.paths import MEDIA_PREFIX, WEBSOCKET, route_path, upload_kind
from im_core.config import Settings


class Front:
    """Routes by scope type and path what must not hold one of the Flask bridge's few
    request threads, and hands everything else, lifespan included, to the API untouched.

    * websockets at /api/ws/user/{id}/ go to the realtime endpoint (`im_api.realtime`; a
      front built without one closes them with 4404), whose startup and shutdown run
      around the API's lifespan when it has them;
    * GET and HEAD /api/media/{id}: the API answers the headers, the file's bytes are sent
      from the event loop with a send timeout (`im_api.downloads`);
    * uploads are admitted on their headers before their body is read (`im_api.admission`).

    Downloads and uploads are marked as using the media store (`im_api.overload`): only a
    few of them hold request threads at once, so a stalled store never holds them all.

    `add_middleware` wraps the whole front (each one added outside the previous ones), so
    body limits, the access log or CORS see every request, those the front answers too.
    """

    def __init__(self, api: FlaskApp, settings: Settings, *, realtime: ASGIApp | None = None):
        self.api = api
        self.realtime = realtime or close_4404
        self.downloads = MediaDownloads(api, settings)
        self.uploads = UploadAdmission(api, settings)
        self.app: ASGIApp = self.route

    def add_middleware(self, middleware_class, **options) -> None:
        self.app = middleware_class(self.app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.api
        if scope["type"] == "http":
            path, method = route_path(scope), scope["method"]
            if method in ("GET", "HEAD") and path.startswith(MEDIA_PREFIX):
                app = self.downloads
                scope[MEDIA_STORE] = True  # its request thread waits on the store
            elif method == "POST" and upload_kind(path):
                app = self.uploads
                scope[MEDIA_STORE] = True
        elif scope["type"] == "websocket":
            app = self.realtime if WEBSOCKET.fullmatch(route_path(scope)) else refuse_websocket
        elif scope["type"] == "lifespan" and hasattr(self.realtime, "lifespan"):
            return await self.realtime.lifespan(self.api, scope, receive, send)
        await app(scope, receive, send)

    def test_client(self, **kwargs):
        """A Starlette test client of the whole front, as `FlaskApp.test_client()` gives."""
        from starlette.testclient import TestClient  # needs httpx, a test dependency

        return TestClient(self, **kwargs)


async def refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """A websocket anywhere else: the upgrade is refused (the server answers 403)."""
    await send({"type": "websocket.close", "code": 1008})


async def close_4404(scope: Scope, receive: Receive, send: Send) -> None:
    """The realtime endpoint until there is one: accept the socket and close it with 4404, so
    a client learns the channel does not exist yet (a refused upgrade carries no code)."""
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4404, "reason": "No realtime channel yet"})
