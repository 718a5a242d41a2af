"""Connecting the one Pony `Database` (declared with the entities, unbound) when the app
starts: `bind()` brings the schema up to date, then maps the entities onto it."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from pony.orm import DBException

from im_core.config import Settings
from models import schema
from models.entities import db

logger = logging.getLogger(__name__)


def describe(settings: Settings) -> str:
    """The database in words for logs, without any password."""
    if not settings.database_url:
        return f"SQLite at {settings.sqlite_path}"
    if settings.database_url.startswith("sqlite:///"):
        return f"SQLite at {settings.database_url[len('sqlite:///') :]}"
    url = urlsplit(settings.database_url)
    return f"PostgreSQL at {url.hostname}:{url.port or 5432}{url.path}"


def bind(settings: Settings) -> None:
    """Bring the schema to the newest version (or check it is there, per
    `settings.migrate_on_start`), then bind `db` to it; once per process (Pony binds once).

    Pony only checks that the tables and columns it maps exist: the migrations own the
    schema (models.schema). Raises models.schema.SchemaError when the database cannot be
    served: a version newer than this code, behind it with migrations off on start, or
    tables that do not match the version recorded.
    """
    if db.provider is not None:
        return
    done = schema.prepare(settings)
    if done is not None and done.changed:
        logger.info("%s", done)
    path = settings.sqlite_file
    if path is None:
        db.bind(provider="postgres", dsn=settings.database_url)
    else:
        db.bind(provider="sqlite", filename=str(path), create_db=True)
        _tune_sqlite()
    try:
        db.generate_mapping(create_tables=False, check_tables=True)
    except DBException as error:
        raise schema.SchemaError(
            f"The database's tables do not match schema version {schema.HEAD}: {error}"
        ) from error
    logger.debug("Database bound: %s", describe(settings))


def is_sqlite(settings: Settings) -> bool:
    return not settings.database_url or settings.database_url.startswith("sqlite:///")


def _tune_sqlite() -> None:
    @db.on_connect(provider="sqlite")
    def _pragmas(_db, connection):
        cursor = connection.cursor()
        # WAL lets readers go on while one writer commits; the busy timeout makes a second
        # process wait for the lock instead of failing at once.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA synchronous = NORMAL")
