"""Signing of bearer tokens and media URLs with itsdangerous, with rotatable keys.

`IM_SECRET_KEYS` lists the keys newest first: the newest signs, every one verifies, so a key
can be retired by first adding a new one in front and removing the old one a token lifetime
later. The serializers are built by `configure()` from the app factory (no keys at import).
"""

from __future__ import annotations

import threading

from itsdangerous import BadData, URLSafeTimedSerializer

from im_core.config import Settings
from im_core.errors import ApiError, Error

_tokens: URLSafeTimedSerializer | None = None
_media: URLSafeTimedSerializer | None = None
_token_ttl = 0
_token_clock = None  # a signer of the token serializer's: its get_timestamp() is their clock

# Tokens whose signature checked out: (session key, when it was signed, in whole seconds as
# itsdangerous counts them). A client sends the same token with every request, and checking
# its signature again cost more than the rest of the bearer check (bench/README.md). Only
# the exact text of a token that verified is found here; its age is still checked each time.
CHECKED_TOKENS = 4096
_checked: dict[str, tuple[str, int]] = {}
_checked_lock = threading.Lock()


def configure(settings: Settings) -> None:
    global _tokens, _media, _token_ttl, _token_clock
    # itsdangerous signs with the last key of the list and verifies with all of them.
    keys = list(reversed(settings.secret_keys))
    _tokens = URLSafeTimedSerializer(keys, salt="im-api.session-token")
    _media = URLSafeTimedSerializer(keys, salt="im-api.media-url")
    _token_ttl = settings.token_ttl
    _token_clock = _tokens.make_signer()
    with _checked_lock:
        _checked.clear()  # checked with keys that may be gone now


def issue_token(session_key: str) -> str:
    return _tokens.dumps(session_key)


def token_info(token: str) -> dict | None:
    """Connexion's bearer check: the signed session key, or None for a bad or old token.

    Only the signature and age are checked here (no database in the event loop); whether
    the session still exists is checked by `models.sessions.active` inside the request.
    """
    found = _checked.get(token)
    if found is None:
        try:
            session_key, signed = _tokens.loads(token, max_age=_token_ttl, return_timestamp=True)
        except (BadData, UnicodeError):
            return None
        if not isinstance(session_key, str):
            return None
        found = (session_key, int(signed.timestamp()))
        with _checked_lock:
            _checked[token] = found
            if len(_checked) > CHECKED_TOKENS:
                _checked.pop(next(iter(_checked)), None)  # the oldest
    session_key, signed = found
    if not 0 <= _token_clock.get_timestamp() - signed <= _token_ttl:  # as itsdangerous does
        return None
    return {"sub": session_key}


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of a request's `Authorization: Bearer ...` header (ASGI headers), read as
    Connexion's bearer check reads it, for a check made outside Connexion (the front).

    Raises MISSING_TOKEN without the header or with another scheme, INVALID_TOKEN for a
    header that is not `scheme value`.
    """
    value = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), "")
    if not value:
        raise ApiError(Error.MISSING_TOKEN)
    parts = value.split(maxsplit=1)
    if len(parts) != 2:
        raise ApiError(Error.INVALID_TOKEN)
    scheme, token = parts
    if scheme.lower() != "bearer":
        raise ApiError(Error.MISSING_TOKEN)
    return token


def sign_media(media_id: int, ttl: int, issued_at: int | None = None) -> str:
    """A signature for one media id that stays valid `ttl` seconds from `issued_at` (epoch
    seconds; default now). The same arguments give the same signature."""
    if issued_at is None:
        return _media.dumps([media_id, ttl])
    signer = _media.make_signer()
    signer.get_timestamp = lambda: issued_at
    return signer.sign(_media.dump_payload([media_id, ttl])).decode()


def signing_time() -> int:
    """Now, as the signatures count time (epoch seconds)."""
    return int(_media.make_signer().get_timestamp())


def media_link_life(media_id: int, signature: str) -> int | None:
    """The seconds a media link's signature has left, or None when it is wrong, expired or
    for another media."""
    try:
        (signed_id, ttl), signed_at = _media.loads(signature, return_timestamp=True)
        _media.loads(signature, max_age=ttl)
    except (BadData, ValueError, TypeError, UnicodeError):
        return None
    if signed_id != media_id:
        return None
    return max(int(signed_at.timestamp()) + ttl - signing_time(), 0)
