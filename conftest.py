"""Shared by tests/ and conformance/: one test database for the whole pytest run.

Pony binds one database per process, so whichever part of the run builds an app first
decides it for all. Naming it here, before any app is built, keeps the in-process apps and
the live servers the tests start on the same database (a temporary SQLite file unless
`IM_TEST_DATABASE_URL` names one, e.g. PostgreSQL).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def pytest_configure(config):
    if not os.environ.get("IM_TEST_DATABASE_URL"):
        folder = tempfile.mkdtemp(prefix="im-test-db-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["IM_TEST_DATABASE_URL"] = f"sqlite:///{folder}/test.sqlite"
