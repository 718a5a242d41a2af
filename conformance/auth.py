"""Authentication for the fuzzer: the suite registers its own users through the API.

Two schemathesis auth providers share the work:

* Operations that end the token they are called with (logout, change_password,
  cancel_account) get a brand-new account for every request, so no request can take a token
  away from the next one.
* Every other operation shares one account whose token is cached; when a request is answered
  401 anyway (its session ended), schemathesis drops the cached token, calls the provider for
  a new one and sends the request again.

A token that an OpenAPI link carries into a stateful step (`header.Authorization`) is put
back over these by the state machine (see `test_stateful.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from requests.structures import CaseInsensitiveDict

from conformance import target as targets
from conformance.target import Target, Users, bearer

TOKEN_ENDING = [
    "handlers.user.logout",
    "handlers.user.change_password",
    "handlers.user.cancel_account",
]


def install(schema, get_target: Callable[[], Target] = targets.current) -> None:
    """Register both providers on `schema`; they register users on `get_target()`."""
    state: dict[str, Users] = {}

    def new_token() -> str:
        if "users" not in state:  # made on first use: the target may not be built yet
            state["users"] = Users(get_target().client())
        return state["users"].token()

    class FreshAccount:
        """A new account, hence a new token, per request."""

        def get(self, case, context):
            return new_token()

        def set(self, case, data, context):
            _authorize(case, data)

    class SharedAccount:
        """One account for every other operation; schemathesis caches its token."""

        def get(self, case, context):
            return new_token()

        def set(self, case, data, context):
            _authorize(case, data)

    schema.auth(refresh_interval=None).apply_to(operation_id=TOKEN_ENDING)(FreshAccount)
    schema.auth().skip_for(operation_id=TOKEN_ENDING)(SharedAccount)


def _authorize(case, token: str) -> None:
    headers = CaseInsensitiveDict(case.headers or {})
    headers.update(bearer(token))
    case.headers = headers
