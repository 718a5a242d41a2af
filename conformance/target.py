"""The server under test: a live one named by `IM_CONFORMANCE_URL`, or the app built in-process.

Everything the suite knows about the server comes from here: its base URL, an HTTP client on
it, the contract it must keep, and, when known, its signing keys (only the expired-token test
needs them).
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"
IN_PROCESS_BASE_URL = "http://testserver/api"
PASSWORD = "conformance password"
TIMEOUT = float(os.environ.get("IM_CONFORMANCE_TIMEOUT", "30"))


@dataclass
class Target:
    """Where the suite sends its requests."""

    base_url: str
    app: Any | None = None  # the ASGI app in-process; None for a live server
    secret_keys: list[str] = field(default_factory=list)
    settings: Any | None = None  # in-process: the app's `im_core.config.Settings`

    @property
    def is_live(self) -> bool:
        return self.app is None

    def make_current(self) -> None:
        """In-process: install our app's settings and keys process-wide (the factory did once)."""
        if self.settings is None:
            return
        from im_core import config, security

        config.install(self.settings)
        security.configure(self.settings)

    def client(self) -> httpx.Client:
        """A new HTTP client whose relative URLs start at the API's base (`/api`).

        Each request it sends comes from a client address of its own (`X-Forwarded-For`)
        unless it names one: see `client_address`.
        """
        if self.app is None:
            client = httpx.Client(base_url=self.base_url, timeout=TIMEOUT)
        else:
            from starlette.testclient import TestClient

            # A server exception must reach the suite as the 500 a client would see.
            client = TestClient(self.app, base_url=self.base_url, raise_server_exceptions=False)
        client.event_hooks = {"request": [_from_an_address_of_its_own]}
        return client

    def load_schema(self) -> schemathesis.BaseSchema:
        """The contract in `openapi/`, aimed at this server."""
        return _aimed(schemathesis.openapi.from_path(SPEC_PATH), self.base_url, self.app)


class _DeferredApp:
    """The in-process app, built on its first request rather than when tests are collected.

    Building it binds the process's one database; `tests/` must get to bind its own first
    when it runs first.
    """

    async def __call__(self, scope, receive, send):
        await current().app(scope, receive, send)


def contract_schema() -> schemathesis.BaseSchema:
    """The contract, aimed at the process's target (`current()`), without building it yet."""
    url = _live_url()
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    return _aimed(schema, url, None if url else _DeferredApp())


def _aimed(schema, base_url: str, app):
    if app is None:
        schema.config.update(base_url=base_url)
    else:
        schema.app = app
    schema.hook("map_headers")(_without_transport_headers)
    return schema


# Headers that frame or route the HTTP message, not API data. A generated value there (say
# `Transfer-Encoding: 9`) makes a request no HTTP server can parse: uvicorn answers its own
# text/plain 400 before the app sees it, which says nothing about the contract.
TRANSPORT_HEADERS = frozenset(
    {"connection", "content-length", "expect", "host", "keep-alive", "proxy-connection"}
    | {"te", "trailer", "transfer-encoding", "upgrade"}
)


def _without_transport_headers(context, headers):
    if not headers:
        return headers
    return {name: value for name, value in headers.items() if name.lower() not in TRANSPORT_HEADERS}


def client_address() -> str:
    """A client address no other request of the suite uses (IPv6 documentation prefix).

    The suite sends each request from its own address, in `X-Forwarded-For`, so that the
    server's limits per client address (POST /user/register and the like) count the
    requests of one scenario only: the server must trust the suite's host as a proxy
    (`IM_TRUSTED_PROXIES`; `run_live.sh` and the in-process app do).
    """
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::{secrets.token_hex(2)}"


def _from_an_address_of_its_own(request: httpx.Request) -> None:
    if "x-forwarded-for" not in request.headers:
        request.headers["X-Forwarded-For"] = client_address()


def _live_url() -> str:
    return os.environ.get("IM_CONFORMANCE_URL", "").strip().rstrip("/")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@functools.cache
def current() -> Target:
    """The process's target, made on first use (the fuzz tests need it at collection time)."""
    url = _live_url()
    if url:
        return Target(url, secret_keys=_split(os.environ.get("IM_CONFORMANCE_SECRET_KEYS", "")))
    return in_process()


def in_process(**overrides) -> Target:
    """A new app built in-process, on a temporary folder removed when the process ends."""
    from im_api.app import create_app
    from im_core.config import Settings

    folder = Path(tempfile.mkdtemp(prefix="im-conformance-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    database_url = os.environ.get("IM_TEST_DATABASE_URL") or (
        "sqlite:///" + str(folder / "conformance.sqlite")
    )
    # The test client connects as "testclient": trusted as a proxy, so that the suite's
    # X-Forwarded-For decides each request's client address.
    options = {
        "bcrypt_rounds": 4,
        "validate_responses": True,
        "trusted_proxies": ["testclient"],
        **overrides,
    }
    settings = Settings.from_env(
        environ={}, instance_dir=folder / "instance", database_url=database_url, **options
    )
    app = create_app(settings)
    keys = settings.secret_keys
    target = Target(IN_PROCESS_BASE_URL, app=app, secret_keys=keys, settings=settings)
    # Connexion builds its middleware stack on the first request; first requests made at once
    # from several threads (each with its own event loop) would race to build it.
    with target.client() as client:
        client.get("/health")
    return target


def unique_name(prefix: str = "c") -> str:
    """A user name no other test, run or fuzzed request will take (the pattern allows 16)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Users:
    """Registers and signs in the suite's own users through the API, as a client would."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def register(self, name: str | None = None, password: str = PASSWORD) -> dict:
        """A new account; the response body (token, user, ...) plus the password used."""
        name = name or unique_name()
        response = self.client.post("/user/register", json={"name": name, "password": password})
        if response.status_code != 200:
            raise AssertionError(
                f"POST /user/register answered {response.status_code}: {response.text}"
            )
        return {**response.json(), "name": name, "password": password}

    def login(self, name: str, password: str = PASSWORD) -> str:
        response = self.client.post("/user/login", json={"name": name, "password": password})
        if response.status_code != 200:
            raise AssertionError(
                f"POST /user/login answered {response.status_code}: {response.text}"
            )
        return response.json()["token"]

    def token(self) -> str:
        """The token of a brand-new account."""
        return self.register()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
