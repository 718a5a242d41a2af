"""Authentication for the fuzzer: the suite registers its own users through the API.

Schemathesis asks its auth providers for a token whenever it generates a case, and it
generates the spec's examples while pytest is still collecting tests: a real token then
would mean a request (and, in-process, building the app) before any test runs. So the
providers only mark the case (`Bearer deferred-by-the-conformance-suite:...`), and
`resolve()` swaps the mark for a real token just before the request is sent:

* operations that end the token they are called with (logout, change_password,
  cancel_account) get a brand-new account for every request, so no request can take a token
  away from the next one;
* every other operation shares one account; if a request with its token is answered 401
  (its session ended), the account is replaced and the request sent once more.

Cases where schemathesis tests the security itself (no token, a wrong one) carry no mark
and are sent as generated. In stateful runs a token an OpenAPI link carries wins over the
mark (see `test_stateful.py`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from requests.structures import CaseInsensitiveDict

from conformance import target as targets
from conformance.target import Target, Users, bearer

TOKEN_ENDING = ["logout", "changePassword", "cancelAccount"]
MARK = "deferred-by-the-conformance-suite"
FRESH, SHARED = "fresh", "shared"


class TokenSource:
    """The suite's accounts on one target, registered when a token is first needed."""

    def __init__(self, get_target: Callable[[], Target]):
        self._get_target = get_target
        self._users: Users | None = None
        self._shared: str | None = None
        self._lock = threading.Lock()

    def _accounts(self) -> Users:
        if self._users is None:
            self._users = Users(self._get_target().client())
        return self._users

    def token(self, kind: str, renew: bool = False) -> str:
        with self._lock:
            if kind == FRESH:
                return self._accounts().token()
            if renew or self._shared is None:
                self._shared = self._accounts().token()
            return self._shared


_sources: dict[int, TokenSource] = {}
_keys = itertools.count(1)


def install(schema, get_target: Callable[[], Target] = targets.current) -> None:
    """Register the marking providers on `schema`; their tokens come from `get_target()`."""
    key = next(_keys)
    _sources[key] = TokenSource(get_target)

    class FreshAccount:
        def get(self, case, context):
            return f"{MARK}:{key}:{FRESH}"

        def set(self, case, data, context):
            _authorize(case, data)

    class SharedAccount:
        def get(self, case, context):
            return f"{MARK}:{key}:{SHARED}"

        def set(self, case, data, context):
            _authorize(case, data)

    schema.auth(refresh_interval=None).apply_to(operation_id=TOKEN_ENDING)(FreshAccount)
    schema.auth(refresh_interval=None).skip_for(operation_id=TOKEN_ENDING)(SharedAccount)


def _authorize(case, token: str) -> None:
    headers = CaseInsensitiveDict(case.headers or {})
    headers.update(bearer(token))
    case.headers = headers


def mark_of(case) -> tuple[TokenSource, str] | None:
    """The token source and kind a provider's mark on `case` asks for, or None."""
    value = (case.headers or {}).get("Authorization", "")
    if not isinstance(value, str) or not value.startswith(f"Bearer {MARK}:"):
        return None
    _, key, kind = value.removeprefix("Bearer ").split(":")
    return _sources[int(key)], kind


def resolve(case, mark: tuple[TokenSource, str] | None, renew: bool = False) -> None:
    """Put a real token where `mark` (from `mark_of`) was; nothing without a mark."""
    if mark is not None:
        source, kind = mark
        case.headers["Authorization"] = f"Bearer {source.token(kind, renew=renew)}"
