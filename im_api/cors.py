"""Cross-origin access for web frontends served from another origin (`IM_CORS_ORIGINS`).

Starlette's CORSMiddleware, around the whole served app (outermost), so every answer gets
it: the API's, its errors, uploads and media downloads. Only the listed origins may call;
with none listed (the default) no CORS header is ever sent and browsers keep other origins
out. The bearer token travels in a header, never a cookie, so credentials stay off.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from im_core.config import Settings
from im_core.errors import ApiError, Error

# Headers a frontend needs to read: when to retry a 429, the media's validator and file name,
# what part of it a 206 holds, the request's id (to quote when reporting a problem), and
# where it stands against the limits (RateLimit, RateLimit-Policy).
EXPOSED = ["Retry-After", "ETag", "Content-Disposition", "Content-Range", "Accept-Ranges"]
EXPOSED += ["X-Request-ID", "RateLimit", "RateLimit-Policy"]
# Headers a frontend sends beyond the CORS-safelisted ones (Content-Type among those).
ALLOWED = ["Authorization", "Content-Type", "Range", "If-Range", "If-None-Match"]
METHODS = ["GET", "HEAD", "POST", "DELETE"]


class CrossOrigin(CORSMiddleware):
    """CORSMiddleware that answers a refused preflight in the API's envelope."""

    def __init__(self, app: ASGIApp, settings: Settings):
        super().__init__(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=METHODS,
            allow_headers=ALLOWED,
            expose_headers=EXPOSED,
            max_age=600,
        )

    def preflight_response(self, request_headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette says what it refused ("Disallowed CORS origin") in plain text.
        info = f"Invalid request: {response.body.decode(errors='replace')}"
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(
            ApiError(Error.INVALID_REQUEST, info).body(),
            status_code=response.status_code,
            headers=headers,
        )

    def test_client(self, **kwargs):
        """A client on the whole app, as served (the tests' `app.test_client()`)."""
        from starlette.testclient import TestClient  # httpx is a test dependency

        return TestClient(self, **kwargs)
