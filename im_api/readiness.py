"""Readiness: whether this worker can serve, part by part, for a load balancer to act on
(`GET /api/health/ready`). Liveness (`/api/health`) stays the cheap check it was.

The parts:

* database: a query answers;
* schema: the database is at the version this code needs (another release may have
  upgraded it, or `IM_MIGRATE_ON_START=false` left it behind);
* media: the store can be used (the folder is there and writable; the bucket answers within
  `IM_READY_TIMEOUT`);
* listener: the realtime endpoint hears committed events (PostgreSQL: its LISTEN
  connection is open); `idle` before it was started (an app not served by `im-api serve`
  starts it with its first socket), which does not stop the worker from serving.
"""

from __future__ import annotations

import flask
from pony.orm import rollback
from pony.orm.dbapiprovider import InterfaceError, OperationalError

from im_core.config import Settings
from models import schema, stores

OK = "ok"
IDLE = "idle"
PASSING = (OK, IDLE)
_KEY = "im_api.readiness"


class Readiness:
    def __init__(self, settings: Settings, realtime):
        self.settings = settings
        self.realtime = realtime

    def install(self, app: flask.Flask) -> None:
        app.config[_KEY] = self

    def check(self) -> dict[str, str]:
        """Each part, `ok` (or `idle`) or why not, in order; inside a db_session."""
        checks = dict(self._database_and_schema())
        store = stores.for_settings(self.settings)
        checks["media"] = store.unreachable(self.settings.ready_timeout) or OK
        checks["listener"] = self._listener()
        return checks

    def _database_and_schema(self):
        try:
            version = schema.version_in_use()
        except (OperationalError, InterfaceError):
            rollback()
            yield "database", "did not answer"
            yield "schema", "not checked"
            return
        yield "database", OK
        if version != schema.HEAD:
            yield "schema", f"the database is at {version}, this server needs {schema.HEAD}"
        else:
            yield "schema", OK

    def _listener(self) -> str:
        source = getattr(self.realtime, "source", None)
        if source is None:
            return IDLE
        return OK if source.ready.is_set() else "not connected"


def current() -> Readiness:
    """The readiness of the app serving the current request."""
    return flask.current_app.config[_KEY]


def failing(checks: dict[str, str]) -> list[str]:
    """The parts that failed, as `part (why)`; a part not checked (it needed a failing one)
    is not named."""
    return [
        f"{part} ({why})" for part, why in checks.items() if why not in (*PASSING, "not checked")
    ]
