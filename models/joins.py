"""Join approval: with it on, a plain member's add of someone is a request that an admin (or
the owner) approves or declines; its maker or the person it adds may withdraw it.

A request concerns its maker, the person it would add, and the group's owner and admins:
each change reaches them all as a notice (`join_request.created`, then
`join_request.removed` with why: approved, declined or cancelled), live and on resume. Only
pending requests are kept; one per person per group.

Every change takes the group's lock (exclusive), so an approval racing a withdrawal ends as
one of them, the other answered JOIN_REQUEST_NOT_FOUND. A request lapses (cancelled) when its
maker leaves the group or the group goes; a request for a person who joins another way is
done (approved). Requests pending when approval is switched off stay, for an admin to answer.
"""

from __future__ import annotations

from pony.orm import IntegrityError, TransactionIntegrityError, count, flush, rollback, select

from im_core.config import current, now
from im_core.errors import ApiError, Error
from models import events, locks, notices, profiles, roles
from models.entities import Group, JoinRequest, Membership, User
from models.present import utc_iso

APPROVED = "approved"
DECLINED = "declined"
CANCELLED = "cancelled"


def make(group: Group, by: User, user: User) -> JoinRequest:
    """The member `by` asks to add `user` (the caller holds the group's lock and checked that
    `user` is not a member). Raises JOIN_REQUEST_PENDING when one waits already, GROUP_FULL
    when no place is free (a request no admin could approve)."""
    if JoinRequest.exists(group=group, user=user):
        raise ApiError(Error.JOIN_REQUEST_PENDING)
    require_room(group)
    made = JoinRequest(group=group, user=user, added_by=by, created_at=now())
    flush()  # its id, for the notices
    shown = views([made])[0]
    for user_id in _concerned(made):
        notices.send(user_id, "join_request.created", request=shown)
    return made


def pending(group_id: int, by_id: int, cursor: int | None, limit: int):
    """The group's pending requests as `by_id` may see them (all of them for the owner and
    admins, their own for a member), oldest first, and the cursor of the next page."""
    group, by, role = roles.locked_for_reading(group_id, by_id)
    query = select(r for r in JoinRequest if r.group == group)
    if role == roles.MEMBER:
        query = query.where(lambda r: r.added_by == by)
    if cursor is not None:
        query = query.where(lambda r: r.id > cursor)
    found = list(query.order_by(JoinRequest.id)[: limit + 1])
    next_page = str(found[limit - 1].id) if len(found) > limit else None
    return views(found[:limit]), next_page


def approve(group_id: int, by_id: int, request_id: int) -> Group:
    """An admin approves: the person becomes a member (as an add would make them), everyone
    concerned hears it. Raises ADMIN_ONLY, JOIN_REQUEST_NOT_FOUND (also when answered,
    withdrawn, or the person's account cancelled meanwhile) or GROUP_FULL (the request stays
    pending, for when a place is free)."""
    found = JoinRequest.get(id=request_id)
    user_id = found.user.id if found is not None else None
    # The person's account first (shared: its cancellation waits, or is waited for), then
    # the group, as an add takes them.
    locks.forget_reads()
    if user_id is not None:
        locks.account(user_id, shared=True)
    group, _, role = roles.locked(group_id, by_id)
    roles.require_admin(role)
    found = _pending_in(group, request_id)
    if found.user.id != user_id:  # not the request read before the locks: ids are not reused
        raise ApiError(Error.JOIN_REQUEST_NOT_FOUND)
    admit(group, found.user)  # answers `found` as approved
    return group


def decline(group_id: int, by_id: int, request_id: int) -> None:
    """An admin declines the request; everyone concerned hears it. Raises ADMIN_ONLY or
    JOIN_REQUEST_NOT_FOUND."""
    group, _, role = roles.locked(group_id, by_id)
    roles.require_admin(role)
    close(_pending_in(group, request_id), DECLINED)


def cancel(group_id: int, by_id: int, request_id: int) -> None:
    """The request's maker withdraws it, or the person it adds turns it down (they need not
    be a member). Raises GROUP_NOT_FOUND, DIRECT_CHAT, JOIN_REQUEST_NOT_FOUND, or
    REQUEST_NOT_YOURS to another member of the group."""
    locks.forget_reads()
    locks.group(group_id)
    group = Group.get(id=group_id)
    if group is None:
        raise ApiError(Error.GROUP_NOT_FOUND)
    found = JoinRequest.get(id=request_id)
    concerned = found is not None and found.group == group
    if concerned and by_id in (found.added_by.id, found.user.id):
        close(found, CANCELLED)
        return
    if concerned and Membership.exists(group=group, user=by_id):
        raise ApiError(Error.REQUEST_NOT_YOURS)
    # Anyone else learns nothing of the group's requests.
    raise ApiError(Error.JOIN_REQUEST_NOT_FOUND)


def admit(group: Group, user: User) -> None:
    """`user` becomes a member of `group` (the caller holds the group's lock and checked that
    they are not one): the group's sockets and theirs hear it, and a request pending for them
    is done (approved). Raises GROUP_FULL when it has `max_group_members` already, or
    ALREADY_A_MEMBER when a concurrent request added them (their membership's unique key)."""
    require_room(group)
    # A new member has read the history: only what comes after counts as unread.
    Membership(group=group, user=user, joined_at=now(), read_seq=group.last_seq)
    try:
        flush()  # the unique key decides here, before an event goes out for the row
    except (IntegrityError, TransactionIntegrityError):  # Pony wraps it only sometimes
        rollback()
        raise ApiError(Error.ALREADY_A_MEMBER) from None
    events.emit(events.Event("member.added", group_id=group.id, user_id=user.id))
    waiting = JoinRequest.get(group=group, user=user)
    if waiting is not None:
        close(waiting, APPROVED)


def require_room(group: Group) -> None:
    """Raises GROUP_FULL unless `group` has fewer members than `IM_MAX_GROUP_MEMBERS`. Counted
    under the group's lock (the caller's), so two adds at once into its last place take
    turns and the second one counts the first."""
    limit = current().max_group_members
    if count(m for m in Membership if m.group == group) >= limit:
        raise ApiError(Error.GROUP_FULL, limit=limit)


def close(found: JoinRequest, reason: str) -> None:
    """The request is no longer pending: everyone concerned hears why, and it goes."""
    for user_id in _concerned(found):
        notices.send(
            user_id,
            "join_request.removed",
            request_id=found.id,
            group_id=found.group.id,
            reason=reason,
        )
    found.delete()


def lapse_made_by(group: Group, user: User) -> None:
    """The requests `user` made in `group` lapse: they are leaving it (the caller holds the
    group's lock)."""
    for found in select(r for r in JoinRequest if r.group == group and r.added_by == user):
        close(found, CANCELLED)


def lapse_all(group: Group) -> None:
    """Every request of the group lapses: the group goes (the caller holds its lock)."""
    for found in select(r for r in JoinRequest if r.group == group):
        close(found, CANCELLED)


def forget_account(user: User) -> None:
    """Before an account goes: the requests that would add it lapse, their makers and the
    groups' admins hearing it. (Its requests go with the account; those it made lapsed as it
    left its groups.)"""
    for found in select(r for r in JoinRequest if r.user == user):
        close(found, CANCELLED)


def views(found: list[JoinRequest]) -> list[dict]:
    people = profiles.member_views([*(r.user for r in found), *(r.added_by for r in found)])
    return [
        {
            "id": r.id,
            "group_id": r.group.id,
            "group_name": r.group.name,
            "user": people[r.user.id],
            "added_by": people[r.added_by.id],
            "created_at": utc_iso(r.created_at),
        }
        for r in found
    ]


def _pending_in(group: Group, request_id: int) -> JoinRequest:
    found = JoinRequest.get(id=request_id)
    if found is None or found.group != group:
        raise ApiError(Error.JOIN_REQUEST_NOT_FOUND)
    return found


def _concerned(found: JoinRequest) -> list[int]:
    """Who hears of a request: the person it adds, its maker, the owner, the admins."""
    group = found.group
    ids = [found.user.id, found.added_by.id]
    if group.owner is not None:
        ids.append(group.owner.id)
    ids += roles.admin_ids([group.id]).get(group.id, [])
    return list(dict.fromkeys(ids))
