"""The `im-api` command."""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from importlib import metadata

from im_core.config import Settings, SettingsError

logger = logging.getLogger("im_api")

SETTINGS_HELP = """\
settings (environment variables; the README lists every one with its default):
  IM_INSTANCE_DIR    folder of the SQLite file, media, mail outbox and generated
                     secret (default ./instance)
  IM_DATABASE_URL    empty: SQLite in the instance folder;
                     postgresql://user@host:port/db for PostgreSQL
  IM_MEDIA_URL       empty: media in the instance folder; s3://bucket[/prefix]
                     [?endpoint=URL&region=NAME] for an S3-compatible bucket
                     (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)
  IM_MAIL_URL        empty: mails are written as .eml files to the outbox folder;
                     smtp://[user:password@]host[:port][?starttls=true] or
                     smtps://[user:password@]host[:port] to send them
  IM_SECRET_KEYS     comma-separated signing keys, newest first, each at least 32
                     bytes (default: one is generated on first start and kept in
                     the instance folder)
  IM_BCRYPT_ROUNDS   bcrypt cost (default 12)
  IM_TRUSTED_PROXIES addresses or networks of reverse proxies whose X-Forwarded-For
                     names the client address (default none); the abuse limits
                     (IM_LIMIT_*, see the README) count per client address
  IM_MIGRATE_ON_START
                     true (default): 'serve' upgrades the database schema on
                     start; false: it refuses a database behind this version
  IM_METRICS_PORT, IM_METRICS_HOST, IM_METRICS_PATH
                     Prometheus metrics on a port of their own (default none;
                     host 127.0.0.1) or a path of the API's port (default none)
  IM_LOG_FORMAT      text (default) or json: one JSON object per line
  IM_SEND_TIMEOUT, IM_MAX_UPLOADS_PER_ACCOUNT, IM_MIN_FREE_DISK_BYTES,
  IM_REQUEST_THREADS, IM_QUEUE_TIMEOUT, IM_RETRY_AFTER
                     what one client may hold: a stalled download, uploads at
                     once, the disk; waiting for a request thread (README: Serving)
  IM_CONNEXION_SPEEDUPS
                     false: Connexion's own code instead of im_api/speed.py
  IM_WS_AUTH_TIMEOUT, IM_WS_MAX_FRAME, IM_WS_FRAME_RATE, IM_WS_FRAME_BURST,
  IM_WS_QUEUE, IM_WS_PING_INTERVAL, IM_WS_PING_TIMEOUT
                     the realtime socket at /api/ws/user/{id}/: what one
                     connection may cost (README: Realtime)
  IM_MAX_HEADER_BYTES, IM_HEADER_TIMEOUT, IM_MAX_CONNECTIONS_PER_ADDRESS,
  IM_WS_MAX_SOCKETS_PER_USER, IM_WS_MAX_SOCKETS_PER_ADDRESS,
  IM_LIMIT_REPLAY_PER_USER, IM_MEDIA_REQUEST_THREADS
                     facing clients without a proxy: what one request, address or
                     user may hold (README: Facing the internet)
  IM_LOGIN_MAX_ACCOUNT_FAILURES, IM_LOGIN_ACCOUNT_FAILURE_WINDOW
                     failed passwords per account from every address, past which
                     only addresses it signed in from get in (default 20 an hour)
  IM_MEDIA_ORPHAN_GRACE, IM_RECONCILE_MEDIA_ON_START
                     stored media no row names (a crash mid-upload) is removed
                     after this many seconds (default 3600), on start and by
                     'im-api reconcile-media'
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="im-api",
        description="The IM account and media API: accounts, group chats and media uploads,\n"
        "served as JSON under /api with its OpenAPI contract and Swagger UI.",
        epilog=SETTINGS_HELP + "\nRun 'im-api COMMAND --help' for the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the HTTP server (uvicorn)",
        description="Start the HTTP server: the API under http://HOST:PORT/api, Swagger UI at\n"
        "/api/ui/, the spec at /api/openapi.json, liveness at /api/health. On start it logs\n"
        "where it listens, the database and the mail setting; then one line per request\n"
        "(method, path, status, time). Missing folders are created, and the database schema\n"
        "is upgraded as by 'im-api migrate', once, before the workers start (unless\n"
        "IM_MIGRATE_ON_START=false: then a database behind this version is refused). A\n"
        "database newer than this version is always refused.",
        epilog=SETTINGS_HELP + "\nexamples:\n"
        "  im-api serve                              # http://127.0.0.1:8000/api, SQLite\n"
        "  im-api serve --host 0.0.0.0 --port 8080   # reachable from other machines\n"
        "  IM_DATABASE_URL=postgresql://im@db:5432/im im-api serve --workers 4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); more than 1 needs PostgreSQL (IM_DATABASE_URL), "
        "since SQLite serves one process",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe messages logged, to stderr (default info: the start line and one "
        "line per request; warning hides both)",
    )

    commands.add_parser(
        "migrate",
        aliases=["init-db"],
        help="create the instance folder and upgrade the database schema, then exit",
        description="Create the instance folder (IM_INSTANCE_DIR) and, when IM_SECRET_KEYS is\n"
        "empty, the generated secret; then bring the database tables to the newest schema\n"
        "version and say what was done (from which version to which, or that it was\n"
        "current), then exit. An empty database gets every table; one made by release\n"
        "0.1.0 (no version recorded) is adopted as version 0001, its data untouched, then\n"
        "upgraded. A database newer than this im-api (a version it does not know) is\n"
        "refused: exit status 2, with both versions named. 'serve' does the same on start\n"
        "unless IM_MIGRATE_ON_START=false. Several processes may run it at once: one\n"
        "migrates, the others wait and find it done. 'init-db' is its former name.",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    commands.add_parser(
        "reconcile-media",
        help="remove stored media files no row names (left by a crash), then exit",
        description="Remove from the media store (the instance folder, or the S3 bucket of\n"
        "IM_MEDIA_URL) every file that no media row names and that was last written more\n"
        "than IM_MEDIA_ORPHAN_GRACE seconds ago (default 3600): what a server killed during\n"
        "an upload leaves, between storing the file and committing its row. A file a row\n"
        "names is never touched, nor one an upload under way is about to name (each removal\n"
        "takes the file's lock and looks again). Says how many files it checked and removed.\n"
        "'serve' does the same in the background as it starts, unless\n"
        "IM_RECONCILE_MEDIA_ON_START=false. Safe to run beside running servers.",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "reconcile-media":
        return _reconcile_media()
    return _migrate()


def _version() -> str:
    try:
        return metadata.version("im-api")
    except metadata.PackageNotFoundError:
        return "unknown"


def _migrate() -> int:
    from models import database, schema

    settings = Settings.from_env()
    settings.prepare_instance()
    try:
        print(schema.upgrade(settings))
    except schema.SchemaError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"Instance folder {settings.instance_dir} ready; database: {database.describe(settings)}")
    return 0


def _reconcile_media() -> int:
    from im_core import config
    from im_core.errors import ApiError
    from models import database, orphans, schema, stores

    settings = Settings.from_env()
    try:
        settings.check()
        where = stores.for_settings(settings).describe()
    except (SettingsError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    settings.prepare_instance()
    config.install(settings)
    try:
        database.bind(settings)
    except schema.SchemaError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        done = orphans.reconcile(settings.media_orphan_grace)
    except ApiError as error:
        print(f"Media store {where}: {error.info}", file=sys.stderr)
        return 1
    print(f"Media store {where}: {done}")
    return 0


def _reconcile_in_background(settings: Settings) -> None:
    """`reconcile-media` as the server starts, in a thread of this process: a large bucket
    takes a while to list, and the server need not wait for it."""
    import threading

    from im_core import config
    from models import orphans

    def run() -> None:
        try:
            done = orphans.reconcile(settings.media_orphan_grace)
        except Exception as error:  # the store is down, say: the next start tries again
            logger.warning("Media files without a row were not looked for: %s", error)
            return
        logger.info("Media store: %s", done)

    config.install(settings)
    threading.Thread(target=run, name="reconcile-media", daemon=True).start()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from im_api import metrics_http
    from models import database, schema, stores
    from models.mail import parse_mail_url

    settings = Settings.from_env()
    log_config = _log_config(args.log_level, settings.log_format)
    logging.config.dictConfig(log_config)
    try:
        settings.check()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if args.workers > 1 and database.is_sqlite(settings):
        print(
            "SQLite serves one worker; set IM_DATABASE_URL to PostgreSQL for more.", file=sys.stderr
        )
        return 2
    # A wrong IM_MEDIA_URL (or no credentials for it) is said before anything is changed.
    try:
        media = stores.for_settings(settings).describe()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if settings.media_url and not os.environ.get("IM_SECRET_KEYS"):
        logger.warning(
            "Media in %s, signing keys generated in %s: servers on other machines will not "
            "accept this one's tokens and media URLs unless IM_SECRET_KEYS is set on all",
            media,
            settings.instance_dir,
        )
    # The generated secret and the schema are made here, once, before the workers start.
    settings.prepare_instance()
    try:
        if settings.migrate_on_start:
            logger.info("%s", schema.upgrade(settings))
        # Finds the version current (with IM_MIGRATE_ON_START=false, refuses one behind);
        # then Pony checks the tables. Each worker's app does the same and finds it done.
        database.bind(settings)
    except schema.SchemaError as error:
        print(error, file=sys.stderr)
        return 2
    if settings.reconcile_media_on_start:
        _reconcile_in_background(settings)
    mail = f"outbox folder {settings.outbox_dir}"
    if settings.mail_url:
        # A wrong IM_MAIL_URL is said now, not as a 503 at the first code someone asks for.
        try:
            mail = str(parse_mail_url(settings.mail_url))
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
    # Before the workers start: they inherit the metrics folder (and never open the port).
    try:
        if metrics_http.prepare_serving(settings) and settings.metrics_port:
            logger.info(
                "Metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port
            )
    except OSError as error:
        print(f"IM_METRICS_PORT={settings.metrics_port}: {error}", file=sys.stderr)
        return 2
    logger.info(
        "Listening on http://%s:%d/api with %d worker(s); database: %s; media: %s; mail: %s; "
        "Swagger UI: http://%s:%d/api/ui/",
        args.host,
        args.port,
        args.workers,
        database.describe(settings),
        media,
        mail,
        args.host,
        args.port,
    )
    uvicorn.run(
        "im_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        # Applied again in each worker process, which does not inherit this one's logging.
        log_config=log_config,
        # im_api.access_log logs each request once, with its duration.
        access_log=False,
        # Client addresses come from X-Forwarded-For only behind IM_TRUSTED_PROXIES
        # (im_api.clients), never behind uvicorn's default of trusting 127.0.0.1.
        proxy_headers=False,
        # The realtime socket (im_api/realtime): uvicorn refuses a larger client frame itself
        # (close 1009) before reading it whole, and pings to find dead peers.
        ws_max_size=settings.ws_max_frame,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        # Compressed frames would cost a zlib context per socket (memory per idle socket),
        # and a message frame could no longer be sent as the same bytes to every socket.
        ws_per_message_deflate=False,
        # uvicorn's protocols with the header size and time and the connections per client
        # address bounded (im_api/connections.py).
        http="im_api.connections:GuardedHttpTools",
        ws="im_api.connections:GuardedWebSockets",
    )
    return 0


def _log_config(level: str, log_format: str = "text") -> dict:
    """One format on stderr for the app's and uvicorn's messages: text, or JSON lines."""
    plain = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    if log_format == "json":
        plain = {"()": "im_api.log_format.JsonLines"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": plain},
        # Every record, uvicorn's too, passes the one handler: no credential gets through.
        "filters": {"secrets": {"()": "im_api.log_secrets.RedactSecrets"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
                "filters": ["secrets"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            # Connexion says at INFO why each 401 happened; the access line is enough.
            "connexion": {"level": "DEBUG" if level == "debug" else "WARNING"},
            # One line of ours says what the migrations did (models.schema.Upgrade).
            "alembic": {"level": "DEBUG" if level == "debug" else "WARNING"},
        },
    }


if __name__ == "__main__":
    sys.exit(main())
