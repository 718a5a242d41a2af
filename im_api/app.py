"""The app factory: Connexion's FlaskApp for the spec and its handlers, behind the ASGI front.

uvicorn serves `create_app()` (im-api serve); tests build it with their own settings.
"""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path

from connexion import FlaskApp
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from pony.orm import db_session

from im_api import (
    clients,
    contract_files,
    cors,
    envelope,
    json_body,
    metrics_http,
    published_spec,
    speed,
)
from im_api.access_log import AccessLogMiddleware
from im_api.front import Front
from im_api.limits import BodyLimitMiddleware
from im_api.overload import RequestThreads
from im_api.rate_limit_headers import RateLimitHeaders
from im_api.readiness import Readiness
from im_api.realtime import Realtime
from im_api.request_ids import RequestIds
from im_api.validation import BODY_VALIDATORS
from im_core import config, security
from im_core.config import Settings
from models import database, stores

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"


def create_app(settings: Settings | None = None) -> RequestIds:
    """Build the app: settings from the environment unless given (tests give their own)."""
    settings = settings or Settings.from_env()
    settings.check()
    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)
    stores.for_settings(settings)  # a wrong IM_MEDIA_URL is said at start, not at an upload

    app = FlaskApp(__name__, specification_dir=SPEC_DIR, **speed.app_options(settings))
    app.add_api(
        contract_files.read(SPEC_DIR / "openapi.yaml"),  # parsed once per process
        resolver=Resolver(function_resolver=in_db_session),
        resolver_error=501,  # an operation whose handler is not written yet answers 501
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=speed.validator_map(settings, body=BODY_VALIDATORS),
        security_map=speed.security_map(settings),
        swagger_ui_options=published_spec.SERVE_SPEC_OFF,
    )
    spec = published_spec.publish(app, SPEC_DIR / "openapi.yaml")
    metrics_http.start(settings, spec)  # when a setting asks for metrics
    envelope.register_error_handlers(app)
    json_body.install(app)
    clients.install(app, settings)
    app.add_middleware(RequestThreads, MiddlewarePosition.BEFORE_CONTEXT, settings=settings)
    speed.install(app, settings)

    realtime = Realtime(settings)
    Readiness(settings, realtime).install(app.app)
    front = Front(app, settings, realtime=realtime)
    front.add_middleware(BodyLimitMiddleware, settings=settings)
    front.add_middleware(AccessLogMiddleware)  # refusals are logged too
    served = cors.CrossOrigin(front, settings)  # every answer gets CORS headers
    if settings.metrics_on:
        served = metrics_http.RequestMetrics(served, settings)
    served = RateLimitHeaders(served)  # reads what the request's limits noted
    return RequestIds(served)  # outermost: every answer, CORS's own too, has its id


def in_db_session(name: str):
    """Resolve an operation to its handler, run inside one database session.

    Connexion names the operation `<x-openapi-router-controller>.<operationId>`:
    `handlers.user.changeName` runs `handlers.user.change_name`. The operationId is the
    client's name for the operation; the module and the snake_case function are ours.

    The session commits when the handler returns, before the response is produced, so a
    failed commit becomes a clean error response instead of a half-sent one.
    """
    module, _, operation_id = name.rpartition(".")
    handler = getattr(importlib.import_module(module), snake_case(operation_id))

    @functools.wraps(handler)
    def run_in_session(*args, **kwargs):
        with db_session:
            return handler(*args, **kwargs)

    return run_in_session


def snake_case(operation_id: str) -> str:
    """`changeName` -> `change_name`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()
