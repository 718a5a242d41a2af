"""Group chats and their members: making a group, adding, removing, leaving."""

from __future__ import annotations

from pony.orm import flush, select

from im_core.config import now
from im_core.errors import ApiError, Error
from models import checks, direct, events, joins, locks, media, profiles, roles
from models.entities import Group, JoinRequest, Membership, User

ONLY_ADMINS_REMOVE = "Only the group's owner and admins can remove other members"


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


def add_member(group_id: int, by_id: int, name: str) -> tuple[Group, JoinRequest | None]:
    """The member `by_id` adds the user named `name` (ignoring case) to the group.

    With join approval on, a plain member's add is a request instead, for an admin to answer
    (`models.joins`): returns the group and that request; else the group and None. Raises
    GROUP_NOT_FOUND, NOT_A_MEMBER, DIRECT_CHAT, USERNAME_NOT_FOUND (also when that account is
    cancelled meanwhile), ALREADY_A_MEMBER (also when a concurrent request added them),
    JOIN_REQUEST_PENDING or GROUP_FULL (the add or the request, with no place free).
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
    group, by, role = roles.locked(group_id, by_id, direct_refusal=None)
    if not select(u for u in User if u.id == user_id).exists():
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user = User[user_id]
    if Membership.exists(group=group, user=user):
        raise ApiError(Error.ALREADY_A_MEMBER)
    if group.join_approval and role == roles.MEMBER:
        return group, joins.make(group, by, user)
    joins.admit(group, user)
    return group, None


def remove_member(group_id: int, by_id: int, user_id: int) -> None:
    """`by_id` removes the member `user_id` from the group, or leaves it when it is their id.

    The owner removes anyone, an admin plain members. Raises GROUP_NOT_FOUND, NOT_A_MEMBER,
    DIRECT_CHAT, OWNER_ONLY (a plain member removing someone, an admin the owner or another
    admin), or MEMBER_NOT_FOUND when the owner or an admin names someone not in the group.
    """
    group, by, role = roles.locked(group_id, by_id, direct_refusal=None)
    if user_id == by.id:
        leave(group, by)
        return
    if role == roles.MEMBER:
        raise ApiError(Error.OWNER_ONLY, info=ONLY_ADMINS_REMOVE)
    membership = select(m for m in Membership if m.group == group and m.user.id == user_id).first()
    if membership is None:
        raise ApiError(Error.MEMBER_NOT_FOUND)
    if role == roles.ADMIN and roles.role_of(group, membership.user, membership) != roles.MEMBER:
        raise ApiError(Error.OWNER_ONLY)
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

    The requests they made to add people lapse. When the owner leaves, the longest-standing
    admin becomes the owner, else the longest-standing member; when the last member leaves,
    the group is deleted with its messages, and media that no message shows any more with
    them. An owner who is no longer a member (left by an earlier release's race) is handled
    the same way.

    Emits member.removed for a member taken out of a group that stays (and group.updated
    when that changes its owner or admins), group.deleted when the group goes instead (its
    last member's sockets hear that the group is gone).
    """
    joins.lapse_made_by(group, user)
    membership = Membership.get(group=group, user=user)
    was_admin = membership is not None and membership.role == roles.ADMIN
    was_owner = group.owner == user
    if membership is not None:
        membership.delete()
    if was_owner:
        successor = _successor(group)
        if successor is None:
            _delete(group)
            return
        roles.make_owner(group, successor)
    if membership is not None:
        events.emit(events.Event("member.removed", group_id=group.id, user_id=user.id))
    if was_owner or was_admin:
        roles.changed(group)


def disband(group_id: int, by_id: int) -> None:
    """The owner deletes the group with its messages, as its last member leaving would: every
    member's sockets hear that it is gone. Raises OWNER_ONLY."""
    group, _, role = roles.locked(group_id, by_id)
    roles.require_owner(role)
    _delete(group)


def _successor(group: Group) -> Membership | None:
    """Who takes a group over from an owner who leaves: its longest-standing admin, else its
    longest-standing member; None when nobody is left."""
    remaining = select(m for m in Membership if m.group == group)
    by_seniority = lambda m: (m.joined_at, m.id)  # noqa: E731
    admin = remaining.where(lambda m: m.role == roles.ADMIN).order_by(by_seniority).first()
    return admin or remaining.order_by(by_seniority).first()


def _delete(group: Group) -> None:
    """Delete the group (no member left) with its messages, and the media they alone showed;
    the requests to join it lapse."""
    joins.lapse_all(group)
    shown = {message.media for message in group.messages if message.media is not None}
    events.emit(events.Event("group.deleted", group_id=group.id))
    group.delete()
    for item in shown:
        media.release(item)


def _refuse_direct(group: Group) -> None:
    if group.kind == direct.DIRECT:
        raise ApiError(Error.DIRECT_CHAT)
