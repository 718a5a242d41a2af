"""Messages of a group chat: posting an upload, paging through them, and their view."""

from __future__ import annotations

from pony.orm import desc, flush, select

from im_api.config import now
from models import groups, media, users
from models.entities import Group, Media, Message, User
from models.present import media_url, utc_iso
from models.storage import Spool

DELETED_SENDER = {"id": None, "name": "deleted user", "avatar_url": None}


def send(group: Group, sender: User, kind: str, spool: Spool, filename: str) -> Message:
    """Keep an upload of `kind` and post it to the group as a message, committed.

    The bytes are checked first; then the group is locked (shared) and the membership read
    again, so the message never lands in a group being deleted or from a member who left.
    Raises what `models.media.inspect` raises, GROUP_NOT_FOUND or NOT_A_MEMBER (nothing is
    kept then).
    """
    content_type = media.inspect(spool, kind)
    sender_id = sender.id
    group = groups.lock_for_message(group.id, sender_id)
    sender = User[sender_id]
    with media.committing(spool, filename, kind, sender, content_type) as stored:
        message = post(group, sender, stored)
    return message


def post(group: Group, sender: User, shown: Media) -> Message:
    """A new message showing `shown` in `group` (its id is known on return)."""
    message = Message(group=group, sender=sender, kind=shown.kind, media=shown, created_at=now())
    flush()
    return message


def page(group: Group, cursor: str | None, limit: int) -> tuple[list[Message], str | None]:
    """Up to `limit` messages of the group, newest first, and the cursor of the next page.

    The cursor is the id of the last message of the page (opaque to clients): the next
    page holds the messages older than it, so messages posted meanwhile never shift it.
    """
    query = select(m for m in Message if m.group == group)
    if cursor is not None:
        before = int(cursor)
        query = query.where(lambda m: m.id < before)
    # One query for the messages, then their media and senders in bulk (not one per message).
    found = query.order_by(lambda m: desc(m.id)).prefetch(Message.media, Message.sender)[
        : limit + 1
    ]
    if len(found) <= limit:
        return list(found), None
    return list(found[:limit]), str(found[limit - 1].id)


def view(message: Message, url: str | None = None) -> dict:
    """The message as members see it; `url` when one was signed already."""
    shown = message.media
    return {
        "id": message.id,
        "kind": message.kind,
        "sender": _sender_view(message.sender),
        "media_id": shown.id,
        "url": url or media_url(shown.id),
        "size": shown.size,
        "content_type": shown.content_type,
        "filename": shown.filename,
        "created_at": utc_iso(message.created_at),
    }


def uploaded(message: Message) -> dict:
    """What an upload answers: the media's URL and ids, and the message it became."""
    url = media_url(message.media.id)
    return {
        "url": url,
        "media_id": message.media.id,
        "message_id": message.id,
        "message": view(message, url),
    }


def _sender_view(user: User | None) -> dict:
    return users.member_view(user) if user is not None else dict(DELETED_SENDER)
