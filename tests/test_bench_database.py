"""The bench's PostgreSQL database: made when missing, its tables dropped, and only a
database whose name says it is the bench's (PostgreSQL runs only)."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg2
import pytest

from bench import fixtures


@pytest.fixture
def postgres_url(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("the bench's database is a PostgreSQL one (IM_TEST_DATABASE_URL)")
    return database_url


def _admin(url: str, sql: str) -> list:
    connection = psycopg2.connect(urlsplit(url)._replace(path="/postgres").geturl())
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def test_a_missing_bench_database_is_made_and_an_existing_one_emptied(postgres_url):
    name = urlsplit(postgres_url).path.lstrip("/") + "_made_bench"
    url = urlsplit(postgres_url)._replace(path="/" + name).geturl()
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        fixtures.wipe_postgres(url)
        connection = psycopg2.connect(url)
        with connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE left_over (id integer)")
        connection.close()

        fixtures.wipe_postgres(url)

        connection = psycopg2.connect(url)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            assert cursor.fetchall() == []
        connection.close()
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_not_named_for_the_bench_is_refused(postgres_url):
    with pytest.raises(SystemExit, match="must contain 'bench'"):
        fixtures.wipe_postgres(urlsplit(postgres_url)._replace(path="/test_other").geturl())
