"""Speed: the one module that knows Connexion's internals, and a switch that turns it off.

Connexion's defaults rebuild, on every request, things that depend only on the spec: a
jsonschema validator per body and per parameter, the handler's decorators with two
signature inspections, the bearer check's inspection of its function, a router pass for
Swagger UI; they pretty-print every response and read a JSON body twice. What follows does
the same work once per operation, with the same results; bench/README.md has the
measurements. It subclasses Connexion's classes and overrides some of their private methods,
so a new Connexion release may need it adapted: with `IM_CONNEXION_SPEEDUPS=false` the app
runs on Connexion's own code throughout (the conformance suite runs both ways).

The app factory asks four things of it: `app_options` (for `FlaskApp`), `validator_map` and
`security_map` (for `add_api`), and `install` (once the API is added).
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging

import flask
from connexion import FlaskApp
from connexion.apps.flask import FlaskOperation
from connexion.context import context, operation
from connexion.datastructures import MediaTypeDict
from connexion.decorators import FlaskDecorator
from connexion.decorators.parameter import CONTEXT_NAME, unwrap_decorators
from connexion.decorators.response import SyncResponseDecorator
from connexion.frameworks.flask import Flask as FlaskFramework
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.jsonifier import Jsonifier
from connexion.lifecycle import ConnexionResponse
from connexion.middleware import ConnexionMiddleware
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.security import BearerSecurityHandler
from connexion.utils import (
    inspect_function_arguments,
    is_json_mimetype,
    is_null,
    is_nullable,
    split_content_type,
)
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match
from starlette.types import Receive, Scope, Send

from im_api.direct import DirectOperations
from im_api.overload import BRIDGE_THREADS
from im_api.paths import route_path
from im_api.validation import PARSED_JSON, FieldParameterValidator, JSONBodyValidator
from im_core.config import Settings

logger = logging.getLogger(__name__)


def app_options(settings: Settings) -> dict:
    """Keyword arguments of `FlaskApp`: compact JSON and the faster middlewares."""
    if not settings.connexion_speedups:
        return {}
    # A copy: Connexion inserts the middlewares added later into the very list it is given.
    return {"jsonifier": COMPACT_JSON, "middlewares": list(MIDDLEWARES)}


def validator_map(settings: Settings, *, body: MediaTypeDict) -> dict:
    """`add_api`'s validator map: the `body` validators given, and our parameter validation
    (every offending parameter in `errors`); with the speedups, their jsonschema validators
    are built once per schema."""
    if not settings.connexion_speedups:
        return {"body": body, "parameter": FieldParameterValidator}
    return {"body": with_cached_json_validator(body), "parameter": CachedParameterValidator}


def security_map(settings: Settings) -> dict | None:
    """`add_api`'s security map: the bearer check without its per-request inspection."""
    if not settings.connexion_speedups:
        return None
    return {"bearer": CachedBearerSecurityHandler}


def install(app: FlaskApp, settings: Settings) -> None:
    """The short paths for JSON operations, once the API is added: `DirectOperations` answers
    those it can without Flask, `OperationView` shortens Flask's path for the others."""
    if settings.connexion_speedups:
        app.add_wsgi_middleware(OperationViews, flask_app=app.app)
        # Connexion's app behind its middlewares: the Flask bridge (`FlaskASGIApp.asgi_app`).
        bridge = app._middleware_app
        bridge.asgi_app = DirectOperations(
            bridge.asgi_app,
            current_operation=operation._get_current_object,  # the object, not its proxy
            dumps=functools.partial(app.app.json.dumps, separators=(",", ":")),
            threads=BRIDGE_THREADS,
        )


class CachedBearerSecurityHandler(BearerSecurityHandler):
    """Connexion's bearer check, without inspecting `token_info`'s signature per request.

    Connexion asks twice per request whether the check function takes `required_scopes` or
    `request`; the answer never changes, so it is worked out once per function.
    """

    @staticmethod
    @functools.cache
    def _accepts_kwarg(func, keyword: str) -> bool:
        arguments, has_kwargs = inspect_function_arguments(func)
        return has_kwargs or keyword in arguments


# Compact responses: the same JSON (Flask's provider: sorted keys, ASCII) without indent=2.
COMPACT_JSON = Jsonifier(flask.json, separators=(",", ":"))


def _once_per_schema(cache: dict, schema: dict, build):
    """`build()` made once per schema object of the loaded spec (they live as long as it)."""
    entry = cache.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(cache) > 4096:  # never reached by one spec; bounds a misuse
            cache.clear()
        entry = cache[id(schema)] = (schema, build())
    return entry[1]


_BODY_SCHEMA_VALIDATORS: dict = {}
_PARAMETER_SCHEMA_VALIDATORS: dict = {}


def with_cached_json_validator(validators: MediaTypeDict) -> MediaTypeDict:
    """The body validators, the JSON one building its jsonschema validator once per schema."""

    class CachedJSONBodyValidator(JSONBodyValidator):
        @property
        def _validator(self):
            build = functools.partial(JSONBodyValidator._validator.fget, self)
            return _once_per_schema(_BODY_SCHEMA_VALIDATORS, self._schema, build)

    return MediaTypeDict(
        {
            media_type: CachedJSONBodyValidator if validator is JSONBodyValidator else validator
            for media_type, validator in validators.items()
        }
    )


class CachedParameterValidator(FieldParameterValidator):
    """Our parameter validator with a jsonschema validator built once per schema, not a new
    one per value."""

    def validate(self, scope) -> None:
        # An operation without parameters has nothing to check but stray query parameters.
        if not self.parameters and not scope.get("query_string"):
            return
        super().validate(scope)

    def schema_error(self, schema: dict, value):
        validator = _once_per_schema(
            _PARAMETER_SCHEMA_VALIDATORS,
            schema,
            lambda: Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER),
        )
        return best_match(validator.iter_errors(value))


class CachedRequestValidationOperation(RequestValidationOperation):
    """Connexion's request validation, with what depends only on the operation (URI parser,
    parameter validator) and on the media type (accepted or not, body schema, validator
    class) worked out once instead of on every request. The checks and their errors are
    Connexion's own."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation = self._operation
        parsers = self.__dict__.get("_parsers")
        if parsers is None:
            uri_parser = operation._uri_parser_class(
                operation.parameters, operation.body_definition()
            )
            parameter_validator = self._validator_map["parameter"](
                operation.parameters,
                uri_parser=uri_parser,
                strict_validation=self.strict_validation,
                security_query_params=self.security_query_params,
            )
            parsers = self._parsers = (uri_parser, parameter_validator, {})
        uri_parser, parameter_validator, by_media_type = parsers
        parameter_validator.validate(scope)

        mime_type, encoding = self.extract_content_type(scope["headers"])
        body = by_media_type.get(mime_type)
        if body is None:
            self.validate_mime_type(mime_type)  # raises for a type the operation refuses
            schema = operation.body_schema(mime_type)
            validator_class = self._validator_map["body"].get(mime_type) if schema else None
            if validator_class is None and schema:
                logger.info("No body validator registered for %s", mime_type)
            required = operation.request_body.get("required", False)
            nullable = is_nullable(operation.body_definition(mime_type))
            body = (schema, validator_class, required, nullable)
            if len(by_media_type) < 64:  # the types a client may send are not bounded
                by_media_type[mime_type] = body
        schema, validator_class, required, nullable = body
        if schema and validator_class is not None:
            validator = validator_class(
                schema=schema,
                required=required,
                nullable=nullable,
                encoding=encoding,
                strict_validation=self.strict_validation,
                uri_parser=uri_parser,
            )
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)

    def extract_content_type(self, headers) -> tuple[str, str]:
        # Connexion's, without its per-call typing constructs: the first Content-Type header.
        content_type = None
        for name, value in headers:
            if name.decode("latin-1").lower() == "content-type":
                content_type = value.decode("latin-1")
                break
        mime_type, encoding = split_content_type(content_type)
        if mime_type is None:
            consumes = self._operation.consumes
            mime_type = consumes[0] if consumes else "application/octet-stream"
        return mime_type, encoding or "utf-8"


class CachedRequestValidationAPI(RequestValidationAPI):
    def make_operation(self, operation) -> CachedRequestValidationOperation:
        return CachedRequestValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class CachedRequestValidationMiddleware(RequestValidationMiddleware):
    api_cls = CachedRequestValidationAPI


class SwaggerUIWhenAsked(SwaggerUIMiddleware):
    """Connexion's Swagger UI middleware sends every request through its router (a mount
    per API, a route per UI file) only to hand it on unmatched; a request whose path cannot
    match any of those routes goes on directly."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefixes = self.__dict__.get("_prefixes")
            if prefixes is None:
                prefixes = self._prefixes = tuple(
                    mount.path + route.path.split("{", 1)[0]
                    for mount in self.router.routes
                    for route in mount.routes
                )
            if not route_path(scope).startswith(prefixes):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


_FASTER = {
    RequestValidationMiddleware: CachedRequestValidationMiddleware,
    SwaggerUIMiddleware: SwaggerUIWhenAsked,
}
MIDDLEWARES = [
    _FASTER.get(middleware, middleware) for middleware in ConnexionMiddleware.default_middlewares
]


class FlaskDecoratorOnce(FlaskDecorator):
    """Connexion's Flask decorator, which wraps the handler anew on every request (inspecting
    its signature each time); this one wraps it once and reads each request into it."""

    def __call__(self, function):
        decorated = self.decorate(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return decorated(self.framework.get_request(uri_parser=self.uri_parser))

        return wrapper


_UNPARSED = object()


class OperationView:
    """The Flask view of one operation: Connexion's decorator, decorated once, with a short
    path for the operations most requests go to.

    An operation without parameters whose handler takes only `body` (a JSON body) and
    context values (`token_info`, `user`) gets its arguments as Connexion's parameter
    decorator would give them (same body reading, same default body, same context), without
    the URI parser, form and file parsing and per-request schema lookups that its generic
    path goes through. Any other operation, or request, takes Connexion's path.
    """

    def __init__(self, view: FlaskOperation):
        self.function = view._fn
        self.pythonic_params = view.pythonic_params
        self.connexion_path = FlaskDecoratorOnce(
            pythonic_params=view.pythonic_params, jsonifier=view.jsonifier
        )(view._fn)
        self.responses = SyncResponseDecorator(framework=FlaskFramework, jsonifier=view.jsonifier)
        self.plan: dict | bool | None = None  # decided on the first call, once Connexion's
        # context names the operation

    def _plan(self) -> dict | bool:
        arguments, has_kwargs = inspect_function_arguments(unwrap_decorators(self.function))
        if (
            self.pythonic_params
            or has_kwargs
            or operation.parameters
            or CONTEXT_NAME in arguments
            or inspect.iscoroutinefunction(self.function)
        ):
            return False
        plan = {"arguments": frozenset(arguments), "body": "body" in arguments}
        # The one media type a dict answer gets, when Connexion would infer a JSON one.
        produces = list(set(operation.produces)) or ["application/json"]
        plan["json"] = produces[0] if len(produces) == 1 and is_json_mimetype(produces[0]) else None
        if plan["body"]:
            if (
                operation.consumes != ["application/json"]
                or "x-body-name" in operation.request_body
            ):
                return False
            schema = operation.body_schema("application/json")
            plan["nullable"] = is_nullable(schema)
            plan["default"] = schema.get("default", {})
        return plan

    def __call__(self, **view_args):
        plan = self.plan
        if plan is None:
            plan = self.plan = self._plan()
        if plan is False or view_args:
            return self.connexion_path(**view_args)
        kwargs = {}
        if plan["body"]:
            request = flask.request
            if is_json_mimetype(request.content_type):
                # The validator parsed it already; reading it again through a2wsgi would
                # cost a round trip to the event loop.
                body = request.environ.get("asgi.scope", {}).get(PARSED_JSON, _UNPARSED)
                if body is _UNPARSED:
                    body = request.get_json(silent=True)
            elif request.mimetype in FORM_CONTENT_TYPES:
                return self.connexion_path(**view_args)
            else:
                body = request.get_data() or None
            if plan["nullable"] and is_null(body):
                body = None
            elif body is None:
                body = copy.deepcopy(plan["default"])
            kwargs["body"] = body
        arguments = plan["arguments"]
        for key, value in context.items():
            if key in arguments:
                kwargs[key] = value
        result = self.function(**kwargs)
        if plan["json"]:
            # Connexion's answer to a dict or a (dict, status): JSON with the one media type.
            data, status = result, 200
            if type(result) is tuple and len(result) == 2 and type(result[1]) is int:
                data, status = result[0], result[1] or 200
            if type(data) is dict:
                content_type = plan["json"]
                return flask.current_app.response_class(
                    response=self.responses.jsonifier.dumps(data),
                    status=status,
                    mimetype=content_type,
                    headers={"Content-Type": content_type},
                )
        if FlaskFramework.is_framework_response(result):
            return result
        if isinstance(result, ConnexionResponse):
            return FlaskFramework.connexion_to_framework_response(result)
        return self.responses.build_framework_response(result)


class OperationViews:
    """WSGI middleware that puts an `OperationView` in place of each of Connexion's views.

    Connexion registers its views when the first request builds its middleware stack, so
    the swap happens on the first request that reaches Flask.
    """

    def __init__(self, wsgi_app, flask_app: flask.Flask):
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.swapped = False

    def __call__(self, environ, start_response):
        if not self.swapped:
            views = self.flask_app.view_functions
            for endpoint, view in list(views.items()):
                if isinstance(view, FlaskOperation):
                    views[endpoint] = OperationView(view)
            self.swapped = True
        return self.wsgi_app(environ, start_response)
