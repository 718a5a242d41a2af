"""JSON operations answered without the Flask bridge: the handler runs on a thread of its own
pool and its dict goes out as JSON from the event loop.

Behind Connexion's middlewares (routing, security, request validation, context: all ASGI,
so every check and every error is the same), `FlaskApp` hands each request to Flask through
a2wsgi's bridge: the scope made into a WSGI environ, the body and each part of the answer
passed between the event loop and a thread one future at a time, then Flask's routing, its
request and response objects and Connexion's view decorators. bench/README.md ("Where a
post's time goes") measured that bridge and Flask's dispatch at 38 % of a text post's Python
time, paid by every operation. Most operations need none of it: a JSON body (already parsed
by the validator), path parameters, the token's session, and a dict in return.

An operation goes this way when everything it takes is known here: only path parameters of
integer or string type, a JSON body or none, context values (`token_info`, `user`), a plain
function, one JSON media type for its answers, and the request's method is its own (HEAD is
Flask's). Any other operation or request (uploads, downloads, query parameters, a JSON body
the validator did not parse) takes the bridge, as before. The arguments are those Connexion's
parameter decorator gives, the answer the bytes `im_api.speed.OperationView` makes, errors
rise to Connexion's exception middleware as they do from Flask. `IM_CONNEXION_SPEEDUPS=false`
turns this off with the rest of `im_api.speed`.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from connexion.utils import is_json_mimetype, is_null, is_nullable
from starlette.types import ASGIApp, Receive, Scope, Send

from im_api.validation import PARSED_JSON

_CONVERTERS = {"integer": int, "string": str}
_NOT_PARSED = object()


class Plan(NamedTuple):
    """How one operation's requests are answered here."""

    function: Callable
    method: str
    path: dict[str, Callable]  # path parameter: its converter
    context_names: frozenset[str]  # context values the function takes
    body: bool  # takes the JSON body
    nullable: bool
    default: Any  # the body when none was sent
    media_type: bytes  # of the answer


def plan_for(operation) -> Plan | None:
    """The plan of a Connexion operation, or None when it takes the bridge."""
    function = operation.function
    if inspect.iscoroutinefunction(inspect.unwrap(function)):
        return None
    try:
        signature = inspect.signature(function)  # follows functools.wraps to the handler
    except (TypeError, ValueError):
        return None
    parameters = signature.parameters.values()
    if any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in parameters):
        return None
    names = set(signature.parameters)
    path = {}
    for parameter in operation.parameters:
        convert = _CONVERTERS.get(parameter.get("schema", {}).get("type"))
        if parameter.get("in") != "path" or convert is None or parameter["name"] not in names:
            return None
        path[parameter["name"]] = convert
    produces = list(set(operation.produces)) or ["application/json"]
    if len(produces) != 1 or not is_json_mimetype(produces[0]):
        return None
    body = "body" in names
    nullable, default = False, None
    if operation.request_body:
        if not body or operation.consumes != ["application/json"]:
            return None
        if "x-body-name" in operation.request_body:
            return None
        schema = operation.body_schema("application/json")
        nullable, default = is_nullable(schema), schema.get("default", {})
    elif body:
        return None
    context_names = frozenset(names - set(path) - {"body"})
    required = {n for n, p in signature.parameters.items() if p.default is p.empty}
    if not required <= set(path) | {"body", "token_info", "user"}:
        return None
    return Plan(
        function,
        operation.method.upper(),
        path,
        context_names,
        body,
        nullable,
        default,
        produces[0].encode("latin-1"),
    )


class DirectOperations:
    """ASGI app in the place of FlaskApp's bridge: the operations with a plan are answered
    here, every other request goes on to the bridge."""

    def __init__(
        self,
        bridge: ASGIApp,
        *,
        current_operation: Callable[[], Any],
        dumps: Callable[[Any], str],
        threads: int,
    ):
        self.bridge = bridge
        self.current_operation = current_operation  # Connexion's, of the request in hand
        self.dumps = dumps
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._plans: dict[int, tuple[Any, Plan | None]] = {}

    @property
    def app(self):
        """The bridge's WSGI app: `FlaskApp.add_wsgi_middleware` wraps it through here."""
        return self.bridge.app

    @app.setter
    def app(self, wsgi_app) -> None:
        self.bridge.app = wsgi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments = self._arguments(scope) if scope["type"] == "http" else None
        if arguments is None:
            await self.bridge(scope, receive, send)
            return
        function, kwargs, media_type = arguments
        result = await asyncio.get_running_loop().run_in_executor(
            self._pool(), contextvars.copy_context().run, functools.partial(function, **kwargs)
        )
        data, status = result, 200
        if type(result) is tuple and len(result) == 2 and type(result[1]) is int:
            data, status = result[0], result[1] or 200
        if type(data) is not dict:
            raise TypeError(f"{function.__name__} answered {type(data).__name__}, not a dict")
        body = (self.dumps(data) + "\n").encode()
        headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _arguments(self, scope: Scope):
        """(function, its keyword arguments, answer's media type), or None for the bridge."""
        if not scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id"):
            return None  # not an operation of the spec (Flask's own routes, unknown paths)
        operation = self.current_operation()
        entry = self._plans.get(id(operation))
        if entry is None or entry[0] is not operation:
            entry = self._plans[id(operation)] = (operation, plan_for(operation))
        plan = entry[1]
        if plan is None or scope["method"] != plan.method:
            return None
        kwargs = {}
        path_values = scope.get("path_params", {})
        try:
            for name, convert in plan.path.items():
                kwargs[name] = convert(path_values[name])
        except (KeyError, ValueError):
            return None
        if plan.body:
            body = scope.get(PARSED_JSON, _NOT_PARSED)
            if body is _NOT_PARSED:
                return None  # no JSON body parsed: Connexion's own reading decides
            if plan.nullable and is_null(body):
                body = None
            elif body is None:
                body = copy.deepcopy(plan.default)
            kwargs["body"] = body
        given = scope.get("extensions", {}).get("connexion_context", {})
        for name in plan.context_names:
            if name in given:
                kwargs[name] = given[name]
        return plan.function, kwargs, plan.media_type

    def _pool(self) -> ThreadPoolExecutor:
        # Made on first use, in the serving process (after any fork).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="im-direct")
        return self._executor
