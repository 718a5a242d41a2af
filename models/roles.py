"""Roles in a group chat: its one owner, its admins, its members; and what only they may do
to the group itself (rename it, switch join approval, set its announcement, appoint admins,
hand the group over, disband it).

The owner is `Group.owner`; an admin is a member whose `Membership.role` is "admin". Direct
chats have no roles: every operation here refuses them (DIRECT_CHAT).

Every change of what a group's view shows besides its messages and members (name, owner,
admins, announcement, join approval) raises the group's `state_version`, under the group's
lock, and is a `group.updated` event carrying the group's state: members' sockets get it
live, and a socket that resumes with the versions it had gets the state of every group that
moved on (`im_api.realtime`).
"""

from __future__ import annotations

from pony.orm import select

from im_core.config import now
from im_core.errors import ApiError, Error
from models import checks, direct, events, frames, locks, profiles
from models.entities import Group, Membership, User
from models.present import utc_iso

OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
# Admins a group may have besides its owner: enough for any group that keeps order, few
# enough that every view and frame lists them all.
MAX_ADMINS = 50
NO_ROLES = "A direct chat has no owner, admins, announcement or join requests"


def role_of(group: Group, user: User, membership: Membership | None) -> str:
    """The role of a member: "owner", "admin" or "member" (both members of a direct chat)."""
    if group.kind == direct.GROUP and group.owner == user:
        return OWNER
    return membership.role if membership is not None else MEMBER


def locked(group_id: int, by_id: int, *, direct_refusal: str | None = NO_ROLES):
    """The group, the user `by_id` and their role, read afresh under the group's lock
    (exclusive: changes to a group take turns). Raises GROUP_NOT_FOUND, NOT_A_MEMBER or
    DIRECT_CHAT (with `direct_refusal` as its info; None: the code's own)."""
    locks.forget_reads()
    locks.group(group_id)
    return locked_for_reading(group_id, by_id, direct_refusal=direct_refusal)


def locked_for_reading(
    group_id: int, by_id: int, *, direct_refusal: str | None = NO_ROLES
) -> tuple[Group, User, str]:
    """The group, the user `by_id` and their role, as `locked` reads them, without the lock
    (for what only reads)."""
    by = User[by_id]
    group = Group.get(id=group_id)
    if group is None:
        raise ApiError(Error.GROUP_NOT_FOUND)
    membership = Membership.get(group=group, user=by)
    if membership is None:
        raise ApiError(Error.NOT_A_MEMBER)
    if group.kind == direct.DIRECT:
        raise ApiError(Error.DIRECT_CHAT, info=direct_refusal)
    return group, by, role_of(group, by, membership)


def require_admin(role: str) -> None:
    """Raises ADMIN_ONLY unless `role` is the owner's or an admin's."""
    if role not in (OWNER, ADMIN):
        raise ApiError(Error.ADMIN_ONLY)


def require_owner(role: str) -> None:
    """Raises OWNER_ONLY unless `role` is the owner's."""
    if role != OWNER:
        raise ApiError(Error.OWNER_ONLY)


def update(group_id: int, by_id: int, name: str | None, join_approval: bool | None) -> Group:
    """An admin renames the group and/or switches join approval (what is given). Requests
    pending when approval goes off stay pending, for an admin to approve or decline."""
    if name is not None:
        checks.refuse_lone_surrogates("name", name)
    group, _, role = locked(group_id, by_id)
    require_admin(role)
    moved = False
    if name is not None and name != group.name:
        group.name, moved = name, True
    if join_approval is not None and join_approval != group.join_approval:
        group.join_approval, moved = join_approval, True
    if moved:
        changed(group)
    return group


def appoint(group_id: int, by_id: int, user_id: int) -> Group:
    """The owner makes the member `user_id` an admin (again: nothing changes). Raises
    OWNER_ONLY, NOT_YOURSELF (the owner), MEMBER_NOT_FOUND or TOO_MANY_ADMINS."""
    group, by, role = locked(group_id, by_id)
    require_owner(role)
    if user_id == by.id:
        raise ApiError(Error.NOT_YOURSELF)
    membership = _membership(group, user_id)
    if membership.role == ADMIN:
        return group
    admins = select(m for m in Membership if m.group == group and m.role == ADMIN).count()
    if admins >= MAX_ADMINS:
        raise ApiError(Error.TOO_MANY_ADMINS, limit=MAX_ADMINS)
    membership.role = ADMIN
    changed(group)
    return group


def dismiss(group_id: int, by_id: int, user_id: int) -> Group:
    """The owner makes the admin `user_id` a plain member; an admin may also step down
    themselves. Raises OWNER_ONLY, MEMBER_NOT_FOUND or NOT_AN_ADMIN (the owner included)."""
    group, by, role = locked(group_id, by_id)
    if not (role == OWNER or (role == ADMIN and user_id == by.id)):
        raise ApiError(Error.OWNER_ONLY)
    membership = _membership(group, user_id)
    if membership.role != ADMIN:
        raise ApiError(Error.NOT_AN_ADMIN)
    membership.role = MEMBER
    changed(group)
    return group


def transfer(group_id: int, by_id: int, user_id: int) -> Group:
    """The owner hands the group to the member `user_id`, staying a plain member. Raises
    OWNER_ONLY, NOT_YOURSELF or MEMBER_NOT_FOUND."""
    group, by, role = locked(group_id, by_id)
    require_owner(role)
    if user_id == by.id:
        raise ApiError(Error.NOT_YOURSELF)
    membership = _membership(group, user_id)
    make_owner(group, membership)
    changed(group)
    return group


def make_owner(group: Group, membership: Membership) -> None:
    """The member becomes the owner (no longer counted among the admins: if the group passes
    on again, they stay a plain member)."""
    group.owner = membership.user
    membership.role = MEMBER


def set_announcement(group_id: int, by_id: int, text: str) -> Group:
    """An admin sets the group's announcement, signed with their name and the time. Raises
    ADMIN_ONLY, or INVALID_REQUEST for text with NUL or a lone surrogate."""
    checks.refuse_lone_surrogates("text", text)
    checks.refuse_nul("text", text)
    group, by, role = locked(group_id, by_id)
    require_admin(role)
    group.announcement = text
    group.announcement_by = by
    group.announcement_at = now()
    changed(group)
    return group


def clear_announcement(group_id: int, by_id: int) -> Group:
    """An admin takes the announcement down (none: nothing changes). Raises ADMIN_ONLY."""
    group, _, role = locked(group_id, by_id)
    require_admin(role)
    if group.announcement is not None:
        group.announcement = None
        group.announcement_by = None
        group.announcement_at = None
        changed(group)
    return group


def admin_ids(group_ids: list[int]) -> dict[int, list[int]]:
    """The admins of each group (one query), in the order they joined."""
    found: dict[int, list[int]] = {}
    if not group_ids:
        return found
    for group_id, user_id, _, _ in select(
        (m.group.id, m.user.id, m.joined_at, m.id)
        for m in Membership
        if m.group.id in group_ids and m.role == ADMIN
    ).order_by(3, 4):
        found.setdefault(group_id, []).append(user_id)
    return found


def state(group: Group, admins: list[int], people: dict[int, dict]) -> dict:
    """What a group's view shows besides its messages and members, as `group.updated` carries
    it; `people` holds the view of whoever set the announcement (`announcers`)."""
    return {
        "owner_id": group.owner.id if group.owner else None,
        "admin_ids": admins,
        "announcement": _announcement(group, people),
        "join_approval": group.join_approval,
        "state_version": group.state_version,
    }


def announcers(groups: list[Group]) -> list[User]:
    return [g.announcement_by for g in groups if g.announcement_by is not None]


def state_frame(group: Group) -> str:
    """The `group.updated` frame of the group as it is now."""
    admins = admin_ids([group.id]).get(group.id, [])
    people = profiles.member_views(announcers([group]))
    shown = {"id": group.id, "name": group.name, **state(group, admins, people)}
    return frames.dumps({"type": "group.updated", "group": shown})


def changed(group: Group) -> None:
    """Give the group its next state version and announce its new state (the caller holds the
    group's lock, which every change of them takes: the version needs no SQL of its own). The
    frame is made here on SQLite; on PostgreSQL the hub reads it."""
    group.state_version += 1
    frame = state_frame(group) if events.in_process() else None
    events.emit(
        events.Event("group.updated", group_id=group.id, seq=group.state_version, frame=frame)
    )


def _membership(group: Group, user_id: int) -> Membership:
    membership = select(m for m in Membership if m.group == group and m.user.id == user_id).first()
    if membership is None:
        raise ApiError(Error.MEMBER_NOT_FOUND)
    return membership


def _announcement(group: Group, people: dict[int, dict]) -> dict | None:
    if group.announcement is None:
        return None
    by = group.announcement_by
    shown_by = people.get(by.id) if by is not None else None
    return {
        "text": group.announcement,
        "set_by": shown_by or {"id": None, "name": "deleted user", "avatar_url": None},
        "set_at": utc_iso(group.announcement_at),
    }
