"""The baseline: a bare Flask app doing the same database work as the API, without Connexion.

Each route parses the request by hand (JSON body, bearer token, path and query values),
checks the token with the same `im_core.security.token_info`, and calls the very handler
function the API routes to (`handlers.user.change_name`, ...) inside one Pony `db_session`,
exactly as `im_api.app.in_db_session` does. So the database work is identical by
construction (for change_name: verify the token, load the session, rename the user,
commit), and what the comparison measures is everything Connexion adds around it: routing,
the middleware stack, request validation against the spec, the security middleware, the
parameter decorator and the response serialization. A handler that is not written yet
answers 501 here too.

Uploads are the exception: the API streams the file part to a spool before its handler
runs (`im_api.uploads`, an ASGI body validator), which a bare Flask app has not got. Here
Werkzeug parses the multipart body (it spools files to temporary files) and the view copies
the part into the same kind of spool, then does the handler's database work: the session,
the membership, the message (`models.messages.send`).

Served like the API: the Flask WSGI app wrapped by `a2wsgi.WSGIMiddleware` with its default
thread pool (what `connexion.FlaskApp` does) and run by `uvicorn.run` with the same host,
port, worker and log options as `im-api serve`:

    python -m bench.baseline_app --port 8001 --workers 1
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys

from a2wsgi import WSGIMiddleware
from flask import Flask, jsonify, request
from pony.orm import db_session
from werkzeug.exceptions import HTTPException

from im_api.limits import limit_for
from im_core import config, security
from im_core.config import Settings
from im_core.errors import ApiError, Error
from models import database

# route, methods, the handler the spec routes it to, whether it needs the bearer token
ROUTES = [
    ("/api/health", ["GET"], "handlers.health.check_health", False),
    ("/api/user/me", ["GET"], "handlers.user.get_me", True),
    ("/api/user/change_name", ["POST"], "handlers.user.change_name", True),
    ("/api/user/login", ["POST"], "handlers.user.login", False),
    ("/api/user/register", ["POST"], "handlers.user.register", False),
    ("/api/groups", ["GET"], "handlers.groups.list_my_groups", True),
    ("/api/groups/<int:group_id>/messages", ["GET"], "handlers.groups.list_messages", True),
    ("/api/groups/<int:group_id>/upload_file", ["POST"], "handlers.media.upload_file", True),
]

# Query parameters with their spec defaults, as Connexion would pass them.
QUERY_DEFAULTS = {"limit": 50, "cursor": None}


def upload_file(group_id, token_info):
    """The bare-Flask upload: Werkzeug's multipart parsing, then what `handlers.media` does."""
    from models import groups, messages, sessions, throttle
    from models.spool import Spool

    limit = config.current().max_file_bytes
    part = request.files.get("file")
    if part is None:
        raise ApiError(Error.MISSING_PART, part="file")
    spool = Spool()
    try:
        for chunk in iter(lambda: part.stream.read(1024 * 1024), b""):
            spool.write(chunk)
            if spool.size > limit:
                raise ApiError(Error.MEDIA_TOO_LARGE, part="file", limit=limit)
        spool.close()
        throttle.spend_upload(request.remote_addr or "unknown", sessions.active(token_info).user.id)
        sender = sessions.active(token_info).user
        group = groups.of_member(group_id, sender)
        message = messages.send(group, sender, "file", spool, part.filename or "")
        return {"code": 0, "info": "Succeed", **messages.uploaded(message)}, 201
    finally:
        spool.discard()  # nothing happens once the spool was kept


# Operations the baseline serves with a view of its own instead of the API's handler.
OWN_VIEWS = {"handlers.media.upload_file": upload_file}


def _resolve(operation_id: str):
    if operation_id in OWN_VIEWS:
        return OWN_VIEWS[operation_id]
    module_name, _, function_name = operation_id.rpartition(".")
    try:
        module = __import__(module_name, fromlist=[function_name])
        return getattr(module, function_name)
    except (ImportError, AttributeError):
        return None


def _view(operation_id: str, needs_token: bool, settings: Settings):
    handler = _resolve(operation_id)
    accepted = set(inspect.signature(handler).parameters) if handler else set()

    def view(**path_values):
        limit = limit_for(request.path, settings)
        if (request.content_length or 0) > limit:
            raise ApiError(Error.TOO_LARGE, f"Request body too large: the limit is {limit} bytes")
        if handler is None:
            raise ApiError(Error.NOT_IMPLEMENTED)
        kwargs = dict(path_values)
        if needs_token:
            kind, _, token = request.headers.get("Authorization", "").partition(" ")
            if kind.lower() != "bearer" or not token:
                raise ApiError(Error.MISSING_TOKEN)
            token_info = security.token_info(token)
            if token_info is None:
                raise ApiError(Error.INVALID_TOKEN)
            kwargs["token_info"] = token_info
        if "body" in accepted:
            if request.mimetype == "multipart/form-data":
                kwargs["body"] = request.form.to_dict()
            else:
                body = request.get_json(silent=True)
                if not isinstance(body, dict):
                    raise ApiError(Error.MALFORMED_BODY)
                kwargs["body"] = body
        for name, default in QUERY_DEFAULTS.items():
            if name in accepted:
                value = request.args.get(name, default)
                kwargs[name] = int(value) if name == "limit" else value
        for name, storage in request.files.items():
            if name in accepted:
                kwargs[name] = storage
        kwargs = {name: value for name, value in kwargs.items() if name in accepted}
        with db_session:
            result = handler(**kwargs)
        body, status = result if isinstance(result, tuple) else (result, 200)
        return jsonify(body), status

    view.__name__ = operation_id.replace(".", "_")
    return view


def create_flask_app(settings: Settings | None = None) -> Flask:
    """The bare Flask app, configured exactly as `im_api.app.create_app` configures the API."""
    settings = settings or Settings.from_env()
    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)

    app = Flask(__name__)
    for rule, methods, operation_id, needs_token in ROUTES:
        view = _view(operation_id, needs_token, settings)
        app.add_url_rule(rule, view_func=view, methods=methods)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body()), error.status, error.headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        code = {404: Error.NOT_FOUND, 405: Error.METHOD_NOT_ALLOWED, 413: Error.TOO_LARGE}
        return jsonify(ApiError(code.get(status, Error.INVALID_REQUEST)).body()), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        logging.getLogger(__name__).error("Unhandled %s", type(error).__name__, exc_info=error)
        return jsonify(ApiError(Error.INTERNAL).body()), 500

    return app


def create_asgi_app() -> WSGIMiddleware:
    """What uvicorn serves: the WSGI app behind a2wsgi, as `connexion.FlaskApp` does."""
    return WSGIMiddleware(create_flask_app().wsgi_app)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the bare Flask baseline with uvicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    settings = Settings.from_env()
    if args.workers > 1 and database.is_sqlite(settings):
        print("SQLite serves one worker; set IM_DATABASE_URL to PostgreSQL.", file=sys.stderr)
        return 2
    settings.prepare_instance()
    database.bind(settings)
    uvicorn.run(
        "bench.baseline_app:create_asgi_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # as im-api serve, whose app logs each request itself
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
