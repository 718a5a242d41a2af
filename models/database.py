"""The one Pony `Database`, declared unbound; `bind()` connects it when the app starts."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from pony.orm import Database

from im_api.config import Settings

logger = logging.getLogger(__name__)

db = Database()


def describe(settings: Settings) -> str:
    """The database in words for logs, without any password."""
    if not settings.database_url:
        return f"SQLite at {settings.sqlite_path}"
    if settings.database_url.startswith("sqlite:///"):
        return f"SQLite at {settings.database_url[len('sqlite:///') :]}"
    url = urlsplit(settings.database_url)
    return f"PostgreSQL at {url.hostname}:{url.port or 5432}{url.path}"


def bind(settings: Settings) -> None:
    """Bind `db` and create missing tables; once per process (Pony binds only once)."""
    from models import entities  # noqa: F401  (declares the entities on `db`)

    if db.provider is not None:
        return
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        db.bind(provider="postgres", dsn=url)
    elif url.startswith("sqlite:///") or not url:
        path = url[len("sqlite:///") :] if url else str(settings.sqlite_path)
        db.bind(provider="sqlite", filename=path, create_db=True)
        _tune_sqlite()
    else:
        raise ValueError("IM_DATABASE_URL must be empty, sqlite:///PATH or postgresql://...")
    db.generate_mapping(create_tables=True)
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
