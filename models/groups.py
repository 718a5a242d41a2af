"""Groups and membership."""

from __future__ import annotations

from pony.orm import select

from models.entities import Group, Membership, User


def leave(group: Group, user: User) -> None:
    """Take `user` out of `group`.

    When the owner leaves, the longest-standing remaining member becomes the owner; when
    the last member leaves, the group is deleted with its messages.
    """
    membership = Membership.get(group=group, user=user)
    if membership is not None:
        membership.delete()
    if group.owner != user:
        return
    successor = (
        select(m for m in Membership if m.group == group)
        .order_by(lambda m: (m.joined_at, m.id))
        .first()
    )
    if successor is None:
        group.delete()
    else:
        group.owner = successor.user
