"""Every failure becomes the contract's `{code, info}` envelope: registered once on the app.

Connexion's problems (validation, security, routing, resolver), Werkzeug's routing errors,
our `ApiError`, and anything unexpected (logged, answered as a bare 500) all end here.
"""

from __future__ import annotations

import json
import logging
import re

import werkzeug.exceptions
from connexion import FlaskApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from pony.orm.dbapiprovider import OperationalError as DatabaseUnavailable
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from im_core.errors import ApiError, Error

logger = logging.getLogger(__name__)

_BY_STATUS = {
    400: Error.INVALID_REQUEST,
    401: Error.INVALID_TOKEN,
    403: Error.NOT_A_MEMBER,
    404: Error.NOT_FOUND,
    405: Error.METHOD_NOT_ALLOWED,
    413: Error.TOO_LARGE,
    415: Error.UNSUPPORTED_CONTENT_TYPE,
    501: Error.NOT_IMPLEMENTED,
    503: Error.UNAVAILABLE,
}


def json_response(status: int, body: dict, headers: dict | None = None) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps(body).encode(),
        headers=headers or {},
    )


def error_response(error: ApiError) -> ConnexionResponse:
    return json_response(error.status, error.body(), error.headers)


async def send_error(send: Send, error: ApiError, *, close: bool = False) -> None:
    """Answer `error` on a raw ASGI `send` (outside Connexion: the front, the body limit);
    `close` asks the server to close the connection after it, for a request whose body is
    not going to be read."""
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def from_problem(exc: ProblemException) -> ApiError:
    """Connexion's problem+json exceptions, in our codes."""
    # Connexion's parameter errors go on with jsonschema's dump of the schema and the value;
    # `info` is one line saying what broke.
    detail = str(exc.detail or exc.title or "").strip().split("\n", 1)[0]
    if exc.status == 401:
        if "No authorization token" in detail:
            return ApiError(Error.MISSING_TOKEN)
        return ApiError(Error.INVALID_TOKEN)
    if exc.status == 400:
        return ApiError(Error.INVALID_REQUEST, f"Invalid request: {detail}")
    if exc.status == 415:
        return ApiError(Error.UNSUPPORTED_CONTENT_TYPE, f"Unsupported Content-Type: {detail}")
    error = _BY_STATUS.get(exc.status)
    if error is None:
        logger.error("Unexpected problem %r", exc)
        return ApiError(Error.INTERNAL)
    return ApiError(error, headers=dict(exc.headers or {}))


def from_http_exception(status: int, allowed: list[str] | None = None) -> ApiError:
    error = _BY_STATUS.get(status, Error.INTERNAL)
    headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
    return ApiError(error, headers=headers)


async def handle_api_error(_request: ConnexionRequest, exc: ApiError) -> ConnexionResponse:
    return error_response(exc)


async def handle_problem(_request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    if exc.status >= 500:
        logger.error("%r", exc)
    return error_response(from_problem(exc))


class AllowedMethods:
    """The methods the contract gives each path: the `Allow` header of a 405.

    Connexion routes every operation on its own, so the router's 405 names the methods of one
    operation of the path only (`Allow: POST` for `/api/groups`, which also has GET).
    """

    def __init__(self, app: FlaskApp):
        self._app = app
        self._paths: list[tuple[re.Pattern, list[str]]] | None = None

    def __call__(self, path: str) -> list[str] | None:
        if self._paths is None:  # the specs are loaded when the app serves its first request
            # A literal path wins over a template it also matches, as in routing:
            # `/contacts/requests` is not `/contacts/{user_id}`.
            self._paths = [
                (pattern, methods)
                for _, pattern, methods in sorted(self._from_specs(), key=lambda p: p[0])
            ]
        for pattern, methods in self._paths:
            if pattern.fullmatch(path):
                return methods
        return None

    def _from_specs(self):
        for api in self._app.middleware.apis:
            spec = api.specification
            for template, item in spec.raw.get("paths", {}).items():
                methods = {method.upper() for method in item if method in _HTTP_METHODS}
                if "GET" in methods:
                    methods.add("HEAD")  # served for every GET
                yield template.count("{"), _path_pattern(spec.base_path + template), sorted(methods)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _path_pattern(template: str) -> re.Pattern:
    """`/api/groups/{group_id}` as a pattern matching its paths."""
    parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def make_starlette_http_handler(allowed_methods: AllowedMethods):
    async def handle_starlette_http(
        request: ConnexionRequest, exc: StarletteHTTPException
    ) -> ConnexionResponse:
        allowed = None
        if exc.status_code == 405:
            allowed = allowed_methods(request.scope.get("path", ""))
            if allowed is None:
                header = (exc.headers or {}).get("Allow", "")
                allowed = header.split(", ") if header else None
        return error_response(from_http_exception(exc.status_code, allowed))

    return handle_starlette_http


async def handle_unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Werkzeug's routing errors arrive here too (Connexion makes Flask propagate them)."""
    if isinstance(exc, werkzeug.exceptions.HTTPException):
        allowed = getattr(exc, "valid_methods", None)
        return error_response(from_http_exception(exc.code or 500, allowed))
    if isinstance(exc, DatabaseUnavailable):
        logger.error("Database unavailable: %s", exc)
        return error_response(ApiError(Error.UNAVAILABLE, "The database did not answer"))
    logger.error("Unhandled %s", type(exc).__name__, exc_info=exc)
    return error_response(ApiError(Error.INTERNAL))


def register_error_handlers(app: FlaskApp) -> None:
    app.add_error_handler(ApiError, handle_api_error)
    app.add_error_handler(ProblemException, handle_problem)
    app.add_error_handler(StarletteHTTPException, make_starlette_http_handler(AllowedMethods(app)))
    app.add_error_handler(Exception, handle_unexpected)
