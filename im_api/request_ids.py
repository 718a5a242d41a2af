"""Request ids: `X-Request-ID` taken from the request when it is one we keep (bounded,
validated: `im_core.request_info`), otherwise made; answered on every response, and known
to log lines and error envelopes while the request is served.

Outermost in the served app, outside CORS, so every answer carries it (a refused preflight
too). A client may choose its id: it correlates lines, it proves nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_core import request_info

HEADER = b"x-request-id"


class RequestIds:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        request_id = request_info.id_from(given)
        answered = (HEADER, request_id.encode())
        # Connexion notes the operation it routed to in the scope's `extensions`, on its own
        # copy of the scope: a dict made here is the one every copy shares, so the access
        # log and the metrics read the operation afterwards (`paths.operation_id`).
        scope = {**scope, "extensions": dict(scope.get("extensions") or {})}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), answered]}
            await send(message)

        token = request_info.begin(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_info.end(token)

    def test_client(self, **kwargs):
        """A client on the whole app, as served (the tests' `app.test_client()`)."""
        from starlette.testclient import TestClient  # httpx is a test dependency

        return TestClient(self, **kwargs)
