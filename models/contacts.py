"""Contacts: requests by name, answered by the addressee; contacts, two rows per pair; blocks.

Everything between two users takes the pair's lock first (`locks.pair`), then reads again
what it acts on: two requests both ways at once end as one contact, an accept racing a
cancel leaves one of them done and the other answered REQUEST_NOT_FOUND. Each change is a
notice (`models.notices`) to the users it concerns, so their sockets hear it live and on
resume.

A block ends the contact and the pending requests both ways, stops the blocked user's
requests and direct messages, and leaves the direct chat's history readable.
"""

from __future__ import annotations

from pony.orm import desc, flush, select

from im_core.config import now
from im_core.errors import ApiError, Error
from models import checks, direct, locks, notices, profiles
from models.entities import Block, Contact, ContactRequest, User
from models.present import utc_iso


def request(requester_id: int, name: str, note: str) -> tuple[str, object]:
    """`requester_id` asks the user named `name` to be a contact, with a `note` ("" none).

    Returns ("requested", the new ContactRequest), or ("contact", the Contact of the
    requester) when the other had asked them already: that request is accepted instead.
    Raises USERNAME_NOT_FOUND, NOT_YOURSELF, YOU_BLOCKED, NOT_ACCEPTED (the other blocked
    them), ALREADY_CONTACTS or REQUEST_PENDING.
    """
    checks.refuse_lone_surrogates("note", note)
    other = profiles.by_name(name)
    if other is None:
        raise ApiError(Error.USERNAME_NOT_FOUND)
    me, other = _pair(requester_id, other.id, missing=Error.USERNAME_NOT_FOUND)
    _refuse_blocks(me, other)
    if Contact.exists(owner=me, other=other):
        raise ApiError(Error.ALREADY_CONTACTS)
    theirs = ContactRequest.get(requester=other, addressee=me)
    if theirs is not None:
        return "contact", _make_contact(theirs)
    if ContactRequest.exists(requester=me, addressee=other):
        raise ApiError(Error.REQUEST_PENDING)
    made = ContactRequest(requester=me, addressee=other, note=note, created_at=now())
    flush()  # its id, for the notices
    shown = request_view(made)
    for user in (other, me):
        notices.send(user.id, "contact.requested", request=shown)
    return "requested", made


def requests_of(user: User, direction: str, cursor: str | None, limit: int):
    """The user's pending requests, `incoming` or `outgoing`, newest first, and the cursor
    of the next page (the id of the page's last request)."""
    if direction == "incoming":
        query = select(r for r in ContactRequest if r.addressee == user)
    else:
        query = select(r for r in ContactRequest if r.requester == user)
    if cursor is not None:
        before = int(cursor)
        query = query.where(lambda r: r.id < before)
    found = query.order_by(lambda r: desc(r.id)).prefetch(
        ContactRequest.requester, ContactRequest.addressee
    )[: limit + 1]
    return _page(list(found), limit, lambda r: str(r.id))


def accept(user_id: int, request_id: int) -> Contact:
    """The addressee accepts: both become contacts. Raises REQUEST_NOT_FOUND (also when it
    was answered or withdrawn meanwhile), or REQUEST_NOT_YOURS to the requester."""
    found = _request_to(user_id, request_id)
    _pair(user_id, found.requester.id, missing=Error.REQUEST_NOT_FOUND)
    return _make_contact(_request_to(user_id, request_id))


def decline(user_id: int, request_id: int) -> None:
    """The addressee declines. Raises REQUEST_NOT_FOUND, or REQUEST_NOT_YOURS to the
    requester."""
    found = _request_to(user_id, request_id)
    _pair(user_id, found.requester.id, missing=Error.REQUEST_NOT_FOUND)
    _withdraw(_request_to(user_id, request_id), "declined")


def cancel(user_id: int, request_id: int) -> None:
    """The requester withdraws their request. Raises REQUEST_NOT_FOUND, or REQUEST_NOT_YOURS
    to the addressee."""
    found = _request_from(user_id, request_id)
    _pair(user_id, found.addressee.id, missing=Error.REQUEST_NOT_FOUND)
    _withdraw(_request_from(user_id, request_id), "cancelled")


def contacts_of(user: User, cursor: str | None, limit: int):
    """The user's contacts by name (ignoring case), and the cursor of the next page (the
    name of the page's last one, lower-cased)."""
    query = select(c for c in Contact if c.owner == user)
    if cursor is not None:
        query = query.where(lambda c: c.other.name_key > cursor)
    found = query.order_by(lambda c: c.other.name_key).prefetch(Contact.other)
    return _page(list(found[: limit + 1]), limit, lambda c: c.other.name_key)


def remove(user_id: int, other_id: int) -> None:
    """End the contact between the two, both sides. Their direct chat stays readable, and
    takes no new message unless direct chats are open to anyone. Raises CONTACT_NOT_FOUND."""
    me, other = _pair(user_id, other_id, missing=Error.CONTACT_NOT_FOUND)
    if not Contact.exists(owner=me, other=other):
        raise ApiError(Error.CONTACT_NOT_FOUND)
    _end_contact(me, other)


def block(user_id: int, other_id: int) -> tuple[Block, bool]:
    """`user_id` blocks `other_id`: (the block, whether it is new). The contact and the
    requests between them end. Raises NOT_YOURSELF or USER_NOT_FOUND."""
    me, other = _pair(user_id, other_id, missing=Error.USER_NOT_FOUND)
    found = Block.get(blocker=me, blocked=other)
    if found is not None:
        return found, False
    if Contact.exists(owner=me, other=other):
        _end_contact(me, other)
    for pending, reason in (
        (ContactRequest.get(requester=other, addressee=me), "declined"),
        (ContactRequest.get(requester=me, addressee=other), "cancelled"),
    ):
        if pending is not None:
            _withdraw(pending, reason)
    made = Block(blocker=me, blocked=other, created_at=now())
    flush()
    notices.send(me.id, "block.added", block=block_view(made))
    return made, True


def unblock(user_id: int, other_id: int) -> None:
    """Raises BLOCK_NOT_FOUND (also for a user that does not exist) or NOT_YOURSELF."""
    me, other = _pair(user_id, other_id, missing=Error.BLOCK_NOT_FOUND)
    found = Block.get(blocker=me, blocked=other)
    if found is None:
        raise ApiError(Error.BLOCK_NOT_FOUND)
    found.delete()
    notices.send(me.id, "block.removed", user_id=other.id)


def blocks_of(user: User, cursor: str | None, limit: int):
    """The users `user` blocked, most recent first, and the cursor of the next page."""
    query = select(b for b in Block if b.blocker == user)
    if cursor is not None:
        before = int(cursor)
        query = query.where(lambda b: b.id < before)
    found = query.order_by(lambda b: desc(b.id)).prefetch(Block.blocked)
    return _page(list(found[: limit + 1]), limit, lambda b: str(b.id))


def are_contacts(user: User, other: User) -> bool:
    return Contact.exists(owner=user, other=other)


def blocked(blocker: User, blocked_user: User) -> bool:
    """Whether `blocker` blocked `blocked_user`."""
    return Block.exists(blocker=blocker, blocked=blocked_user)


def forget_account(user: User) -> None:
    """Before an account goes: its contacts hear that it is no longer one, and the users it
    asked, or who asked it, that the request is gone. (Its rows go with the account.)"""
    for contact in select(c for c in Contact if c.owner == user):
        notices.send(contact.other.id, "contact.removed", user_id=user.id)
    for pending in select(r for r in ContactRequest if r.requester == user):
        _tell(pending.addressee.id, pending, "cancelled")
    for pending in select(r for r in ContactRequest if r.addressee == user):
        _tell(pending.requester.id, pending, "declined")


# --- Views --------------------------------------------------------------------------------


def request_view(found: ContactRequest) -> dict:
    return request_views([found])[0]


def request_views(found: list[ContactRequest]) -> list[dict]:
    people = profiles.member_views([*(r.requester for r in found), *(r.addressee for r in found)])
    return [
        {
            "id": r.id,
            "requester": people[r.requester.id],
            "addressee": people[r.addressee.id],
            "note": r.note or None,
            "created_at": utc_iso(r.created_at),
        }
        for r in found
    ]


def contact_views(found: list[Contact]) -> list[dict]:
    """Contacts as their owner sees them (one owner's), each with the id of their direct
    chat if they have one: the other users and the chats read in one query each."""
    if not found:
        return []
    people = profiles.member_views(c.other for c in found)
    chats = direct.chat_ids(found[0].owner.id, [c.other.id for c in found])
    return [
        {
            "user": people[c.other.id],
            "since": utc_iso(c.created_at),
            "conversation_id": chats.get(c.other.id),
        }
        for c in found
    ]


def block_view(found: Block) -> dict:
    return block_views([found])[0]


def block_views(found: list[Block]) -> list[dict]:
    people = profiles.member_views(b.blocked for b in found)
    return [{"user": people[b.blocked.id], "since": utc_iso(b.created_at)} for b in found]


# --- Inside -------------------------------------------------------------------------------


def _pair(user_id: int, other_id: int, *, missing: Error) -> tuple[User, User]:
    """Both users, read afresh under the pair's lock. Raises NOT_YOURSELF, INVALID_TOKEN
    when the caller's account went meanwhile, `missing` when the other's is not there."""
    if user_id == other_id:
        raise ApiError(Error.NOT_YOURSELF)
    if not User.exists(id=other_id):
        raise ApiError(missing)
    locks.forget_reads()
    locks.pair(user_id, other_id)
    me, other = User.get(id=user_id), User.get(id=other_id)
    if me is None:
        raise ApiError(Error.INVALID_TOKEN)
    if other is None:
        raise ApiError(missing)
    return me, other


def _refuse_blocks(me: User, other: User) -> None:
    if blocked(me, other):
        raise ApiError(Error.YOU_BLOCKED)
    if blocked(other, me):
        raise ApiError(Error.NOT_ACCEPTED)


def _make_contact(answered: ContactRequest) -> Contact:
    """Accept `answered`: the two become contacts (both rows), the request goes, both hear."""
    requester, addressee = answered.requester, answered.addressee
    request_id = answered.id
    answered.delete()
    started = now()
    sides = {
        requester.id: Contact(owner=requester, other=addressee, created_at=started),
        addressee.id: Contact(owner=addressee, other=requester, created_at=started),
    }
    flush()
    for user_id, side in sides.items():
        shown = contact_views([side])[0]
        notices.send(user_id, "contact.added", contact=shown, request_id=request_id)
    return sides[addressee.id]


def _end_contact(me: User, other: User) -> None:
    """Delete both sides of the contact (the caller holds the pair's lock); posts in flight
    to their direct chat finish first (its lock), later ones meet the new rules."""
    direct.lock(me.id, other.id)
    for owner, contact in ((me, other), (other, me)):
        Contact.get(owner=owner, other=contact).delete()
    notices.send(me.id, "contact.removed", user_id=other.id)
    notices.send(other.id, "contact.removed", user_id=me.id)


def _withdraw(pending: ContactRequest, reason: str) -> None:
    """The request goes; both sides hear why (declined or cancelled)."""
    for user_id in (pending.requester.id, pending.addressee.id):
        _tell(user_id, pending, reason)
    pending.delete()


def _tell(user_id: int, pending: ContactRequest, reason: str) -> None:
    """A `contact.request.removed` notice: the request is no longer pending, and why."""
    notices.send(user_id, "contact.request.removed", request_id=pending.id, reason=reason)


def _request_to(user_id: int, request_id: int) -> ContactRequest:
    """The pending request to `user_id`. Raises REQUEST_NOT_YOURS to its requester,
    REQUEST_NOT_FOUND to anyone else (they learn nothing of other people's requests)."""
    return _request(user_id, request_id, lambda r: r.addressee.id, lambda r: r.requester.id)


def _request_from(user_id: int, request_id: int) -> ContactRequest:
    """The pending request of `user_id`. Raises REQUEST_NOT_YOURS to its addressee,
    REQUEST_NOT_FOUND to anyone else."""
    return _request(user_id, request_id, lambda r: r.requester.id, lambda r: r.addressee.id)


def _request(user_id: int, request_id: int, actor, other_party) -> ContactRequest:
    found = ContactRequest.get(id=request_id)
    if found is None or user_id not in (actor(found), other_party(found)):
        raise ApiError(Error.REQUEST_NOT_FOUND)
    if actor(found) != user_id:
        raise ApiError(Error.REQUEST_NOT_YOURS)
    return found


def _page(found: list, limit: int, cursor_of) -> tuple[list, str | None]:
    if len(found) <= limit:
        return found, None
    return found[:limit], cursor_of(found[limit - 1])
