"""Small pieces every entity view uses: times, signed media URLs and the socket's URL, which
`IM_PUBLIC_BASE_URL` makes absolute."""

from __future__ import annotations

from datetime import datetime, timezone

from im_core import security
from im_core.config import current


def utc_iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# The socket's scheme under a public base URL of each scheme.
_WS_SCHEMES = {"http": "ws", "https": "wss"}


def public(path: str) -> str:
    """`path` (from the server's root, `/api/...`) as clients get it: under
    `IM_PUBLIC_BASE_URL` when it is set, else as it is."""
    base = current().public_base_url.rstrip("/")
    return base + path if base else path


def ws_url(user_id: int) -> str:
    """The user's socket: `ws/user/{id}/`, relative to `/api/` as document A has it, or
    absolute under `IM_PUBLIC_BASE_URL` with its scheme switched to ws or wss."""
    base = current().public_base_url.rstrip("/")
    if not base:
        return f"ws/user/{user_id}/"
    scheme, rest = base.split("://", 1)
    return f"{_WS_SCHEMES[scheme.lower()]}://{rest}/api/ws/user/{user_id}/"


def media_url(media) -> str:
    """The signed URL of a message's media (a `Media`): see `stable_url`, with
    `media_url_ttl`."""
    return stable_url(media.id, media.created_at, current().media_url_ttl)


def avatar_url(media) -> str:
    """The signed URL of an avatar (a `Media`): see `stable_url`, with `avatar_url_ttl`."""
    return stable_url(media.id, media.created_at, current().avatar_url_ttl)


def stable_url(media_id: int, uploaded_at: datetime, ttl: int) -> str:
    """The signed URL of a media, valid `ttl` seconds: the same URL for the same media, so
    browsers keep their copy (`im_api.serving` lets them, for what is left of it).

    It is signed as of the start of the current half of its lifetime, counted from the
    media's upload: the same for half the lifetime, then valid the other half while the next
    one is handed out. Counting from the upload spreads renewals over time, so a chat's
    images are not all renewed at once. A new avatar is a new media, with a new URL.
    """
    half = max(ttl // 2, 1)
    uploaded = int(uploaded_at.replace(tzinfo=timezone.utc).timestamp())
    issued_at = uploaded + (security.signing_time() - uploaded) // half * half
    return public(f"/api/media/{media_id}?sig={security.sign_media(media_id, ttl, issued_at)}")
