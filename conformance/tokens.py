"""Tokens the server never issued: signed with another key, or dated in the past.

The design's tokens are itsdangerous `URLSafeTimedSerializer` signatures (salt
`im-api.session-token`) of a server-side session key; the payload of a real token is
readable, so a forgery can name a live session. Only the expired one needs the server's
keys (`IM_CONFORMANCE_SECRET_KEYS`).
"""

from __future__ import annotations

import secrets
import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

SALT = "im-api.session-token"
TEN_YEARS = 10 * 365 * 24 * 3600


def session_key(token: str):
    """The payload of a real token (signature not checked)."""
    _, payload = URLSafeTimedSerializer("unused", salt=SALT).loads_unsafe(token)
    return payload


def signed_with_another_key(token: str) -> str:
    """The same session, signed with a key the server does not have."""
    return URLSafeTimedSerializer(secrets.token_urlsafe(32), salt=SALT).dumps(session_key(token))


def expired(token: str, server_keys: list[str], age: int = TEN_YEARS) -> str:
    """The same session, signed with the server's newest key `age` seconds ago."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    # itsdangerous signs with the last key of a list; the server lists its keys newest first.
    serializer = URLSafeTimedSerializer(server_keys[0], salt=SALT, signer=Backdated)
    return serializer.dumps(session_key(token))


def is_accepted_by(token: str, server_keys: list[str]) -> bool:
    """Whether `server_keys` verify `token`: checks the suite signs as the server does."""
    serializer = URLSafeTimedSerializer(list(reversed(server_keys)), salt=SALT)
    try:
        serializer.loads(token)
    except Exception:
        return False
    return True
