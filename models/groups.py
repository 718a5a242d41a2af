"""Group chats and their members: making a group, adding, removing, leaving."""

from __future__ import annotations

from pony.orm import (
    IntegrityError,
    TransactionIntegrityError,
    commit,
    flush,
    rollback,
    select,
)

from im_core.config import now
from im_core.errors import ApiError, Error
from models import checks, direct, events, locks, media, profiles
from models.entities import Group, Membership, User


def create(owner: User, name: str) -> Group:
    """A new group whose owner is its first member.

    Raises INVALID_REQUEST for a name holding a lone surrogate: JSON can carry one, no
    database stores one, and the spec's pattern cannot say so to every tool.
    """
    checks.refuse_lone_surrogates("name", name)
    started = now()
    group = Group(name=name, owner=owner, created_at=started, last_activity_at=started)
    Membership(group=group, user=owner, joined_at=started)
    flush()  # the group's id, for the answer
    return group


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

    Raises GROUP_NOT_FOUND, NOT_A_MEMBER, DIRECT_CHAT, USERNAME_NOT_FOUND (also when that
    account is cancelled meanwhile) or ALREADY_A_MEMBER (also when a concurrent request added
    them).
    """
    _refuse_direct(of_member(group_id, User[by_id]))
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
    # A new member has read the history: only what comes after counts as unread.
    Membership(group=group, user=user, joined_at=now(), read_seq=group.last_seq)
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

    Only the owner removes others. Raises GROUP_NOT_FOUND, NOT_A_MEMBER, DIRECT_CHAT,
    OWNER_ONLY, or MEMBER_NOT_FOUND when the owner names someone who is not in the group.
    """
    locks.group(group_id)  # before anything of the group is read
    by = User[by_id]
    group = of_member(group_id, by)
    _refuse_direct(group)
    if user_id != by.id and group.owner != by:
        raise ApiError(Error.OWNER_ONLY)
    membership = select(m for m in Membership if m.group == group and m.user.id == user_id).first()
    if membership is None:
        raise ApiError(Error.MEMBER_NOT_FOUND)
    leave(group, membership.user)


def lock_for_message(group_id: int, user_id: int) -> Group:
    """The group, in a new transaction holding its lock (shared) so that it stays as it is
    until a message from `user_id` is committed to it: the member cannot leave meanwhile,
    nor the group be deleted, nor a direct chat's rules change (a contact removed, a block).
    Everything the request read before is forgotten.

    Raises GROUP_NOT_FOUND or NOT_A_MEMBER (also when that changed meanwhile), and in a
    direct chat what `direct.check_may_post` raises.
    """
    locks.forget_reads()
    locks.group(group_id, shared=True)
    user = User[user_id]
    group = of_member(group_id, user)
    direct.check_may_post(group, user)
    return group


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


def _refuse_direct(group: Group) -> None:
    if group.kind == direct.DIRECT:
        raise ApiError(Error.DIRECT_CHAT)
