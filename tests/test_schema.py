"""The schema belongs to the migrations in models/migrations/ (Alembic): what they make, what
`im-api migrate` and `im-api serve` do with a database at each version, and the lock that
lets several servers start on one database at once.

Every test runs on the run's kind of database (IM_TEST_DATABASE_URL), in scratch databases of
its own (tests/databases.py), never in the one Pony has bound for the other tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from databases import Release, Scratch, catalog, columns, engine, rows, version

from im_core.config import Settings

RELEASE = "release_0_1_0"


def head() -> str:
    from models import schema

    return schema.HEAD


def upgrade(scratch: Scratch, tmp_path: Path, target: str = "head") -> None:
    from models import schema

    settings = Settings.from_env(environ={}, instance_dir=tmp_path / "x", database_url=scratch.url)
    schema.upgrade(settings, target=target)


def im_api(*args: str, scratch: Scratch, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    """Run `im-api ARGS` on the scratch database; `serve` on a free port."""
    if args[0] == "serve":
        args = (*args, "--port", "0")  # any free port, should it start
    return subprocess.run(
        [sys.executable, "-m", "im_api.cli", *args],
        env={
            **os.environ,
            "IM_INSTANCE_DIR": str(tmp_path / "instance"),
            "IM_DATABASE_URL": scratch.url,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def scratch(tmp_path, database_url):
    database = Scratch(database_url, tmp_path, "scratch")
    yield database
    database.drop()


@pytest.fixture
def release(tmp_path, database_url):
    """A copy of the database release 0.1.0 made (tables, no version), with its media."""
    database = Scratch(database_url, tmp_path, "release")
    Release(RELEASE, database.postgres).copy_into(database, tmp_path / "instance" / "media")
    yield database
    database.drop()


# -- What the migrations make --------------------------------------------------------------


def test_migration_0001_makes_exactly_the_tables_release_0_1_0_made(scratch, release, tmp_path):
    """Table for table, column for column: types, nullability, keys, indexes, sequences."""
    upgrade(scratch, tmp_path, target="0001")
    assert catalog(scratch) == catalog(release)


def test_the_newest_schema_is_the_one_pony_maps_the_entities_to(scratch, tmp_path, database_url):
    """What Pony's create_tables would make for today's entities, but for one known gap."""
    upgrade(scratch, tmp_path)
    pony = Scratch(database_url, tmp_path, "pony")
    try:
        _tables_made_by_pony(pony)
        expected = catalog(pony)
    finally:
        pony.drop()
    if scratch.postgres:
        # Pony 0.7 makes every auto id SERIAL (PGColumn.auto_template), whatever its size;
        # `size=64` ids are BIGINT with a bigint sequence, as migration 0002 made them.
        for table in expected.values():
            table["columns"] = [
                ("id", "bigint", *column[2:]) if column[0] == "id" else column
                for column in table["columns"]
            ]
            table["sequences"] = [
                (name, "bigint", start, low, 2**63 - 1, *rest)
                for name, _, start, low, _, *rest in table["sequences"]
            ]
    assert catalog(scratch) == expected


def test_ids_and_the_columns_that_point_at_them_are_64_bit(scratch, tmp_path):
    upgrade(scratch, tmp_path)
    described = catalog(scratch)
    if scratch.postgres:
        integer_columns = [
            (table, column[0], column[1])
            for table, facts in described.items()
            for column in facts["columns"]
            if column[1] in ("integer", "bigint") and column[0] not in ("wrong_tries",)
        ]
        assert {kind for *_, kind in integer_columns} == {"bigint"}, integer_columns
        sequences = [s for facts in described.values() for s in facts["sequences"]]
        assert len(sequences) == len(described)
        assert {(s[1], s[4]) for s in sequences} == {("bigint", 2**63 - 1)}
    else:
        # SQLite's INTEGER PRIMARY KEY is the 64-bit rowid; only that exact type is one.
        for facts in described.values():
            assert facts["columns"][0] == ("id", "INTEGER", 0, None, 1)
            assert facts["autoincrement"]


# -- im-api migrate ------------------------------------------------------------------------


def test_migrate_makes_the_schema_of_an_empty_database_and_says_so(scratch, tmp_path):
    result = im_api("migrate", scratch=scratch, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"made version {head()} on an empty database" in result.stdout
    assert version(scratch) == [head()]


def test_migrate_upgrades_a_database_behind_and_says_from_which_version(scratch, tmp_path):
    upgrade(scratch, tmp_path, target="0001")
    result = im_api("migrate", scratch=scratch, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"upgraded from 0001 to {head()}" in result.stdout
    assert version(scratch) == [head()]


def test_migrate_on_a_current_database_does_nothing(scratch, tmp_path):
    upgrade(scratch, tmp_path)
    ddl = DdlLog(scratch) if scratch.postgres else None
    before = _fingerprint(scratch)
    result = im_api("migrate", scratch=scratch, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"already at {head()}" in result.stdout
    assert _fingerprint(scratch) == before
    if ddl:
        assert ddl.attempts() == 0


def test_migrate_adopts_a_database_of_release_0_1_0_without_touching_its_rows(release, tmp_path):
    """Tables and no version: recognised as release 0.1.0, stamped 0001, then upgraded."""
    tables = columns(release, Release(RELEASE, release.postgres).tables)
    before = rows(release, tables)
    result = im_api("migrate", scratch=release, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "adopted the tables of release 0.1.0 as 0001" in result.stdout
    assert f"upgraded from 0001 to {head()}" in result.stdout
    assert rows(release, tables) == before
    assert version(release) == [head()]


def test_migrate_refuses_a_database_with_some_of_our_tables_and_no_version(scratch, tmp_path):
    scratch.execute(f'CREATE TABLE "{scratch.table("User")}" (id INTEGER PRIMARY KEY)')
    result = im_api("migrate", scratch=scratch, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "no schema version" in result.stderr
    assert version(scratch) == []


def test_a_migration_that_fails_leaves_the_database_as_it_was(scratch, tmp_path, monkeypatch):
    """All the migrations of an upgrade run in one transaction, DDL included (on SQLite too)."""
    from models import schema

    upgrade(scratch, tmp_path)
    before = catalog(scratch)
    migrations = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "9001_breaks_halfway.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa
            from alembic import op

            revision, down_revision = "9001", {head()!r}

            def upgrade():
                op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
                op.add_column({scratch.table("User")!r}, sa.Column("nickname", sa.String(16)))
                raise RuntimeError("the migration breaks halfway")
            """
        )
    )
    monkeypatch.setattr(schema, "MIGRATIONS", migrations)
    settings = Settings.from_env(environ={}, instance_dir=tmp_path / "x", database_url=scratch.url)
    with pytest.raises(RuntimeError, match="breaks halfway"):
        schema.upgrade(settings)
    assert version(scratch) == [head()]
    assert catalog(scratch) == before


# -- A database newer than the code, or behind it ------------------------------------------


@pytest.mark.parametrize(
    "command, env",
    [
        (["migrate"], {}),
        (["serve"], {}),
        (["serve"], {"IM_MIGRATE_ON_START": "false"}),
    ],
    ids=["migrate", "serve", "serve-without-migrating"],
)
def test_a_database_newer_than_the_code_is_refused_naming_both_versions(
    scratch, tmp_path, command, env
):
    upgrade(scratch, tmp_path)
    scratch.execute("UPDATE alembic_version SET version_num = '0999'")
    before = catalog(scratch)
    result = im_api(*command, scratch=scratch, tmp_path=tmp_path, **env)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "0999" in message and head() in message, message
    assert "Traceback" not in result.stderr
    assert version(scratch) == ["0999"] and catalog(scratch) == before


@pytest.mark.parametrize(
    "at, said",
    [(None, "no schema yet"), ("0001", "version 0001"), (RELEASE, "tables of release 0.1.0")],
    ids=["empty", "at-0001", "release-0.1.0"],
)
def test_serve_without_migrating_refuses_a_database_behind(scratch, tmp_path, at, said):
    if at == RELEASE:
        Release(RELEASE, scratch.postgres).copy_into(scratch, tmp_path / "instance" / "media")
    elif at:
        upgrade(scratch, tmp_path, target=at)
    before = catalog(scratch)
    result = im_api("serve", scratch=scratch, tmp_path=tmp_path, IM_MIGRATE_ON_START="false")
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert said in message and f"needs version {head()}" in message, message
    assert "im-api migrate" in message and "IM_MIGRATE_ON_START" in message
    assert catalog(scratch) == before


def test_serve_upgrades_a_database_behind_on_start(scratch, tmp_path, new_server):
    upgrade(scratch, tmp_path, target="0001")
    server = new_server(tmp_path / "instance", scratch.url, log_level="info").start()
    assert version(scratch) == [head()]
    assert f"upgraded from 0001 to {head()}" in server.log.read_text()


def test_pony_reports_a_missing_table_and_never_creates_it(scratch, tmp_path):
    upgrade(scratch, tmp_path)
    table = scratch.table("LoginFailure")
    scratch.execute(f'DROP TABLE "{table}"')
    result = im_api("serve", scratch=scratch, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert table in result.stderr and "Traceback" not in result.stderr
    assert table not in catalog(scratch)


# -- Several servers at once -----------------------------------------------------------------


def test_two_servers_started_at_once_on_an_empty_database_make_the_schema_once(
    scratch, tmp_path, new_server
):
    """Both wait at the migration lock, are let go together, and both come up; the schema
    was made once: on PostgreSQL every DDL command ran once, from one connection, and none
    was tried again (an event trigger counts them); one server says it made the schema,
    the other that it found it current."""
    ddl = DdlLog(scratch) if scratch.postgres else None
    servers = [
        new_server(tmp_path / name / "instance", scratch.url, log_level="info")
        for name in ("a", "b")
    ]
    with MigrationLock(scratch):
        for server in servers:
            server.launch()
        MigrationLock.wait_for_waiters(scratch, servers)
    logs = [server.wait_ready().log.read_text() for server in servers]
    made = [log for log in logs if f"made version {head()} on an empty database" in log]
    found = [log for log in logs if f"already at {head()}" in log]
    assert (len(made), len(found)) == (1, 1), logs
    assert version(scratch) == [head()]
    if ddl:
        tables = ddl.made("CREATE TABLE")
        assert sorted(tables) == sorted(set(tables))  # no table made twice
        assert len(tables) == len(catalog(scratch)) + 1  # and alembic_version
        assert ddl.attempts() == ddl.statements(), "a DDL statement was tried and undone"
        assert len(ddl.connections()) == 1


# -- The command line ------------------------------------------------------------------------


def test_help_names_migrate_and_its_setting():
    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "im_api.cli", *args], capture_output=True, text=True, check=True
        ).stdout

    assert re.search(r"\bmigrate\b", cli("--help"))
    text = cli("migrate", "--help")
    assert "IM_MIGRATE_ON_START" in text and "newer" in text
    assert "IM_MIGRATE_ON_START" in cli("serve", "--help")


# -- Helpers ---------------------------------------------------------------------------------


def _tables_made_by_pony(scratch: Scratch) -> None:
    """Let Pony make the tables of today's entities in `scratch` (in a process of its own:
    Pony binds one database per process)."""
    if scratch.postgres:
        bind = f"db.bind(provider='postgres', dsn={scratch.url!r})"
    else:
        bind = f"db.bind(provider='sqlite', filename={str(scratch.path)!r}, create_db=True)"
    script = textwrap.dedent(
        f"""
        from models.entities import db
        from models import entities
        {bind}
        db.generate_mapping(create_tables=True)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def _fingerprint(scratch: Scratch):
    """What would change if anything were written: the SQLite file's bytes, or on
    PostgreSQL the schema, the version and the transaction counter of every table."""
    if not scratch.postgres:
        return hashlib.sha256(scratch.path.read_bytes()).hexdigest()
    stats = scratch.execute(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
        "WHERE schemaname = 'public' ORDER BY relname"
    )
    return catalog(scratch, without=()), version(scratch), stats


class DdlLog:
    """PostgreSQL event triggers that keep every DDL statement run on the database.

    `audit.statements` holds the statements that committed, with the connection (backend
    pid) that ran them, and `audit.objects` what they made; the sequence `audit.tries` counts
    every statement begun, committed or rolled back (sequences ignore rollbacks), so one that
    failed or was undone shows as a difference.
    """

    def __init__(self, scratch: Scratch):
        self.scratch = scratch
        scratch.execute(
            "CREATE SCHEMA audit;"
            "CREATE SEQUENCE audit.tries;"
            "CREATE TABLE audit.statements (tag text, pid int DEFAULT pg_backend_pid());"
            "CREATE TABLE audit.objects (tag text, object text);"
            "CREATE FUNCTION audit.begun() RETURNS event_trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM nextval('audit.tries'); END $$;"
            "CREATE FUNCTION audit.done() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO audit.statements (tag) VALUES (TG_TAG); "
            "INSERT INTO audit.objects SELECT command_tag, object_identity "
            "FROM pg_event_trigger_ddl_commands(); END $$;"
            "CREATE EVENT TRIGGER ddl_begun ON ddl_command_start EXECUTE FUNCTION audit.begun();"
            "CREATE EVENT TRIGGER ddl_done ON ddl_command_end EXECUTE FUNCTION audit.done();"
        )
        self.baseline = self._tries()

    def _tries(self) -> int:
        [(value, called)] = self.scratch.execute("SELECT last_value, is_called FROM audit.tries")
        return value if called else 0

    def attempts(self) -> int:
        """DDL statements begun since the log was set up."""
        return self._tries() - self.baseline

    def statements(self) -> int:
        """DDL statements that ran and committed."""
        return self.scratch.execute("SELECT count(*) FROM audit.statements")[0][0]

    def made(self, tag: str) -> list[str]:
        """The objects made by committed statements, e.g. `made("CREATE TABLE")`."""
        found = self.scratch.execute("SELECT object FROM audit.objects WHERE tag = :t", t=tag)
        return [object_ for (object_,) in found]

    def connections(self) -> set[int]:
        return {pid for (pid,) in self.scratch.execute("SELECT pid FROM audit.statements")}


class MigrationLock:
    """Hold the lock migrations take, so processes started meanwhile queue behind it."""

    def __init__(self, scratch: Scratch):
        self.scratch = scratch

    def __enter__(self):
        from models import schema

        self.connection = engine(self.scratch.url).connect()
        if self.scratch.postgres:
            self.connection.execute(
                sa.text("SELECT pg_advisory_lock(:a, :b)"),
                {"a": schema.LOCK[0], "b": schema.LOCK[1]},
            )
        else:
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's write lock
        return self

    def __exit__(self, *exc):
        self.connection.rollback()
        self.connection.close()

    @staticmethod
    def wait_for_waiters(scratch: Scratch, servers: list, timeout=30) -> None:
        """Until every server waits for the lock (seen in pg_locks; on SQLite, which shows
        no waiters, until each has been up long enough to reach it)."""
        deadline = time.monotonic() + timeout
        if not scratch.postgres:
            time.sleep(5)
            return
        from models import schema

        while time.monotonic() < deadline:
            [(waiting,)] = scratch.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = :a AND objid = :b AND objsubid = 2 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                a=schema.LOCK[0],
                b=schema.LOCK[1],
            )
            if waiting == len(servers):
                return
            for server in servers:
                assert server.process.poll() is None, server.log.read_text()
            time.sleep(0.1)
        raise AssertionError("the servers never waited for the migration lock")
