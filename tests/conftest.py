"""Fixtures: each test gets a fresh app, empty tables, its own instance folder and a client.

The database is the one `IM_TEST_DATABASE_URL` names: a temporary SQLite file made by the
root conftest.py unless it is set to a PostgreSQL server
(`postgresql://postgres@127.0.0.1:5432/test`): the same suite runs on both. Its tables are
made by the migrations, as a server's are, when the first app is built. Pony binds one
database per process, so tables are emptied between tests instead of a new database made.

The media store is the instance folder unless `IM_TEST_MEDIA_STORE=s3`: then every test's
app keeps media in a bucket of a real S3 endpoint (moto's server mode on loopback, started
once for the run), under a prefix of its own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pony.orm import db_session
from s3_endpoint import MotoEndpoint

from im_api.app import create_app
from im_core.config import Settings
from models.entities import db


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["IM_TEST_DATABASE_URL"]


class Clock:
    """A clock tests move by hand instead of sleeping."""

    def __init__(self):
        self.now = datetime(2026, 11, 20, 8, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


MEDIA_STORES = ("folder", "s3")


@pytest.fixture(scope="session")
def media_store() -> str:
    """Where the tests' apps keep media: `folder` (default) or `s3`."""
    store = os.environ.get("IM_TEST_MEDIA_STORE") or "folder"
    if store not in MEDIA_STORES:
        raise pytest.UsageError(f"IM_TEST_MEDIA_STORE must be one of {MEDIA_STORES}")
    return store


@pytest.fixture(scope="session")
def s3():
    """A real S3 endpoint on loopback (moto's server mode), one for the whole run."""
    endpoint = MotoEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def shared_bucket(media_store, request) -> str | None:
    if media_store != "s3":
        return None
    return request.getfixturevalue("s3").new_bucket()


@pytest.fixture
def media_url(media_store, shared_bucket, request) -> str:
    """The test's `IM_MEDIA_URL`: empty (the folder), or its own prefix of the shared bucket."""
    if media_store != "s3":
        return ""
    s3 = request.getfixturevalue("s3")
    return s3.media_url(shared_bucket, prefix=f"t-{uuid.uuid4().hex[:12]}/media")


@pytest.fixture
def settings(tmp_path, database_url, clock, media_url) -> Settings:
    return Settings.from_env(
        environ={},
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        media_url=media_url,
        bcrypt_rounds=4,
        validate_responses=True,
        clock=clock,
    )


class StoredMedia:
    """What the app's media store holds, looked at from outside the app."""

    def __init__(self, settings: Settings, s3: MotoEndpoint | None):
        self.settings = settings
        self.s3 = s3
        if settings.media_url:
            location = urlsplit(settings.media_url)
            self.bucket = location.hostname
            self.prefix = location.path.strip("/") + "/" if location.path.strip("/") else ""

    def hashes(self) -> list[str]:
        """The hashes stored, sorted (the folder's spool folder left out)."""
        if not self.settings.media_url:
            folder = self.settings.media_dir
            return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        return [key[len(self.prefix) :] for key in self.s3.keys(self.bucket, self.prefix)]

    def read(self, sha256: str) -> bytes:
        if not self.settings.media_url:
            return (self.settings.media_dir / sha256).read_bytes()
        return self.s3.read(self.bucket, self.prefix + sha256)


@pytest.fixture
def stored(settings, request) -> StoredMedia:
    s3 = request.getfixturevalue("s3") if settings.media_url else None
    return StoredMedia(settings, s3)


def empty_tables() -> None:
    with db_session:
        if db.provider_name == "postgres":
            tables = ", ".join(f'"{entity._table_}"' for entity in db.entities.values())
            db.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        else:
            for entity in reversed(_by_dependency()):
                db.execute(f'DELETE FROM "{entity._table_}"')


def _by_dependency() -> list:
    """Entities ordered so that each comes after the ones it refers to."""
    ordered: list = []
    pending = list(db.entities.values())
    while pending:
        for entity in pending:
            needs = {
                attr.py_type
                for attr in entity._attrs_
                if attr.is_relation and not attr.is_collection and attr.py_type is not entity
            }
            if needs <= set(ordered):
                ordered.append(entity)
                pending.remove(entity)
                break
        else:  # a cycle (User <-> Media): the rest in any order
            ordered.extend(pending)
            break
    return ordered


@pytest.fixture
def app(settings):
    application = create_app(settings)
    empty_tables()
    return application


def connexion_app(app):
    """The Connexion `FlaskApp` inside what `create_app` returns (the front, CORS around it)."""
    from connexion import FlaskApp

    while not isinstance(app, FlaskApp):
        app = getattr(app, "api", None) or app.app
    return app


@pytest.fixture
def client(app):
    with app.test_client() as test_client:
        yield test_client


class Auth:
    """Register and log in users through the API, as a client would."""

    def __init__(self, client):
        self.client = client

    def register(self, name: str = "alice", password: str = "correct horse", **extra) -> dict:
        response = self.client.post(
            "/api/user/register", json={"name": name, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def login(self, name: str = "alice", password: str = "correct horse") -> str:
        response = self.client.post("/api/user/login", json={"name": name, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    @staticmethod
    def header(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def new_user(self, name: str = "alice", password: str = "correct horse") -> dict:
        """Register `name`; returns headers carrying its token."""
        return self.header(self.register(name, password)["token"])


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """A real `im-api serve` process on a free loopback port."""

    def __init__(
        self,
        instance_dir: Path,
        database_url: str,
        workers: int = 1,
        log_level: str = "warning",
        **env,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.instance_dir = instance_dir
        self.env = {
            **os.environ,
            "IM_INSTANCE_DIR": str(instance_dir),
            "IM_DATABASE_URL": database_url,
            "IM_BCRYPT_ROUNDS": "4",
            **env,
        }
        self.workers = workers
        self.log_level = log_level
        self.log = instance_dir.parent / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> LiveServer:
        """Start the server and wait until it answers."""
        return self.launch().wait_ready()

    def launch(self) -> LiveServer:
        """Start the server process without waiting for it."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "im_api.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            self.log_level,
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        return self

    def wait_ready(self, timeout: float = 30) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def new_server():
    """Make `LiveServer`s (arguments as its own), not started; all are stopped after the test."""
    made: list[LiveServer] = []

    def make(*args, **kwargs) -> LiveServer:
        made.append(LiveServer(*args, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def served_database(tmp_path, database_url) -> str:
    """The test database, emptied for servers of their own to use; returns its URL."""
    # This process binds the test database only to empty it; servers have their own process.
    create_app(
        Settings.from_env(environ={}, instance_dir=tmp_path / "parent", database_url=database_url)
    )
    empty_tables()
    return database_url


# The abuse limits (IM_LIMIT_*) off, and the caps on connections and sockets at once per
# client address and user (0: none): servers of tests that do not check them, whose every
# client is on loopback.
NO_LIMITS = {
    **{
        f"IM_{field.name.upper()}": ""
        for field in dataclasses.fields(Settings)
        if field.name.startswith("limit_")
    },
    "IM_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "IM_WS_MAX_SOCKETS_PER_USER": "0",
    "IM_WS_MAX_SOCKETS_PER_ADDRESS": "0",
}


@pytest.fixture
def serve(tmp_path, served_database, media_url):
    """Starts `im-api serve` on the test database (emptied first) and the test's media store,
    with extra settings: `serve(IM_SEND_TIMEOUT="1")`. Two workers on PostgreSQL, one on
    SQLite, unless given; the limits of `NO_LIMITS` off unless given."""
    database_url = served_database
    servers: list[LiveServer] = []
    # Tests of limits configure their own; these may register many users from loopback.
    no_limits = NO_LIMITS

    def start(workers: int | None = None, **env: str) -> LiveServer:
        if workers is None:
            workers = 1 if database_url.startswith("sqlite") else 2
        instance = tmp_path / f"server{len(servers)}" / "instance"
        env = {"IM_MEDIA_URL": media_url, **no_limits, **env}
        servers.append(LiveServer(instance, database_url, workers=workers, **env))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(serve):
    """A served app on the test database (emptied first) and the test's media store."""
    return serve()


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> LiveServer:
    """A real `im-api serve` on an SQLite file of its own, for tools that read the spec it
    publishes (/api/openapi.json): generators, linters."""
    server = LiveServer(tmp_path_factory.mktemp("published") / "instance", "").start()
    yield server
    server.stop()
