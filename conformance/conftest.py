"""The conformance suite's target and fixtures. Configured only by these environment variables:

IM_CONFORMANCE_URL
    Base URL of a running server, up to and including `/api`
    (e.g. `http://127.0.0.1:8000/api`). Unset: the suite builds the app in-process with
    `im_api.app.create_app` (SQLite in a temporary folder, bcrypt cost 4, responses validated
    by Connexion) and talks to it through ASGI, no socket needed.
IM_CONFORMANCE_EXAMPLES
    Generated requests per operation and generation mode, and scenarios of the stateful run
    (default 25: a few minutes in all). `conformance/README.md` gives a longer local run.
IM_CONFORMANCE_SECRET_KEYS
    The live server's `IM_SECRET_KEYS` (comma-separated, newest first). Only the expired-token
    scenario needs them, to sign a token dated in the past; without them (live) it is skipped.
    In-process the suite knows the keys of the app it built.
IM_CONFORMANCE_TIMEOUT
    Seconds a request to a live server may take (default 30).
IM_TEST_DATABASE_URL
    In-process only: the database of the app (e.g. `postgresql://postgres@127.0.0.1:5432/test`),
    as for `tests/`; unset, a temporary SQLite file.

The suite never empties or resets the server's database: every user it makes has a fresh
random name, so it can run again and again against the same server.
"""

from __future__ import annotations

import pytest

from conformance import target as targets
from conformance.target import Target, Users


@pytest.fixture(scope="session")
def target() -> Target:
    return targets.current()


@pytest.fixture(autouse=True)
def _current_app(target):
    """In-process, make our app the process's current one again.

    The app factory installs its settings and signing keys process-wide, and `tests/` builds
    apps of its own in the same pytest run.
    """
    target.make_current()


@pytest.fixture
def api(target):
    """An HTTP client on the API's base URL: `api.get("/user/me")`."""
    with target.client() as client:
        yield client


@pytest.fixture
def users(api) -> Users:
    return Users(api)
