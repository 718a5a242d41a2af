"""Who is asking: the client address of the current request.

The address is the peer's, or, when the peer is a trusted proxy (`IM_TRUSTED_PROXIES`),
the one it names in `X-Forwarded-For` (the nearest address it did not itself get from a
trusted proxy): uvicorn's `ProxyHeadersMiddleware`, applied inside the app so that it
follows our setting and nothing else (`im-api serve` turns uvicorn's own off).
"""

from __future__ import annotations

from connexion.middleware import MiddlewarePosition
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from im_core import request_info
from im_core.config import Settings


def install(app, settings: Settings) -> None:
    """Take client addresses from trusted proxies' headers, in a Connexion `FlaskApp`."""
    app.add_middleware(
        ClientAddress,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        trusted_hosts=list(settings.trusted_proxies),
    )


class ClientAddress:
    """`ProxyHeadersMiddleware`, then the address it settled on noted in `request_info`, where
    `address()` reads it on whichever thread or path the request is handled."""

    def __init__(self, app: ASGIApp, trusted_hosts: list[str]):
        self.app = ProxyHeadersMiddleware(self.note, trusted_hosts=trusted_hosts)
        self.next_app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def note(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            request_info.note_client(client[0] if client else None)
        await self.next_app(scope, receive, send)


def address() -> str:
    """The client address of the request being handled."""
    return request_info.client() or "unknown"
