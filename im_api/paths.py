"""The paths the front routes by itself, read the way Connexion's router reads them."""

from __future__ import annotations

import re

from starlette.types import Scope

MEDIA_PREFIX = "/api/media/"
WEBSOCKET = re.compile(r"/api/ws/user/[^/]+/")
_UPLOAD = re.compile(
    r"/api/(?:groups/([^/]+)/upload_(image|expression|file|voice)|user/change_image)"
)


def route_path(scope: Scope) -> str:
    """The path below the app's mount point (`root_path`), as a router matches it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def upload_kind(path: str) -> str | None:
    """The kind of upload a route path receives (its file part's name), None for others."""
    match = _UPLOAD.fullmatch(path)
    if match is None:
        return None
    return match.group(2) or "avatar"


def upload_group(path: str) -> str | None:
    """The `{group_id}` segment of a group upload's route path, as sent."""
    match = _UPLOAD.fullmatch(path)
    return match.group(1) if match else None
