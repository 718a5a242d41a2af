"""Who is asking: the client address of the current request.

The address is the peer's, or, when the peer is a trusted proxy (`IM_TRUSTED_PROXIES`),
the one it names in `X-Forwarded-For` (the nearest address it did not itself get from a
trusted proxy): uvicorn's `ProxyHeadersMiddleware`, applied inside the app so that it
follows our setting and nothing else (`im-api serve` turns uvicorn's own off).
"""

from __future__ import annotations

import flask
from connexion.middleware import MiddlewarePosition
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from im_core.config import Settings


def install(app, settings: Settings) -> None:
    """Take client addresses from trusted proxies' headers, in a Connexion `FlaskApp`."""
    app.add_middleware(
        ProxyHeadersMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        trusted_hosts=list(settings.trusted_proxies),
    )


def address() -> str:
    """The client address of the request being handled."""
    return flask.request.remote_addr or "unknown"
