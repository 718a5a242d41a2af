"""GET /api/health/ready: whether this worker can serve, each part checked and the failing
ones named, for a load balancer; liveness (`/api/health`) stays as cheap as it was.

Spec: `/health/ready` (`checkReady`) and its `Ready` and `NotReady` responses. What the live
servers add (a media store or a database that stops answering, the PostgreSQL listener) is
in tests/test_operating_live.py.
"""

from __future__ import annotations

import contextlib
import shutil
import time

from pony.orm import db_session

from models.entities import db
from models.schema import HEAD


def ready_once_listening(client, within: float = 10.0):
    """The answer of /health/ready once the worker's listener is connected: on PostgreSQL a
    worker opens its LISTEN connection in the background as it starts, and says `listener
    (not connected)` until then (a load balancer waits that out too). On a busy machine the
    first request can come first."""
    deadline = time.monotonic() + within
    while True:
        response = client.get("/api/health/ready")
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        assert response.json()["info"] == "Not ready: listener (not connected)", response.text
        time.sleep(0.05)


def test_a_worker_that_can_serve_is_ready_and_says_what_it_checked(client):
    response = ready_once_listening(client)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "code": 0,
        "info": "Succeed",
        "database": "ok",
        "schema": "ok",
        "media": "ok",
        "listener": "ok",
    }


@contextlib.contextmanager
def recorded_version(version: str):
    """The database says it is at `version` for the block's duration."""
    with db_session:
        db.execute("UPDATE alembic_version SET version_num = $version", {"version": version})
    try:
        yield
    finally:
        with db_session:
            db.execute("UPDATE alembic_version SET version_num = $head", {"head": HEAD})


def test_a_database_at_another_schema_version_is_not_ready_and_named(client):
    ready_once_listening(client)  # so that the schema is the one part named
    with recorded_version("9999"):
        response = client.get("/api/health/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == 1012
    assert body["info"] == f"Not ready: schema (the database is at 9999, this server needs {HEAD})"
    assert body["request_id"] == response.headers["x-request-id"]
    # Liveness stays up: the process runs and its database answers.
    assert client.get("/api/health").status_code == 200


def test_a_media_folder_that_went_is_not_ready_and_named(client, settings):
    if settings.media_url:
        return  # S3: tests/test_operating_live.py stops the store instead
    ready_once_listening(client)  # so that the media folder is the one part named
    shutil.rmtree(settings.media_dir)
    response = client.get("/api/health/ready")
    assert response.status_code == 503, response.text
    assert response.json()["info"] == "Not ready: media (the media folder is not there)"


def test_readiness_answers_the_request_id_header(client):
    response = client.get("/api/health/ready", headers={"X-Request-ID": "lb-probe-1"})
    assert response.headers["x-request-id"] == "lb-probe-1"
