"""Small pieces every entity view uses: times and signed media URLs."""

from __future__ import annotations

from datetime import datetime, timezone

from im_core import security
from im_core.config import current


def utc_iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def media_url(media_id: int) -> str:
    """The signed URL of a message's media, valid `media_url_ttl` from now."""
    return f"/api/media/{media_id}?sig={security.sign_media(media_id, current().media_url_ttl)}"


def avatar_url(media) -> str:
    """The signed URL of an avatar (a `Media`): see `avatar_url_of`."""
    return avatar_url_of(media.id, media.created_at)


def avatar_url_of(media_id: int, uploaded_at: datetime) -> str:
    """The signed URL of an avatar: the same URL for the same avatar, so browsers keep it.

    It is signed as of the start of the current half of its lifetime (`avatar_url_ttl`),
    counted from the avatar's upload: the same for half the lifetime, then valid the other
    half while the next one is handed out. A new avatar is a new media, with a new URL.
    """
    ttl = current().avatar_url_ttl
    half = max(ttl // 2, 1)
    uploaded = int(uploaded_at.replace(tzinfo=timezone.utc).timestamp())
    issued_at = uploaded + (security.signing_time() - uploaded) // half * half
    return f"/api/media/{media_id}?sig={security.sign_media(media_id, ttl, issued_at)}"
