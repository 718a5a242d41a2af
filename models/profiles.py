"""How accounts are found and shown: the views of a user (to its owner, to others) and the
lookup by name. Every area that names or shows a person (groups, messages, contacts) uses
these, so none of them needs the account operations of `models.users`."""

from __future__ import annotations

from models import present
from models.entities import User
from models.present import utc_iso


def view(user: User) -> dict:
    """The user as its owner sees it."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "avatar_url": avatar_url(user),
        "created_at": utc_iso(user.created_at),
    }


def member_view(user: User) -> dict:
    """The user as other members see it."""
    return {"id": user.id, "name": user.name, "avatar_url": avatar_url(user)}


def avatar_url(user: User) -> str | None:
    return present.avatar_url(user.avatar) if user.avatar else None


def by_name(name: str) -> User | None:
    return User.get(name_key=name.lower())
