"""Groups and membership, and the views of a group."""

from __future__ import annotations

from pony.orm import (
    IntegrityError,
    TransactionIntegrityError,
    commit,
    desc,
    flush,
    rollback,
    select,
)

from im_core.config import now
from im_core.errors import ApiError, Error
from models import events, locks, media, profiles
from models.entities import Group, Membership, User
from models.present import utc_iso


def view(group: Group) -> dict:
    """The group with its members, in the order they joined."""
    members = group.memberships.select().order_by(lambda m: (m.joined_at, m.id))
    return {
        "id": group.id,
        "name": group.name,
        "owner_id": group.owner.id,
        "members": [profiles.member_view(m.user) for m in members],
        "created_at": utc_iso(group.created_at),
    }


def summary(group: Group) -> dict:
    """The group in a list of groups."""
    return {
        "id": group.id,
        "name": group.name,
        "owner_id": group.owner.id,
        "member_count": group.memberships.count(),
        "created_at": utc_iso(group.created_at),
    }


def create(owner: User, name: str) -> Group:
    """A new group whose owner is its first member.

    Raises INVALID_REQUEST for a name holding a lone surrogate: JSON can carry one, no
    database stores one, and the spec's pattern cannot say so to every tool.
    """
    if any("\ud800" <= ch <= "\udfff" for ch in name):
        raise ApiError(Error.INVALID_REQUEST, "Invalid request: 'name' is not valid Unicode")
    started = now()
    group = Group(name=name, owner=owner, created_at=started)
    Membership(group=group, user=owner, joined_at=started)
    flush()  # the group's id, for the answer
    return group


def of_user(user: User) -> list[Group]:
    """The groups `user` is a member of, most recently created first."""
    return select(m.group for m in Membership if m.user == user).order_by(
        lambda g: (desc(g.created_at), desc(g.id))
    )[:]


def of_member(group_id: int, user: User) -> Group:
    """The group `group_id` if `user` is one of its members.

    Raises GROUP_NOT_FOUND when there is no such group, NOT_A_MEMBER when the user is not
    in it.
    """
    group = Group.get(id=group_id)
    if group is None:
        raise ApiError(Error.GROUP_NOT_FOUND)
    if not Membership.exists(group=group, user=user):
        raise ApiError(Error.NOT_A_MEMBER)
    return group


def add_member(group_id: int, by_id: int, name: str) -> Group:
    """The member `by_id` adds the user named `name` (ignoring case) to the group, committed.

    Raises GROUP_NOT_FOUND, NOT_A_MEMBER, USERNAME_NOT_FOUND (also when that account is
    cancelled meanwhile) or ALREADY_A_MEMBER (also when a concurrent request added them).
    """
    of_member(group_id, User[by_id])
    user = profiles.by_name(name)
    if user is None:
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user_id = user.id
    # The new member's account first (shared: its cancellation must wait, or be waited
    # for), then the group; what was read above is read again under the locks.
    locks.forget_reads()
    locks.account(user_id, shared=True)
    locks.group(group_id)
    group = of_member(group_id, User[by_id])
    if not select(u for u in User if u.id == user_id).exists():
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user = User[user_id]
    if Membership.exists(group=group, user=user):
        raise ApiError(Error.ALREADY_A_MEMBER)
    Membership(group=group, user=user, joined_at=now())
    try:
        flush()  # the unique key decides here, before an event goes out for the row
        events.emit(events.Event("member.added", group_id=group_id, user_id=user_id))
        commit()
    except (IntegrityError, TransactionIntegrityError):  # Pony wraps it only sometimes
        rollback()
        raise ApiError(Error.ALREADY_A_MEMBER) from None
    return Group[group_id]


def remove_member(group_id: int, by_id: int, user_id: int) -> None:
    """`by_id` removes the member `user_id` from the group, or leaves it when it is their id.

    Only the owner removes others. Raises GROUP_NOT_FOUND, NOT_A_MEMBER, OWNER_ONLY, or
    MEMBER_NOT_FOUND when the owner names someone who is not in the group.
    """
    locks.group(group_id)  # before anything of the group is read
    by = User[by_id]
    group = of_member(group_id, by)
    if user_id != by.id and group.owner != by:
        raise ApiError(Error.OWNER_ONLY)
    membership = select(m for m in Membership if m.group == group and m.user.id == user_id).first()
    if membership is None:
        raise ApiError(Error.MEMBER_NOT_FOUND)
    leave(group, membership.user)


def lock_for_message(group_id: int, user_id: int) -> Group:
    """The group, in a new transaction holding its lock (shared) so that it stays as it is
    until a message from `user_id` is committed to it: the member cannot leave meanwhile,
    nor the group be deleted. Everything the request read before is forgotten.

    Raises GROUP_NOT_FOUND or NOT_A_MEMBER (also when that changed meanwhile).
    """
    locks.forget_reads()
    locks.group(group_id, shared=True)
    return of_member(group_id, User[user_id])


def leave(group: Group, user: User) -> None:
    """Take `user` out of `group` (the caller holds the group's lock, `locks.group`).

    When the owner leaves, the longest-standing remaining member becomes the owner; when
    the last member leaves, the group is deleted with its messages, and media that no
    message shows any more with them. An owner who is no longer a member (left by an
    earlier release's race) is handled the same way.

    Emits member.removed for a member taken out of a group that stays, group.deleted when
    the group goes instead (its last member's sockets hear that the group is gone).
    """
    membership = Membership.get(group=group, user=user)
    if membership is not None:
        membership.delete()
    if group.owner == user:
        successor = (
            select(m for m in Membership if m.group == group)
            .order_by(lambda m: (m.joined_at, m.id))
            .first()
        )
        if successor is None:
            _delete(group)
            return
        group.owner = successor.user
    if membership is not None:
        events.emit(events.Event("member.removed", group_id=group.id, user_id=user.id))


def _delete(group: Group) -> None:
    """Delete the group (no member left) with its messages, and the media they alone showed."""
    shown = {message.media for message in group.messages if message.media is not None}
    events.emit(events.Event("group.deleted", group_id=group.id))
    group.delete()
    for item in shown:
        media.release(item)
