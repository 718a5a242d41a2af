"""Stored media."""

from __future__ import annotations

from models.entities import Media


def release(media: Media) -> None:
    """Forget `media` unless a message still shows it."""
    if media.messages.is_empty():
        media.delete()
