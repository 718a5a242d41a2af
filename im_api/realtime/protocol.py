"""The socket's frames and codes (the contract: openapi/asyncapi.yaml), and the checks each
client frame goes through before anything acts on it.

Everything here is pure: no I/O, no database, so each rule is tested on its own and the
endpoint only decides what to do with a parsed frame.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from im_core.errors import Error
from models.frames import dumps

# Close codes (the contract's table). 1009 is sent by the websocket layer itself when a frame
# is over `ws_max_frame` (uvicorn's `ws_max_size`); the endpoint sends it too for any that
# gets through (another server, the test client).
TOO_LARGE = 1009
TOKEN_IN_QUERY = 4400
NOT_AUTHENTICATED = 4401
WRONG_USER = 4403
TOO_MANY_SOCKETS = 4409
SESSION_ENDED = 4410
TOO_MANY_FRAMES = 4429
RESUME = 4503

REASONS = {
    TOO_LARGE: "Frame too large",
    TOKEN_IN_QUERY: "Send the token in the Authorization header or an auth frame",
    NOT_AUTHENTICATED: "Not authenticated",
    WRONG_USER: "Token of another user",
    TOO_MANY_SOCKETS: "Too many sockets at once for this user or address",
    SESSION_ENDED: "Session ended",
    TOO_MANY_FRAMES: "Too many frames",
    RESUME: "Reconnect and resume",
}

# The fields of each client frame (asyncapi.yaml: additionalProperties false).
FIELDS = {
    "auth": frozenset({"type", "token"}),
    "sync": frozenset({"type", "since", "notices", "revs", "states"}),
    "ping": frozenset({"type"}),
}
GROUP_KEY = re.compile(r"[1-9][0-9]{0,15}")
MAX_SEQ = 2**53 - 1  # exact in every JSON parser

# Query parameters that would carry a token: URLs land in logs and browser histories.
TOKEN_PARAMETERS = frozenset({b"token", b"access_token"})


class BadFrame(Exception):
    """A client frame the socket answers with an `error` frame (and stays open)."""

    def __init__(self, error: Error, info: str | None = None):
        self.error = error
        self.info = info if info is not None else error.value[2]
        super().__init__(self.info)


@dataclass(frozen=True)
class Auth:
    token: str


@dataclass(frozen=True)
class Sync:
    since: dict[int, int]  # group id -> the last seq the client has
    # The number of the last notice the client has; None: the client does not ask for
    # notices (a client of the contract before them), and gets none.
    notices: int | None = None
    # Group id -> the last rev (change) the client has; None: the client does not follow
    # changes (a client of the contract before them), and gets no message.updated frame.
    revs: dict[int, int] | None = None
    # Group id -> the state version the client has of it; None: the client does not follow
    # group states (a client of the contract before roles), and gets no group.updated frame.
    states: dict[int, int] | None = None


@dataclass(frozen=True)
class Ping:
    pass


Frame = Auth | Sync | Ping


def parse(text: str | None) -> Frame:
    """The client frame `text` says (None: a binary frame). Raises BadFrame."""
    if text is None:
        raise malformed("frames are JSON text, not binary")
    try:
        data = _DECODER.decode(text)
    except _KeyTwice as error:
        raise malformed(str(error)) from None
    except (ValueError, RecursionError):  # RecursionError: a deeply nested document
        raise malformed("not JSON") from None
    if not isinstance(data, dict):
        raise malformed("not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise malformed("'type' must be a string")
    fields = FIELDS.get(kind)
    if fields is None:
        raise BadFrame(Error.UNKNOWN_FRAME_TYPE)
    extra = set(data) - fields
    if extra:
        # The contract lists every field (additionalProperties: false): a field the server
        # would ignore is a client bug the client should hear about.
        raise malformed(f"unexpected field {sorted(extra)[0][:40]!r} in {kind!r}")
    if kind == "auth":
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise malformed("'token' must be a non-empty string")
        return Auth(token)
    if kind == "sync":
        notices = data.get("notices")
        if "notices" in data and not _is_position(notices):
            raise malformed(f"'notices' must be an integer from 0 to {MAX_SEQ}")
        revs = _positions("revs", data["revs"]) if "revs" in data else None
        states = _positions("states", data["states"]) if "states" in data else None
        return Sync(_positions("since", data.get("since")), notices, revs, states)
    return Ping()


class _KeyTwice(ValueError):
    pass


def _one_value_per_key(pairs: list[tuple[str, object]]) -> dict:
    # As REST bodies (im_api.validation): with a key twice, which one counts would be for the
    # reader to guess (Python's parser takes the last, others the first).
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _KeyTwice(f"the key {twice[:40]!r} is given twice")
    return data


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_one_value_per_key, parse_constant=_not_json)


def _positions(field: str, given) -> dict[int, int]:
    """`since`, `revs` or `states`: group ids (as JSON keys) to seq, rev or version numbers."""
    if not isinstance(given, dict):
        raise malformed(f"'{field}' must be an object of group ids to numbers")
    positions = {}
    for key, number in given.items():
        # A group id as the contract writes it: 1 to 16 decimal digits, no leading zero.
        if not GROUP_KEY.fullmatch(key):
            raise malformed(f"'{field}' key {key[:20]!r} is not a group id")
        if not _is_position(number):
            raise malformed(f"'{field}' of group {key} must be an integer from 0 to {MAX_SEQ}")
        positions[int(key)] = number
    return positions


def _is_position(value) -> bool:
    """A seq or notice number a client may give: bool is an int in Python, not in JSON, and
    positions stay within what JSON numbers carry exactly."""
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_SEQ


def malformed(why: str) -> BadFrame:
    return BadFrame(Error.BAD_FRAME, f"Malformed frame: {why}")


def error_frame(error: BadFrame) -> str:
    return dumps({"type": "error", "code": error.error.code, "info": error.info})


PONG = dumps({"type": "pong"})


def token_in_query(query_string: bytes) -> bool:
    """Whether the upgrade's query string names a token parameter (with or without value)."""
    for pair in query_string.split(b"&"):
        name = pair.split(b"=", 1)[0]
        if name.replace(b"%5F", b"_").replace(b"%5f", b"_").lower() in TOKEN_PARAMETERS:
            return True
    return False


def tokens_in_query(query_string: bytes, most: int = 4) -> list[str]:
    """The values of the upgrade's token parameters (the first `most`), to be ended as
    exposed: a token in a URL lands in logs and histories."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    names = {name.decode() for name in TOKEN_PARAMETERS}
    return [value for name, value in pairs if name.lower() in names and value][:most]


class FrameRate:
    """A token bucket: `burst` frames at once, refilled at `rate` a second."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.at = clock()

    def allow(self) -> bool:
        if self.rate <= 0 or math.isinf(self.rate):
            return True  # no limit configured
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
