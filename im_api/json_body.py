"""A handler's JSON body is the object the validator checked: one parse, never a second.

Connexion's body validator parses the request's bytes to check them against the schema,
then hands the bytes on, and its parameter decorator has Flask parse them again for the
handler. Two parsers of one body are two chances to read it two ways (a declared charset
one honours and the other ignores, duplicate keys, a number one of them cannot hold), and
then the handler acts on an object nobody validated.

So the JSON validator (`im_api.validation.JSONBodyValidator`) leaves the object it
validated in the ASGI scope (`keep`), and the Flask request class below answers every
request for the body's JSON (`request.get_json()`, `request.json`, Connexion's
`get_body()`) with that very object. A request with no validated body (an operation whose
contract has no JSON body) gets None: nothing unchecked reaches a handler.

Built on public interfaces only (the ASGI scope, `flask.Flask.request_class`), so it holds
whether Connexion's own views or the faster ones of ours serve the request.
"""

from __future__ import annotations

import typing as t

import flask
from connexion.middleware import MiddlewarePosition
from starlette.types import ASGIApp, Receive, Scope, Send

from im_core.errors import ApiError, Error

# The key of the validated body in the ASGI scope (a2wsgi passes the scope to Flask's
# environ as `asgi.scope`).
VALIDATED = "im_api.validated_json"


def keep(scope: Scope, body: t.Any) -> None:
    """Record `body` as the request's validated JSON (the validator calls this)."""
    scope[VALIDATED] = body


class ValidatedJSONRequest(flask.Request):
    """Flask's request, whose JSON is the object the validator checked."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> t.Any:
        scope = self.environ.get("asgi.scope") or {}
        return scope.get(VALIDATED)


class OneContentType:
    """ASGI middleware: a request names its body's type once, in one spelling for all.

    Two Content-Type headers are refused (400): which one counts is for no reader to guess.
    The media type is lower-cased (it is case-insensitive, RFC 9110 §8.3.1), because Connexion
    looks up the operation's body schema, and tells JSON from other bodies, case-sensitively:
    `APPLICATION/JSON` would otherwise skip validation altogether.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            values = [value for name, value in scope["headers"] if name == b"content-type"]
            if len(values) > 1:
                raise ApiError(
                    Error.INVALID_REQUEST, "Invalid request: more than one Content-Type header"
                )
            if values:
                media_type, semicolon, parameters = values[0].partition(b";")
                if media_type != media_type.lower():
                    scope = dict(scope)
                    scope["headers"] = [
                        (name, media_type.lower() + semicolon + parameters)
                        if name == b"content-type"
                        else (name, value)
                        for name, value in scope["headers"]
                    ]
        await self.app(scope, receive, send)


def install(app) -> None:
    """Hook all of the above into a Connexion `FlaskApp` (once, from the app factory)."""
    app.app.request_class = ValidatedJSONRequest
    # After routing (so errors are answered in the envelope), before anything reads the body.
    app.add_middleware(OneContentType, position=MiddlewarePosition.BEFORE_SECURITY)
