"""The app factory: the spec, the handlers, the database session and the error envelope."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from connexion import FlaskApp
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from connexion.utils import get_function_from_name
from pony.orm import db_session

from im_api import config, envelope, security
from im_api.access_log import AccessLogMiddleware
from im_api.config import Settings
from im_api.limits import BodyLimitMiddleware
from im_api.validation import BODY_VALIDATORS
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

    app = FlaskApp(__name__, specification_dir=SPEC_DIR)
    app.add_api(
        "openapi.yaml",
        resolver=Resolver(function_resolver=in_db_session),
        # Operations whose handler is not written yet answer 501 in the envelope.
        resolver_error=501,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map={"body": BODY_VALIDATORS},
    )
    envelope.register_error_handlers(app)
    # Outermost, so that even the early 413s are logged.
    app.add_middleware(AccessLogMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        BodyLimitMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, settings=settings
    )
    return app
