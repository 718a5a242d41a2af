"""Databases for the schema and migration tests, of the kind the run uses (`IM_TEST_DATABASE_URL`).

- `Scratch`: an empty database of its own: a new SQLite file, or on PostgreSQL a database
  named after the run's one (`test_migrations` -> `test_migrations_upgrade`), dropped and
  made again, since these tests need databases Pony has not bound.
- `Release`: a fixture of a past release under `tests/fixtures/` (made by its `make.py`),
  copied into a scratch database with its media files.
- `catalog()`: a database's schema as data (tables, columns, keys, indexes, sequences), read
  from `sqlite_master` and SQLite's pragmas or from PostgreSQL's `pg_catalog`, so two schemas
  compare with `==` and a difference shows as a readable diff.
- `rows()`: every row of the tables named, for "nothing was lost" checks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def engine(url: str) -> sa.Engine:
    if is_postgres(url):  # psycopg2, the driver Pony uses (SQLAlchemy 2.1 would pick psycopg 3)
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return sa.create_engine(url, poolclass=NullPool)


class Scratch:
    """An empty database named `name`, of the run's kind."""

    def __init__(self, run_url: str, folder: Path, name: str):
        self.postgres = is_postgres(run_url)
        if self.postgres:
            parts = urlsplit(run_url)
            self.name = f"{parts.path.lstrip('/')}_{name}"
            self.url = parts._replace(path="/" + self.name).geturl()
            self._admin = parts._replace(path="/postgres").geturl()
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin_sql(f'CREATE DATABASE "{self.name}"')
        else:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / f"{name}.sqlite"
            self.url = f"sqlite:///{self.path}"

    def drop(self) -> None:
        if self.postgres:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def execute(self, sql: str, **params) -> list[tuple]:
        """Run one statement in its own transaction; its rows, if it returns any."""
        with engine(self.url).begin() as connection:
            result = connection.execute(sa.text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    def table(self, entity: str) -> str:
        """The table of an entity as Pony names it here (lower-cased on PostgreSQL)."""
        return entity.lower() if self.postgres else entity

    def _admin_sql(self, sql: str) -> None:
        with (
            engine(self._admin)
            .connect()
            .execution_options(isolation_level="AUTOCOMMIT") as connection
        ):
            connection.execute(sa.text(sql))


class Release:
    """The fixture of a past release for the run's kind of database."""

    def __init__(self, name: str, postgres: bool):
        self.folder = FIXTURES / name / ("postgres" if postgres else "sqlite")
        self.expected = json.loads((self.folder / "expected.json").read_text())
        self.tables = list(self.expected["rows"])  # the release's tables, by entity name

    def copy_into(self, scratch: Scratch, media_dir: Path) -> None:
        """Load the release's database into `scratch` and its media files into `media_dir`."""
        if scratch.postgres:
            dump = (self.folder / "dump.sql").read_text()
            connection = engine(scratch.url).raw_connection()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(dump)
                connection.commit()
            finally:
                connection.close()
        else:
            shutil.copyfile(self.folder / "im.sqlite", scratch.path)
        shutil.copytree(self.folder / "media", media_dir, dirs_exist_ok=True)

    def server_env(self) -> dict[str, str]:
        """The settings the release ran with (its test-only key, tokens that never expire)."""
        return {k: v for k, v in self.expected["settings"].items() if k != "IM_BCRYPT_ROUNDS"}


def rows(scratch: Scratch, columns: dict[str, list[str] | None]) -> dict[str, list[tuple]]:
    """Every row of each entity's table, ordered by id: the columns named, or all of them."""
    found = {}
    with engine(scratch.url).connect() as connection:
        for entity, names in columns.items():
            listed = ", ".join(f'"{name}"' for name in names) if names else "*"
            query = f'SELECT {listed} FROM "{scratch.table(entity)}" ORDER BY id'
            found[entity] = [tuple(row) for row in connection.execute(sa.text(query))]
    return found


def columns(scratch: Scratch, entities: list[str]) -> dict[str, list[str]]:
    """The columns each entity's table has now."""
    with engine(scratch.url).connect() as connection:
        inspector = sa.inspect(connection)
        return {
            entity: [column["name"] for column in inspector.get_columns(scratch.table(entity))]
            for entity in entities
        }


def counts(scratch: Scratch, entities: list[str]) -> dict[str, int]:
    with engine(scratch.url).connect() as connection:
        return {
            entity: connection.execute(
                sa.text(f'SELECT count(*) FROM "{scratch.table(entity)}"')
            ).scalar_one()
            for entity in entities
        }


def version(scratch: Scratch) -> list[str]:
    """The versions recorded in `alembic_version` (none: the table is missing or empty)."""
    with engine(scratch.url).connect() as connection:
        if "alembic_version" not in sa.inspect(connection).get_table_names():
            return []
        result = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in result]


def catalog(scratch: Scratch, without: tuple[str, ...] = ("alembic_version",)) -> dict:
    """The schema of the database, table by table (the tables in `without` left out)."""
    with engine(scratch.url).connect() as connection:
        if scratch.postgres:
            return _postgres_catalog(connection, without)
        return _sqlite_catalog(connection, without)


def _sqlite_catalog(connection, without) -> dict:
    tables = {}
    listed = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
    ).all()
    for name, sql in listed:
        if name in without or name.startswith("sqlite_"):
            continue
        pragma = connection.exec_driver_sql
        indexes = {}
        for _, index, unique, origin, partial in pragma(f'PRAGMA index_list("{name}")'):
            columns = [row[2] for row in pragma(f'PRAGMA index_info("{index}")')]
            indexes[index] = {
                "columns": columns,
                "unique": unique,
                "origin": origin,
                "partial": partial,
            }
        foreign_keys: dict[int, dict] = {}
        for key, _, target, source, to, on_update, on_delete, match in pragma(
            f'PRAGMA foreign_key_list("{name}")'
        ):
            entry = foreign_keys.setdefault(
                key,
                {
                    "table": target,
                    "from": [],
                    "to": [],
                    "on_update": on_update,
                    "on_delete": on_delete,
                    "match": match,
                },
            )
            entry["from"].append(source)
            entry["to"].append(to)
        tables[name] = {
            # (name, declared type, not null, default, position in the primary key)
            "columns": [tuple(row[1:]) for row in pragma(f'PRAGMA table_info("{name}")')],
            # AUTOINCREMENT: ids never reused (kept in sqlite_sequence).
            "autoincrement": "AUTOINCREMENT" in sql.upper(),
            "indexes": indexes,
            "foreign_keys": sorted(foreign_keys.values(), key=lambda fk: fk["from"]),
        }
    return tables


def _postgres_catalog(connection, without) -> dict:
    sql = connection.exec_driver_sql
    tables = {}
    names = [
        row[0]
        for row in sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    for name in names:
        if name in without:
            continue
        columns = sql(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %(t)s ORDER BY ordinal_position",
            {"t": name},
        ).all()
        constraints = sql(
            "SELECT c.conname, c.contype, "
            "  ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
            "        ORDER BY k.i), "
            "  c.confrelid::regclass::text, "
            "  ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n "
            "        ORDER BY k.i), "
            "  c.confupdtype, c.confdeltype, c.condeferrable "
            "FROM pg_constraint c WHERE c.conrelid = %(t)s::regclass ORDER BY c.conname",
            {"t": f'public."{name}"'},
        ).all()
        indexes = sql(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND tablename = %(t)s ORDER BY indexname",
            {"t": name},
        ).all()
        sequences = sql(
            "SELECT s.sequencename, s.data_type::text, s.start_value, s.min_value, s.max_value, "
            "  s.increment_by, s.cycle, a.attname "
            "FROM pg_sequences s "
            "JOIN pg_class sc ON sc.relname = s.sequencename "
            "JOIN pg_namespace n ON n.oid = sc.relnamespace AND n.nspname = s.schemaname "
            "JOIN pg_depend d ON d.objid = sc.oid AND d.classid = 'pg_class'::regclass "
            "  AND d.refobjid = %(t)s::regclass "
            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE s.schemaname = 'public' ORDER BY s.sequencename",
            {"t": f'public."{name}"'},
        ).all()
        tables[name] = {
            "columns": [tuple(row) for row in columns],
            "constraints": [tuple(row) for row in constraints],
            "indexes": [tuple(row) for row in indexes],
            "sequences": [tuple(row) for row in sequences],
        }
    return tables
