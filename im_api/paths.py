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


# Where Connexion's routing middleware notes the operation of a request (what its own later
# middlewares read), as `<x-openapi-router-controller>.<operationId>`.
_ROUTED = "connexion_routing"


def operation_id(scope: Scope) -> str | None:
    """The operationId Connexion routed the request to (`changeName`); None before routing,
    or when no operation has the path. Needs the `extensions` dict `RequestIds` makes."""
    routed = (scope.get("extensions") or {}).get(_ROUTED)
    name = routed.get("operation_id") if routed else None
    return name.rpartition(".")[2] if name else None
