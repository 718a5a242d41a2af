"""Conversations as their members see them: the conversation list, the view of one, and
opening a direct chat.

A group chat and a direct chat are both conversations (`Group` rows of kind "group" or
"direct"): one id space, one `Message` schema, one seq each, one socket, one resume. The
list holds every conversation of a user, most recently active first, paged by a cursor; a
page costs the same few queries whatever the number of conversations, or of their members:
the page itself, then its last messages (with their media and senders), its member counts,
its direct chats' other members, everyone's avatars, and the viewer's read state (position,
unread and mention counts: `models.reads`), each in one query.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pony.orm import count, desc, flush, select

from im_core.config import now
from im_core.errors import ApiError, Error
from models import direct, locks, messages, notices, profiles, reads, roles
from models.entities import Group, Hidden, Membership, Message, User
from models.present import utc_iso

EPOCH = datetime(1970, 1, 1)


def open_direct(user_id: int, other_id: int) -> tuple[Group, bool]:
    """The direct chat of the two users, and whether it was made now.

    A chat they have is found whatever the rules say now (its history stays readable); a new
    one is made only where `direct.check_may_message` allows, under the pair's lock, so two
    calls at once make one chat. Both users hear of a new chat (a notice). Raises
    NOT_YOURSELF, USER_NOT_FOUND, INVALID_TOKEN (the caller's account went meanwhile), and
    what `direct.check_may_message` raises.
    """
    if user_id == other_id:
        raise ApiError(Error.NOT_YOURSELF)
    pair = direct.key(user_id, other_id)
    found = Group.get(direct_key=pair)
    if found is not None:
        return found, False
    if not User.exists(id=other_id):
        raise ApiError(Error.USER_NOT_FOUND)
    locks.forget_reads()
    locks.pair(user_id, other_id)
    me, other = User.get(id=user_id), User.get(id=other_id)
    if me is None:
        raise ApiError(Error.INVALID_TOKEN)
    if other is None:
        raise ApiError(Error.USER_NOT_FOUND)
    found = Group.get(direct_key=pair)
    if found is not None:
        return found, False
    direct.check_may_message(me, other)
    started = now()
    chat = Group(kind=direct.DIRECT, direct_key=pair, created_at=started, last_activity_at=started)
    for member in (me, other):
        Membership(group=chat, user=member, joined_at=started)
    flush()
    for viewer in (me, other):
        shown = summaries([chat], viewer)[0]
        notices.send(viewer.id, "conversation.created", joins=chat.id, group=shown)
    return chat, True


def page(user: User, cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Up to `limit` conversations of `user`, most recently active first (their summaries),
    and the cursor of the next page: the activity time and id of the page's last one."""
    query = select(g for g in Group for m in Membership if m.group == g and m.user == user)
    if cursor is not None:
        at, before = _position(cursor)
        query = query.where(
            lambda g: g.last_activity_at < at or (g.last_activity_at == at and g.id < before)
        )
    found = list(query.order_by(lambda g: (desc(g.last_activity_at), desc(g.id)))[: limit + 1])
    next_page = _cursor(found[limit - 1]) if len(found) > limit else None
    return summaries(found[:limit], user), next_page


def summaries(conversations: list[Group], viewer: User) -> list[dict]:
    """The conversations as they stand in `viewer`'s list (see `page` for the queries)."""
    ids = [c.id for c in conversations]
    if not ids:
        return []
    last = {
        m.group.id: m
        for m in select(
            m for m in Message if m.group.id in ids and m.seq == m.group.last_seq
        ).prefetch(Message.media, Message.sender)
    }
    if last:  # a last message the viewer deleted for themselves is not shown
        seqs = [m.seq for m in last.values()]
        for group_id, seq in select(
            (h.group.id, h.seq)
            for h in Hidden
            if h.user == viewer and h.group.id in ids and h.seq in seqs
        ):
            if last.get(group_id) is not None and last[group_id].seq == seq:
                del last[group_id]
    sizes = dict(select((m.group.id, count(m)) for m in Membership if m.group.id in ids))
    peers = _peers([c for c in conversations if c.kind == direct.DIRECT], viewer)
    admins = roles.admin_ids([c.id for c in conversations if c.kind == direct.GROUP])
    people = profiles.member_views(
        [*peers.values(), *(m.sender for m in last.values()), *roles.announcers(conversations)]
    )
    read = reads.states(viewer.id, ids)
    shown = []
    for c in conversations:
        summary = {
            **_heading(c, peers, people, admins.get(c.id, []), viewer),
            **_read_state(read.get(c.id)),
            "member_count": sizes.get(c.id, 0),
            "created_at": utc_iso(c.created_at),
            "last_activity_at": utc_iso(c.last_activity_at),
        }
        if c.id in last:
            message = last[c.id]
            sender = people.get(message.sender.id) if message.sender else None
            summary["last_message"] = messages.view(message, sender=sender)
        shown.append(summary)
    return shown


def view(conversation: Group, viewer: User) -> dict:
    """One conversation with its members, in the order they joined, each with their role."""
    memberships = list(
        conversation.memberships.select()
        .order_by(lambda m: (m.joined_at, m.id))
        .prefetch(Membership.user)
    )
    people = profiles.member_views(
        [*(m.user for m in memberships), *roles.announcers([conversation])]
    )
    peers = _peers([conversation], viewer) if conversation.kind == direct.DIRECT else {}
    admins = [m.user.id for m in memberships if m.role == roles.ADMIN]
    return {
        **_heading(conversation, peers, people, admins, viewer),
        **_read_state(reads.states(viewer.id, [conversation.id]).get(conversation.id)),
        "members": [
            {**people[m.user.id], "role": roles.role_of(conversation, m.user, m)}
            for m in memberships
        ],
        "created_at": utc_iso(conversation.created_at),
    }


def _read_state(state: tuple[int, int, int] | None) -> dict:
    """The viewer's position and counts (`models.reads`); nothing read if not a member."""
    read_seq, unread, mentions = state or (0, 0, 0)
    return {"read_seq": read_seq, "unread_count": unread, "mention_count": mentions}


def _heading(
    conversation: Group,
    peers: dict[int, User],
    people: dict[int, dict],
    admins: list[int],
    viewer: User,
) -> dict:
    """What names a conversation and says who runs it: a group its name, owner, admins, the
    viewer's role, its announcement and join approval (`models.roles.state`); a direct chat
    the other member as `peer` (its `name` is theirs, as a chat list shows it: it has no name
    of its own) and no roles."""
    if conversation.kind != direct.DIRECT:
        state = roles.state(conversation, admins, people)
        if state["owner_id"] == viewer.id:
            role = roles.OWNER
        else:
            role = roles.ADMIN if viewer.id in admins else roles.MEMBER
        return {
            "id": conversation.id,
            "kind": conversation.kind,
            "name": conversation.name,
            "role": role,
            **state,
        }
    other = peers.get(conversation.id)
    shown = people[other.id] if other is not None else dict(messages.DELETED_SENDER)
    return {
        "id": conversation.id,
        "kind": conversation.kind,
        "name": shown["name"],
        "role": roles.MEMBER,
        "owner_id": None,
        "admin_ids": [],
        "announcement": None,
        "join_approval": False,
        "state_version": conversation.state_version,
        "peer": shown,
    }


def _peers(chats: list[Group], viewer: User) -> dict[int, User]:
    """The other member of each direct chat (those whose account is not cancelled)."""
    ids = [c.id for c in chats]
    if not ids:
        return {}
    found = select(m for m in Membership if m.group.id in ids and m.user != viewer).prefetch(
        Membership.user
    )
    return {m.group.id: m.user for m in found}


def _cursor(conversation: Group) -> str:
    moment = conversation.last_activity_at - EPOCH
    micros = (moment.days * 86400 + moment.seconds) * 1_000_000 + moment.microseconds
    return f"{micros}-{conversation.id}"


def _position(cursor: str) -> tuple[datetime, int]:
    micros, _, conversation_id = cursor.partition("-")
    return EPOCH + timedelta(microseconds=int(micros)), int(conversation_id)
