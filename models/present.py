"""Small pieces every entity view uses: times and signed media URLs."""

from __future__ import annotations

from datetime import datetime

from im_api import security
from im_api.config import current


def utc_iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def media_url(media_id: int, *, long_lived: bool = False) -> str:
    """The signed URL of a media; avatars get the long-lived kind."""
    settings = current()
    ttl = settings.avatar_url_ttl if long_lived else settings.media_url_ttl
    return f"/api/media/{media_id}?sig={security.sign_media(media_id, ttl)}"
