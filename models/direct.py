"""The rules of direct chats: one per pair of users, and who may write in it.

A direct chat is a conversation (`Group` of kind "direct") with exactly its two members,
found by its pair's key. Who may open one, or post to it, is decided when they do, so a
removed contact or a block stops new messages at once while the history stays readable:

- a user who blocked the other: YOU_BLOCKED (they know; unblocking is theirs to do);
- with direct chats between contacts only (`IM_DIRECT_CHATS=contacts`, the default), two
  users who are not contacts: CONTACTS_ONLY; a block ends the contact, so a blocked user is
  told exactly what any non-contact is told;
- with `IM_DIRECT_CHATS=anyone`, a user the other blocked, or whose other account is gone:
  NOT_ACCEPTED, which does not say why.
"""

from __future__ import annotations

from pony.orm import select

from im_core.config import current
from im_core.errors import ApiError, Error
from models import locks
from models.entities import Block, Contact, Group, Membership, User

GROUP = "group"
DIRECT = "direct"


def key(user_id: int, other_id: int) -> str:
    """The pair's key: the two ids in order."""
    low, high = sorted((user_id, other_id))
    return f"{low}:{high}"


def chat_ids(user_id: int, other_ids: list[int]) -> dict[int, int]:
    """The direct chat of `user_id` with each of `other_ids` that has one: other -> chat id,
    in one query."""
    keys = {key(user_id, other_id): other_id for other_id in other_ids}
    wanted = list(keys)
    found = select((g.direct_key, g.id) for g in Group if g.direct_key in wanted)
    return {keys[direct_key]: chat_id for direct_key, chat_id in found}


def lock(user_id: int, other_id: int) -> None:
    """Lock their direct chat, if they have one (after the pair's lock): posts to it that are
    in flight end first, later ones meet the rules as they are then."""
    found = select(g.id for g in Group if g.direct_key == key(user_id, other_id)).first()
    if found is not None:
        locks.group(found)


def peer(chat: Group, user: User) -> User | None:
    """The other member of a direct chat; None once their account is cancelled."""
    return select(m.user for m in Membership if m.group == chat and m.user != user).first()


def check_may_message(user: User, other: User | None) -> None:
    """Raises YOU_BLOCKED, CONTACTS_ONLY or NOT_ACCEPTED unless `user` may write to `other`
    (None: a cancelled account) in a direct chat (see the module's docstring)."""
    if other is not None and Block.exists(blocker=user, blocked=other):
        raise ApiError(Error.YOU_BLOCKED)
    contacts_only = current().direct_chats == "contacts"
    if contacts_only and (other is None or not Contact.exists(owner=user, other=other)):
        raise ApiError(Error.CONTACTS_ONLY)
    if other is None or Block.exists(blocker=other, blocked=user):
        raise ApiError(Error.NOT_ACCEPTED)


def check_may_post(conversation: Group, user: User) -> None:
    """For a direct chat, what `check_may_message` raises; nothing for a group."""
    if conversation.kind == DIRECT:
        check_may_message(user, peer(conversation, user))
