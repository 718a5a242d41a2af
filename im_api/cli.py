"""The `im-api` command."""

from __future__ import annotations

import argparse
import logging
import sys

from im_api.config import Settings

logger = logging.getLogger("im_api")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="im-api",
        description="The IM account and media API. Settings come from IM_* environment "
        "variables (see the README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the server (uvicorn)",
        description="Start the server. SQLite serves one worker; use IM_DATABASE_URL "
        "(PostgreSQL) for several.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )

    commands.add_parser(
        "init-db",
        help="create the instance folder and the database tables, then exit",
        description="Create the instance folder, the generated secret and the tables.",
    )

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _init_db()


def _init_db() -> int:
    from models import database

    settings = Settings.from_env()
    settings.prepare_instance()
    database.bind(settings)
    print(f"Instance folder {settings.instance_dir} ready; database: {database.describe(settings)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from models import database

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    if args.workers > 1 and database.is_sqlite(settings):
        print(
            "SQLite serves one worker; set IM_DATABASE_URL to PostgreSQL for more.", file=sys.stderr
        )
        return 2
    # Tables and the generated secret are made once here, not raced by the workers.
    settings.prepare_instance()
    database.bind(settings)
    mail = settings.mail_url or f"outbox folder {settings.outbox_dir}"
    logger.info(
        "Listening on http://%s:%d/api with %d worker(s); database: %s; mail: %s; "
        "Swagger UI: http://%s:%d/api/ui/",
        args.host,
        args.port,
        args.workers,
        database.describe(settings),
        _redact(mail),
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
    )
    return 0


def _redact(url: str) -> str:
    """A mail URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


if __name__ == "__main__":
    sys.exit(main())
