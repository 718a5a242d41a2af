"""Request body size limits, enforced before anything reads the body.

A declared Content-Length over the limit is answered 413 without reading a byte, and a
body without one (chunked) is cut off as soon as it passes the limit. An upload's limit is
its kind's (`max_<kind>_bytes`, plus room for the multipart framing) and its 413 says
MEDIA_TOO_LARGE with the kind's limit; the upload validator (`im_api.uploads`) enforces the
exact limit on the file part itself while streaming it to disk.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_api import uploads
from im_api.envelope import send_error
from im_api.paths import route_path, upload_kind
from im_core import metrics
from im_core.config import Settings
from im_core.errors import ApiError, Error

# Room for the multipart framing around the file (boundaries, part headers, filename).
MULTIPART_OVERHEAD = 64 * 1024


def limit_for(path: str, settings: Settings) -> int:
    kind = upload_kind(path)
    if kind is None:
        return settings.max_json_bytes
    return getattr(settings, f"max_{kind}_bytes") + MULTIPART_OVERHEAD


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(Error.TOO_LARGE, f"Request body too large: the limit is {limit} bytes")


def too_large(path: str, settings: Settings) -> ApiError:
    """The 413 of a body over the path's limit (counted as a refusal of `body_size`)."""
    metrics.refused("body_size")
    kind = upload_kind(path)
    if kind is None:
        return BodyTooLarge(settings.max_json_bytes)
    return ApiError(Error.MEDIA_TOO_LARGE, part=kind, limit=getattr(settings, f"max_{kind}_bytes"))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        limit = limit_for(path, self.settings)
        declared = content_length(scope)
        if declared == "invalid":
            malformed = ApiError(Error.MALFORMED_BODY, "Malformed Content-Length header")
            await send_error(send, malformed, close=True)
            return
        if declared is not None and declared > limit:
            # Refused before the body is read; the client may still be sending it.
            await send_error(send, too_large(path, self.settings), close=True)
            return
        spools: list = []
        try:
            await self.app(
                {**scope, uploads.SPOOLS: spools},
                _counting(receive, limit, lambda: too_large(path, self.settings)),
                send,
            )
        finally:
            uploads.discard_all(spools)


def content_length(scope: Scope) -> int | None | str:
    """The declared body length; None without one, "invalid" for a bad or ambiguous one."""
    values = [v for k, v in scope["headers"] if k == b"content-length"]
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isdigit() or len(values[0]) > 18:
        return "invalid"
    return int(values[0])


def _counting(receive: Receive, limit: int, error) -> Receive:
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                # Raised inside Connexion's stack, so its exception handler answers 413.
                raise error()
        return message

    return receive_within_limit
