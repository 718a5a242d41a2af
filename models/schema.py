"""The schema's version: bring a database to the newest migration, or check that it is there.

The migrations are Alembic's, in `models/migrations/versions/`; Alembic records the version
in the table `alembic_version`. A database is found in one of these states:

- empty (none of our tables): every migration runs;
- made by release 0.1.0 (its tables, no version recorded): adopted as 0001, its data
  untouched, then upgraded;
- at a version this code knows: the migrations after it run;
- at a version this code does not know: refused, since a newer release upgraded it;
- some of our tables and no version: refused, since we cannot tell what it is.

An upgrade runs in one transaction under a lock, so servers started at once migrate once:
on PostgreSQL an advisory lock (`LOCK`), on SQLite the database's write lock (`BEGIN
IMMEDIATE`). Whoever gets the lock second finds the work done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from im_core.config import Settings
from models.entities import db

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The two-key advisory lock of migrations (two keys: a space apart from the one-key locks
# of models.storage). "IM" and the issue that brought migrations.
LOCK = (0x494D, 13)
# The tables of release 0.1.0, whose databases carry no version (names lower-cased).
RELEASE_0_1_0 = frozenset(
    {"user", "session", "loginfailure", "emailcode", "group", "membership", "media", "message"}
)
ADOPTED_AS = "0001"
# How long a process waits for another one's migration (SQLite's busy timeout), in seconds.
WAIT_FOR_LOCK = 600


class SchemaError(Exception):
    """The database cannot be used at its version; the message says why and what to do."""


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


HEAD: str = _scripts().get_current_head()


@dataclasses.dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: from which version (None: no version recorded) to which."""

    before: str | None
    after: str
    adopted: bool = False  # the tables of release 0.1.0 were recorded as 0001 first

    def __str__(self) -> str:
        if self.adopted:
            done = f"adopted the tables of release 0.1.0 as {ADOPTED_AS}"
            if self.after != ADOPTED_AS:
                done += f", then upgraded from {ADOPTED_AS} to {self.after}"
        elif self.before is None:
            done = f"made version {self.after} on an empty database"
        elif self.before == self.after:
            done = f"already at {self.after}, nothing to do"
        else:
            done = f"upgraded from {self.before} to {self.after}"
        return f"Database schema: {done}"

    @property
    def changed(self) -> bool:
        return self.adopted or self.before != self.after


def upgrade(settings: Settings, target: str = "head") -> Upgrade:
    """Bring the database to `target` (the newest version unless told), under the lock.

    Raises SchemaError when the database is newer than this code or unrecognisable.
    """
    with _locked(settings) as connection:
        before, adopt = _found(connection)
        config = _config(connection)
        if adopt:
            command.stamp(config, ADOPTED_AS)
        command.upgrade(config, target)
        after = _recorded(connection)
    return Upgrade(before, after, adopt)


def check(settings: Settings) -> str:
    """The database's version if it is the newest; otherwise SchemaError says what to do."""
    engine = _engine(settings)
    try:
        with engine.connect() as connection:
            before, adopt = _found(connection)
    finally:
        engine.dispose()
    if before == HEAD:
        return HEAD
    found = "the tables of release 0.1.0 and no version" if adopt else f"version {before}"
    if before is None and not adopt:
        found = "no schema yet"
    raise SchemaError(
        f"The database has {found}; this im-api needs version {HEAD}. Run `im-api migrate`, "
        "or set IM_MIGRATE_ON_START=true to upgrade when the server starts."
    )


def version_in_use() -> str | None:
    """The version recorded in the database Pony is bound to, read in the caller's
    db_session (a readiness check: no engine of its own, the request's connection)."""
    rows = db.select("SELECT version_num FROM alembic_version")
    return rows[0] if rows else None


def prepare(settings: Settings) -> Upgrade | None:
    """What a server does on start: upgrade when `settings.migrate_on_start` (None means it
    only checked). Raises SchemaError when the database cannot be served."""
    if not settings.migrate_on_start:
        check(settings)
        return None
    return upgrade(settings)


def _found(connection: sa.Connection) -> tuple[str | None, bool]:
    """The version recorded (None: none), and whether the tables are release 0.1.0's.

    Raises SchemaError for a version this code does not know, or for some of our tables
    without a version.
    """
    tables = {name.lower() for name in sa.inspect(connection).get_table_names()}
    if "alembic_version" in tables:
        heads = MigrationContext.configure(connection).get_current_heads()
        known = {script.revision for script in _scripts().walk_revisions()}
        unknown = [version for version in heads if version not in known]
        if unknown:
            raise SchemaError(
                f"The database's schema is at version {', '.join(unknown)}, which this im-api "
                f"does not know (it knows versions up to {HEAD}): a newer release upgraded "
                "it. Run that release, or restore a backup taken before the upgrade."
            )
        if len(heads) > 1:
            raise SchemaError(f"The database records several versions: {', '.join(heads)}.")
        if heads:
            return heads[0], False
    ours = tables & RELEASE_0_1_0
    if ours == RELEASE_0_1_0:
        return None, True
    if ours:
        raise SchemaError(
            f"The database has some of im-api's tables ({', '.join(sorted(ours))}) but no "
            "schema version, so it cannot be upgraded safely. Use an empty database or one "
            "made by im-api."
        )
    return None, False


def _recorded(connection: sa.Connection) -> str:
    return MigrationContext.configure(connection).get_current_revision()


def _config(connection: sa.Connection) -> Config:
    """Alembic's configuration, made in code: where the migrations are, and the connection
    env.py runs them on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the migration lock until it ends; committed
    when the block ends, rolled back if it raises."""
    engine = _engine(settings)
    try:
        with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE, the write lock
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": LOCK[0], "b": LOCK[1]}
                )
            yield connection
    finally:
        engine.dispose()


def _engine(settings: Settings) -> sa.Engine:
    """An engine on the configured database, one connection at a time, no pool kept."""
    path = settings.sqlite_file
    if path is None:  # PostgreSQL, through psycopg2 like Pony (SQLAlchemy 2.1 prefers psycopg 3)
        url = "postgresql+psycopg2://" + settings.database_url.split("://", 1)[1]
        return sa.create_engine(url, poolclass=NullPool)
    engine = sa.create_engine(
        f"sqlite:///{path}", poolclass=NullPool, connect_args={"timeout": WAIT_FOR_LOCK}
    )

    # sqlite3 would begin transactions itself, lazily and only before DML; migrations need
    # the DDL inside the transaction too and the write lock from its start.
    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_with_the_write_lock(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
