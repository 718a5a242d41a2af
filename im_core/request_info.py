"""What is known of the HTTP request being served: its id, its client's address, once its
session is read its user, and the limits it was counted against. Log lines, error
envelopes, the rate-limit header fields and the limits per address read it.

The front (`im_api.request_ids`) opens it for each request. It lives in a context variable
holding one mutable object: the request's threads (the Flask bridge and `im_api.direct` copy
the context into theirs) fill in the user on the same object the front reads back when it
logs.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from typing import NamedTuple

# Ids a client or proxy may choose: what common tracing and proxies make (UUIDs, hex,
# `Root=1-...`), nothing that needs quoting in a log line or a header. Longer or other ones
# are replaced, never refused.
GIVEN_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")


class Limit(NamedTuple):
    """Where the request stands against one limit, as the count that decided it left it."""

    name: str
    quota: int  # requests allowed in a window
    window: int  # seconds
    left: int  # requests still allowed in this window (0 once refused)
    reset: int  # seconds until more are allowed
    refused: bool  # this limit refused the request


class RequestInfo:
    __slots__ = ("request_id", "user_id", "limits", "client")

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.user_id: int | None = None
        self.limits: dict[str, Limit] = {}
        self.client: str | None = None  # the client's address, once trusted proxies are read


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "im_request_info", default=None
)


def id_from(given: bytes | None) -> str:
    """The request's id: the client's `X-Request-ID` when it is one we keep, else a new one
    (128 random bits in hex)."""
    if given is not None:
        text = given.decode("latin-1")
        if GIVEN_ID.fullmatch(text):
            return text
    return secrets.token_hex(16)


def begin(request_id: str) -> contextvars.Token:
    return _current.set(RequestInfo(request_id))


def end(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> RequestInfo | None:
    return _current.get()


def note_user(user_id: int) -> None:
    """The signed-in user of the request being served (a no-op outside a request)."""
    info = _current.get()
    if info is not None:
        info.user_id = user_id


def note_client(address: str | None) -> None:
    """The client address of the request being served (a no-op outside a request)."""
    info = _current.get()
    if info is not None:
        info.client = address


def client() -> str | None:
    """The client address noted for the request being served, None before or outside one."""
    info = _current.get()
    return info.client if info is not None else None


def note_limit(limit: Limit) -> None:
    """Where the request being served stands against a limit (a no-op outside a request)."""
    info = _current.get()
    if info is not None:
        info.limits[limit.name] = limit


def envelope_fields() -> dict:
    """What an error envelope adds: `request_id` while a request is served."""
    info = _current.get()
    return {"request_id": info.request_id} if info is not None else {}
