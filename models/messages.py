"""Messages of a group chat: posting text or an upload, paging through them, their view.

Every message gets the next `seq` of its group (1, 2, 3 ...) in its own transaction, from
the group row's `last_seq` raised under that row's lock: a second message waits for the
first one's transaction to end, so seqs are given in commit order and a rolled-back message
gives its seq back. A client that has seen seq n has seen every message before it.
"""

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
from models import checks, events, frames, groups, media, profiles, reads
from models.entities import Group, Media, Message, User, db
from models.present import media_url, utc_iso
from models.spool import Spool

MAX_TEXT = 4000

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
    """A new message showing `shown` in `group` (its id and seq are known on return); the
    caller holds the group's lock (`groups.lock_for_message`) and commits."""
    return _new(group, sender, kind=shown.kind, media=shown)


def post_text(group_id: int, sender_id: int, text: str, client_msg_id: str | None = None):
    """Post `text` to the group from `sender_id`, committed; returns (message, created).

    With a `client_msg_id`, the sender's message with that id in this group, if there is
    one, is returned instead of a new one (created False), also when requests with it race:
    the unique key (group, sender, client_msg_id) lets one insert win, and the others read
    the winner back. Raises INVALID_TEXT, GROUP_NOT_FOUND or NOT_A_MEMBER.
    """
    check_text(text)
    group = groups.lock_for_message(group_id, sender_id)
    sender = User[sender_id]
    if client_msg_id is not None:
        found = _by_client_id(group_id, sender_id, client_msg_id)
        if found is not None:
            return found, False
    try:
        message = _new(group, sender, kind="text", text=text, client_msg_id=client_msg_id)
        message_id = message.id
        commit()
    except (IntegrityError, TransactionIntegrityError):  # Pony wraps it only sometimes
        # Only a concurrent post with the same client_msg_id breaks a unique key here: the
        # seq is taken under the group row's lock. Its message is committed: read it.
        rollback()
        found = _by_client_id(group_id, sender_id, client_msg_id) if client_msg_id else None
        if found is None:
            raise
        return found, False
    return Message[message_id], True


def check_text(text: str) -> None:
    """Raises INVALID_TEXT unless `text` is 1 to MAX_TEXT characters without NUL or a lone
    surrogate (JSON can carry both; PostgreSQL stores neither, and clients choke on them)."""
    if not 1 <= len(text) <= MAX_TEXT or "\0" in text or checks.has_lone_surrogate(text):
        raise ApiError(Error.INVALID_TEXT)


def _by_client_id(group_id: int, sender_id: int, client_msg_id: str) -> Message | None:
    return Message.get(
        lambda m: (
            m.group.id == group_id and m.sender.id == sender_id and m.client_msg_id == client_msg_id
        )
    )


def _new(group: Group, sender: User, **fields) -> Message:
    """The message with the group's next seq, flushed, its event emitted (sent on commit).
    The members its text mentions are recorded with it (`models.reads`). On SQLite the event
    brings the message's frame, rendered here once, and the hub sends it as it is; a
    notification (PostgreSQL) carries ids only, so no frame is made for it."""
    mentioned = reads.mentioned(group, sender, fields["text"]) if fields.get("text") else []
    seq = _next_seq(group.id)
    message = Message(
        group=group,
        sender=sender,
        seq=seq,
        created_at=now(),
        mentions=",".join(map(str, mentioned)) or None,
        **fields,
    )
    reads.record_mentions(group.id, seq, mentioned)
    flush()
    frame = frames.message_created(view(message)) if events.in_process() else None
    event = events.Event(
        "message.created", group_id=group.id, seq=seq, message_id=message.id, frame=frame
    )
    events.emit(event)
    return message


def _next_seq(group_id: int) -> int:
    """Raise the group's last_seq by one and return it (its last activity is now). The UPDATE
    holds the row's lock until the transaction ends (on SQLite the transaction holds the
    write lock already)."""
    table = Group._table_
    cursor = db.execute(
        f'UPDATE "{table}" SET "last_seq" = "last_seq" + 1, "last_activity_at" = $at '
        'WHERE "id" = $group_id RETURNING "last_seq"',
        {},
        {"group_id": group_id, "at": now()},
    )
    return cursor.fetchone()[0]


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


def after(group: Group, after_seq: int, limit: int) -> tuple[list[Message], str | None]:
    """Up to `limit` messages of the group with seq > `after_seq`, oldest first, and the
    next `after_seq` (the last seq returned) when more follow, else None."""
    found = (
        select(m for m in Message if m.group == group and m.seq > after_seq)
        .order_by(lambda m: m.seq)
        .prefetch(Message.media, Message.sender)[: limit + 1]
    )
    if len(found) <= limit:
        return list(found), None
    return list(found[:limit]), str(found[limit - 1].seq)


def view(message: Message, url: str | None = None, sender: dict | None = None) -> dict:
    """The message as members see it; `url` when one was signed already, `sender` when its
    sender's view was read already (`views`)."""
    shown = message.media
    return {
        "id": message.id,
        "group_id": message.group.id,
        "seq": message.seq,
        "kind": message.kind,
        "sender": sender or _sender_view(message.sender),
        "text": message.text,
        "client_msg_id": message.client_msg_id,
        "mentions": [int(i) for i in message.mentions.split(",")] if message.mentions else [],
        "media_id": shown.id if shown else None,
        "url": (url or media_url(shown.id)) if shown else None,
        "size": shown.size if shown else None,
        "content_type": shown.content_type if shown else None,
        "filename": shown.filename if shown else None,
        "created_at": utc_iso(message.created_at),
    }


def views(found: list[Message]) -> list[dict]:
    """The views of many messages, their senders read in one query (`profiles.member_views`)."""
    senders = profiles.member_views(m.sender for m in found)
    return [view(m, sender=senders.get(m.sender.id) if m.sender else None) for m in found]


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
    return profiles.member_view(user) if user is not None else dict(DELETED_SENDER)
