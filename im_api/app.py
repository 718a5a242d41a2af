"""The app factory: the spec, the handlers, the database session and the error envelope."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import flask
from connexion import FlaskApp
from connexion.apps.flask import FlaskOperation
from connexion.datastructures import MediaTypeDict
from connexion.decorators import FlaskDecorator
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from connexion.utils import get_function_from_name, is_null, is_nullable
from connexion.validators import ParameterValidator
from jsonschema import Draft4Validator, ValidationError
from pony.orm import db_session

from im_api import config, envelope, security
from im_api.access_log import AccessLogMiddleware
from im_api.config import Settings
from im_api.limits import BodyLimitMiddleware
from im_api.validation import BODY_VALIDATORS, JSONBodyValidator
from models import database

logger = logging.getLogger(__name__)

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"


def in_db_session(name: str):
    """Resolve an operationId to its handler, run inside one database session.

    The session commits when the handler returns, before the response is produced, so a
    failed commit becomes a clean error response instead of a half-sent one.
    """
    handler = get_function_from_name(name)

    @functools.wraps(handler)
    def run_in_session(*args, **kwargs):
        with db_session:
            return handler(*args, **kwargs)

    return run_in_session


def create_app(settings: Settings | None = None) -> FlaskApp:
    """Build the app: settings from the environment unless given (tests give their own)."""
    settings = settings or Settings.from_env()
    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)

    app = FlaskApp(__name__, specification_dir=SPEC_DIR, jsonifier=COMPACT_JSON)
    app.add_api(
        "openapi.yaml",
        resolver=Resolver(function_resolver=in_db_session),
        # Operations whose handler is not written yet answer 501 in the envelope.
        resolver_error=501,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map={
            "body": with_cached_json_validator(BODY_VALIDATORS),
            "parameter": CachedParameterValidator,
        },
        security_map=security.SECURITY_MAP,
    )
    envelope.register_error_handlers(app)
    # Outermost, so that even the early 413s are logged.
    app.add_middleware(AccessLogMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        BodyLimitMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, settings=settings
    )
    app.add_wsgi_middleware(DecorateViewsOnce, flask_app=app.app)
    return app


# -- Speed --------------------------------------------------------------------------------
# Connexion's defaults rebuild, on every request, things that depend only on the spec: a
# jsonschema validator per body and per parameter, the handler's decorators with two
# signature inspections, and it pretty-prints every response. What follows does the same
# work once per operation, with the same results; bench/README.md has the measurements.

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


class CachedParameterValidator(ParameterValidator):
    """Connexion's parameter validator without a deep copy and a new validator per value."""

    def validate(self, scope) -> None:
        # An operation without parameters has nothing to check but stray query parameters.
        if not self.parameters and not scope.get("query_string"):
            return
        super().validate(scope)

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is not None:
            schema = param.get("schema", param)
            validator = _once_per_schema(
                _PARAMETER_SCHEMA_VALIDATORS,
                schema,
                lambda: Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER),
            )
            try:
                validator.validate(value)
            except ValidationError as exception:
                return str(exception)
            return None
        if param.get("required"):
            return f"Missing {parameter_type} parameter '{param['name']}'"
        return None


class FlaskDecoratorOnce(FlaskDecorator):
    """Connexion's Flask decorator, which wraps the handler anew on every request (inspecting
    its signature each time); this one wraps it once and reads each request into it."""

    def __call__(self, function):
        decorated = self.decorate(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return decorated(self.framework.get_request(uri_parser=self.uri_parser))

        return wrapper


class DecorateViewsOnce:
    """WSGI middleware that swaps Connexion's views for once-decorated ones.

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
                    decorator = FlaskDecoratorOnce(
                        pythonic_params=view.pythonic_params, jsonifier=view.jsonifier
                    )
                    views[endpoint] = decorator(view._fn)
            self.swapped = True
        return self.wsgi_app(environ, start_response)
