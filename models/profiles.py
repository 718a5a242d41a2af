"""How accounts are found and shown: the views of a user (to its owner, to others) and the
lookup by name. Every area that names or shows a person (groups, messages, contacts) uses
these, so none of them needs the account operations of `models.users`."""

from __future__ import annotations

import functools

from pony.orm import select

from models import locks, present
from models.entities import Media, User, db
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


def member_view_of(user_id: int, *, locking_group: int | None = None) -> dict | None:
    """`member_view` of the user `user_id` (None when there is no such account), name and
    whether they have an avatar read in one query (the sender of a new message: the hot
    path; the avatar's row is read only when there is one), with `locking_group`'s shared
    lock taken in the same round trip (`locks.group_reading`). The query is written out:
    Pony's query of the same spent more of a post's time building itself than the database
    spent answering it (bench/README.md)."""
    arguments = {"user_id": user_id}
    if locking_group is None:
        found = db.select(_name_and_avatar_sql(), {}, arguments)
        found = found[0] if found else None
    else:
        found = locks.group_reading(locking_group, _name_and_avatar_sql(), arguments)
    if found is None:
        return None
    name, avatar_id = found
    shown = present.avatar_url(Media[avatar_id]) if avatar_id is not None else None
    return {"id": user_id, "name": name, "avatar_url": shown}


@functools.cache
def _name_and_avatar_sql() -> str:
    # Table and column names as the mapping made them (known once the database is bound).
    media = Media._table_
    return (
        f'SELECT u."{User.name.column}", m."{Media.id.column}" FROM "{User._table_}" u '
        f'LEFT JOIN "{media}" m ON m."{Media.avatar_of.column}" = u."{User.id.column}" '
        f'WHERE u."{User.id.column}" = $user_id'
    )


def member_views(users) -> dict[int, dict]:
    """The views of many users (`member_view`), by id, their avatars read in one query.

    A user's avatar is the `Media` row that names them (`avatar_of`), so reading it user by
    user costs a query each: lists of messages, members or contacts call this instead."""
    users = {user.id: user for user in users if user is not None}
    if not users:
        return {}
    ids = list(users)
    avatars = {m.avatar_of.id: m for m in select(m for m in Media if m.avatar_of.id in ids)}
    return {
        user_id: {
            "id": user_id,
            "name": user.name,
            "avatar_url": present.avatar_url(avatars[user_id]) if user_id in avatars else None,
        }
        for user_id, user in users.items()
    }


def avatar_url(user: User) -> str | None:
    return present.avatar_url(user.avatar) if user.avatar else None


def by_name(name: str) -> User | None:
    return User.get(name_key=name.lower())


def search(term: str, *, exact: bool, after: str | None, limit: int):
    """Users by exact name (ignoring case), or whose name starts with `term`, by name: up to
    `limit`, from after the name `after`, and the cursor of the next page (None at the end).
    """
    if exact:
        found = by_name(term)
        return ([found] if found is not None else []), None
    start = term.lower()
    query = select(u for u in User if u.name_key.startswith(start))
    if after is not None:
        after = after.lower()
        query = query.where(lambda u: u.name_key > after)
    found = list(query.order_by(lambda u: u.name_key)[: limit + 1])
    if len(found) <= limit:
        return found, None
    return found[:limit], found[limit - 1].name_key
