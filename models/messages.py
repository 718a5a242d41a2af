"""Messages of a group chat: posting text or an upload, paging through them, their view.

Every message gets the next `seq` of its group (1, 2, 3 ...) in its own transaction, from
the group row's `last_seq` raised under that row's lock: a second message waits for the
first one's transaction to end, so seqs are given in commit order and a rolled-back message
gives its seq back. A client that has seen seq n has seen every message before it.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import NoReturn

from pony.orm import (
    IntegrityError,
    TransactionIntegrityError,
    commit,
    desc,
    exists,
    flush,
    rollback,
    select,
)

from im_core.config import now
from im_core.errors import ApiError, Error
from models import checks, direct, events, frames, groups, locks, media, profiles, reads
from models.entities import Group, Hidden, Media, Membership, Message, User, db
from models.present import media_url, utc_iso
from models.spool import Spool

MAX_TEXT = 4000
# Characters of an answered message's text shown in the quote of a reply.
EXCERPT = 100
# The attributes `view` reads, but the id.
VIEWED = (
    "group",
    "seq",
    "rev",
    "kind",
    "sender",
    "text",
    "client_msg_id",
    "mentions",
    "media",
    "created_at",
    "edited_at",
    "forwarded",
    "recalled_at",
    "recalled_by",
    "reply_to_seq",
)

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
    return Message[_new(group.id, sender.id, kind=shown.kind, media=shown)[0]]


def post_text(
    group_id: int,
    sender_id: int,
    text: str,
    client_msg_id: str | None = None,
    reply_to_seq: int | None = None,
) -> tuple[dict, bool]:
    """Post `text` to the group from `sender_id`, committed; returns (its view, created).

    With a `client_msg_id`, the sender's message with that id in this group, if there is
    one, is answered instead of a new one (created False), also when requests with it race:
    the unique key (group, sender, client_msg_id) lets one insert win, and the others read
    the winner back. With `reply_to_seq`, it answers that message of the group. Raises
    INVALID_TEXT, GROUP_NOT_FOUND, NOT_A_MEMBER, REPLY_NOT_FOUND, and in a direct chat what
    `direct.check_may_post` raises.

    The hot path of the service, so its database work is counted: on PostgreSQL the group's
    lock taken with one read of the sender's name and avatar, one statement that checks the
    membership, takes the seq and rev, inserts the message and sends its notification, and
    the commit.
    The `client_msg_id` is looked up only when the unique key refuses the insert.
    """
    check_text(text)
    locks.forget_reads()
    # Read with the group's lock (shared: the member stays, the group too, until the commit)
    # and before its row is locked, which every post to the group waits for: that lock is
    # held for the statement that takes the seq and inserts, and the commit only. A rename
    # committed meanwhile shows from the next message on. No account (cancelled just now):
    # the statement finds no membership and says so.
    sender = profiles.member_view_of(sender_id, locking_group=group_id)
    try:
        _, shown = _new(
            group_id,
            sender_id,
            sender_view=sender,
            unread_session=True,  # forget_reads() above
            kind="text",
            text=text,
            client_msg_id=client_msg_id,
            reply_to_seq=reply_to_seq,
        )
        commit()
    except (IntegrityError, TransactionIntegrityError):  # Pony wraps it only sometimes
        # Only a post with the same client_msg_id breaks a unique key here (the seq is taken
        # under the group row's lock): a retry, or a request racing it. Its message is
        # committed: read it.
        rollback()
        found = _by_client_id(group_id, sender_id, client_msg_id) if client_msg_id else None
        if found is None:
            raise
        return view(found), False
    return shown, True


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


def _new(
    group_id: int,
    sender_id: int,
    sender_view: dict | None = None,
    unread_session: bool = False,
    **fields,
) -> tuple[int, dict]:
    """The id of the message with the group's next seq and rev, written, and its view (showing
    `sender_view` as its sender when the caller read it already); its event goes on commit.
    With `unread_session` (the caller's session holds no object read before: nothing of
    Pony's could refer to the new row), PostgreSQL inserts it in the statement that takes the
    seq (`_insert_with_next_seq`); otherwise Pony inserts it, and sees it in the collections
    it has loaded (a media file's messages, say).
    The caller holds the group's lock (shared); the membership is checked here, in the
    statement that takes the seq (and the rules of a direct chat after it). The members its
    text mentions are recorded with it (`models.reads`), a reply's seq checked. On SQLite
    the event brings the message's frame, rendered once from the view; on PostgreSQL the
    statement that takes the seq (or inserts) sends the notification, ids only, and the frame
    of a message inserted with its seq is kept for this worker's hub (`events.keep_frame`). Raises
    GROUP_NOT_FOUND, NOT_A_MEMBER, REPLY_NOT_FOUND, what `direct.check_may_post` raises."""
    # A forwarded text is someone else's words: it mentions nobody here.
    quoting = fields.get("text") and not fields.get("forwarded")
    mentioned = reads.mentioned(group_id, sender_id, fields["text"]) if quoting else []
    fields.setdefault("forwarded", False)  # not the column's default: Pony reads those back
    fields.update(created_at=now(), mentions=",".join(map(str, mentioned)) or None)
    inserted_with_seq = unread_session and not events.in_process()
    if inserted_with_seq:
        message_id, seq, rev, kind = _insert_with_next_seq(group_id, sender_id, fields)
    else:
        message_id, seq, rev, kind = _insert_after_next_seq(group_id, sender_id, fields)
    # The rules below undo the message when they refuse it: the error rolls back.
    if kind == direct.DIRECT:
        direct.check_may_post(Group[group_id], User[sender_id])
    reply_to = fields.get("reply_to_seq")
    if reply_to is not None and not 1 <= reply_to < seq:
        raise ApiError(Error.REPLY_NOT_FOUND)
    reads.record_mentions(group_id, seq, mentioned)
    # What the view reads, as written (nothing read back): unset attributes are None.
    made = SimpleNamespace(**dict.fromkeys(VIEWED))
    vars(made).update(fields, id=message_id, group=SimpleNamespace(id=group_id), seq=seq, rev=rev)
    shown = view(made, sender=sender_view or profiles.member_view_of(sender_id))
    if events.in_process():
        frame = frames.message_created(shown)
        event = events.Event(
            "message.created",
            group_id=group_id,
            seq=seq,
            rev=rev,
            message_id=message_id,
            frame=frame,
        )
        events.emit(event)
    elif inserted_with_seq:  # its notification names it: this worker's hub need not read it
        events.keep_frame(group_id, seq, message_id, frames.message_created(shown))
    return message_id, shown


def forwarded_copy(group: Group, sender: User, original: Message) -> Message:
    """A new message of `sender` in `group` (locked as for `post`) showing what `original`
    shows, its text or its media (the same media, shared), marked `forwarded`."""
    if original.media is not None:
        fields = {"kind": original.kind, "media": original.media}
    else:
        fields = {"kind": "text", "text": original.text}
    return Message[_new(group.id, sender.id, forwarded=True, **fields)[0]]


def _insert_after_next_seq(group_id: int, sender_id: int, fields: dict) -> tuple:
    """(id, seq, rev, the group's kind) of the message with `fields`, inserted as the group's
    next (`_next_seq`) by Pony, which sees it in what it has loaded, and on SQLite writes its
    values in the format it reads."""
    seq, rev, kind = _next_seq(group_id, sender_id, fields["created_at"])
    message = Message(group=group_id, sender=sender_id, seq=seq, rev=rev, **fields)
    flush()
    return message.id, seq, rev, kind


def _insert_with_next_seq(group_id: int, sender_id: int, fields: dict) -> tuple:
    """PostgreSQL: (id, seq, rev, the group's kind) of the message with `fields`, inserted
    as the group's next in the statement that takes the seq (`_next_seq`'s UPDATE, as a
    WITH): every post to the group waits for that row's lock, held from this one round trip
    to the commit. A column left NULL is left out (an untyped NULL would be text). Pony's
    session does not see the row."""
    values = {
        name: value.id if isinstance(value, db.Entity) else value
        for name, value in fields.items()
        if value is not None
    }
    arguments = {f"v{i}": value for i, value in enumerate(values.values())}
    arguments.update(group_id=group_id, sender_id=sender_id, at=fields["created_at"])
    cursor = db.execute(_insert_next_sql(tuple(values)), {}, arguments)
    found = cursor.fetchone()
    if found is None:
        _refuse_sender(group_id)
    return tuple(found[:4])  # the notification's column aside


@functools.cache
def _insert_next_sql(names: tuple[str, ...]) -> str:
    """The statement of `_insert_with_next_seq` for a message whose columns set besides its
    group, sender, seq and rev are the attributes `names` (values $v0, $v1, ...)."""
    columns = ", ".join(
        f'"{getattr(Message, name).column}"' for name in ("group", "sender", "seq", "rev", *names)
    )
    values = ", ".join(
        ["$group_id", "$sender_id", '"last_seq"', '"last_rev"']
        + [f"$v{i}" for i in range(len(names))]
    )
    # The notification goes with the INSERT, not the UPDATE: it names the message's id, by
    # which this worker's hub finds the frame kept for it (`events.kept_frame`).
    notify = events.notify_sql(
        "message.created",
        group_id=f'"{Message.group.column}"',
        seq='"seq"',
        rev='"rev"',
        message_id='"id"',
    )
    return (
        f'WITH "next" AS ({_next_seq_sql(notify=False)}) INSERT INTO "{Message._table_}" '
        f'({columns}) SELECT {values} FROM "next" '
        f'RETURNING "id", "seq", "rev", (SELECT "kind" FROM "next")'
        + (f", {notify}" if notify else "")
    )


def _next_seq(group_id: int, sender_id: int, at) -> tuple[int, int, str]:
    """Raise the group's last_seq and last_rev by one if `sender_id` is one of its members,
    and return them with the group's kind (a new message is a change too; its last activity
    is `at`). The UPDATE holds the row's lock until the transaction ends (on SQLite the
    transaction holds the write lock already). Raises GROUP_NOT_FOUND or NOT_A_MEMBER."""
    cursor = db.execute(
        _next_seq_sql(), {}, {"group_id": group_id, "sender_id": sender_id, "at": at}
    )
    found = cursor.fetchone()
    if found is None:
        _refuse_sender(group_id)
    return found[0], found[1], found[2]


@functools.cache
def _next_seq_sql(notify: bool = True) -> str:
    """The UPDATE of `_next_seq`; on PostgreSQL it also sends the message's notification,
    delivered on commit, unless told not to (`_insert_next_sql` sends its own)."""
    table, members = Group._table_, Membership._table_
    notify = notify and events.notify_sql(
        "message.created", group_id='"id"', seq='"last_seq"', rev='"last_rev"'
    )
    return (
        f'UPDATE "{table}" SET "last_seq" = "last_seq" + 1, "last_rev" = "last_rev" + 1, '
        '"last_activity_at" = $at WHERE "id" = $group_id AND EXISTS (SELECT 1 FROM '
        f'"{members}" WHERE "group" = $group_id AND "user" = $sender_id) '
        f'RETURNING "last_seq", "last_rev", "kind"{", " + notify if notify else ""}'
    )


def _refuse_sender(group_id: int) -> NoReturn:
    """The group took no message: it is gone, or the sender is not a member."""
    if not Group.exists(id=group_id):
        raise ApiError(Error.GROUP_NOT_FOUND)
    raise ApiError(Error.NOT_A_MEMBER)


def page(
    group: Group, viewer: User, cursor: str | None, limit: int
) -> tuple[list[Message], str | None]:
    """Up to `limit` messages of the group, newest first, and the cursor of the next page;
    those `viewer` deleted for themselves left out.

    The cursor is the id of the last message of the page (opaque to clients): the next
    page holds the messages older than it, so messages posted meanwhile never shift it.
    """
    query = _visible(select(m for m in Message if m.group == group), viewer)
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


def after(
    group: Group, viewer: User, after_seq: int, limit: int
) -> tuple[list[Message], str | None]:
    """Up to `limit` messages of the group with seq > `after_seq`, oldest first, and the
    next `after_seq` (the last seq returned) when more follow, else None; those `viewer`
    deleted for themselves left out."""
    found = (
        _visible(select(m for m in Message if m.group == group and m.seq > after_seq), viewer)
        .order_by(lambda m: m.seq)
        .prefetch(Message.media, Message.sender)[: limit + 1]
    )
    if len(found) <= limit:
        return list(found), None
    return list(found[:limit]), str(found[limit - 1].seq)


def _visible(query, viewer: User):
    """`query` of messages less those `viewer` deleted for themselves."""
    return query.where(
        lambda m: (
            not exists(
                h for h in Hidden if h.user == viewer and h.group == m.group and h.seq == m.seq
            )
        )
    )


def view(
    message: Message,
    url: str | None = None,
    sender: dict | None = None,
    quote: dict | None = None,
) -> dict:
    """The message as members see it; `url` when one was signed already, `sender` and the
    `quote` of the message it answers when read already (`views`).

    A recalled message keeps its place (seq) and kind, with `recalled` saying by whom and
    when; its text, mentions and media are gone."""
    shown = message.media
    answer = {
        "id": message.id,
        "group_id": message.group.id,
        "seq": message.seq,
        "rev": message.rev,
        "kind": message.kind,
        "sender": sender or _sender_view(message.sender),
        "text": message.text,
        "client_msg_id": message.client_msg_id,
        "mentions": [int(i) for i in message.mentions.split(",")] if message.mentions else [],
        "media_id": shown.id if shown else None,
        "url": (url or media_url(shown)) if shown else None,
        "size": shown.size if shown else None,
        "content_type": shown.content_type if shown else None,
        "filename": shown.filename if shown else None,
        "created_at": utc_iso(message.created_at),
        "edited_at": utc_iso(message.edited_at) if message.edited_at else None,
        "forwarded": message.forwarded,
    }
    if message.recalled_at is not None:
        answer["recalled"] = {
            "by": _sender_view(message.recalled_by),
            "at": utc_iso(message.recalled_at),
        }
    if message.reply_to_seq is not None:
        answer["reply_to"] = quote or quotes([message])[message.id]
    return answer


def quotes(found: list[Message]) -> dict[int, dict]:
    """What each message that answers another shows of it (its seq, sender, kind, a short
    excerpt of its text, whether it was recalled), by the answering message's id; the
    answered messages read in one query."""
    answering = [m for m in found if m.reply_to_seq is not None]
    if not answering:
        return {}
    group_ids = list({m.group.id for m in answering})
    seqs = list({m.reply_to_seq for m in answering})
    answered = {
        (m.group.id, m.seq): m
        for m in select(m for m in Message if m.group.id in group_ids and m.seq in seqs)
    }
    shown = {}
    for message in answering:
        original = answered.get((message.group.id, message.reply_to_seq))
        if original is None:  # not there (cannot happen: a message keeps its seq for life)
            continue
        text = original.text or ""
        shown[message.id] = {
            "seq": original.seq,
            "sender": _sender_view(original.sender),
            "kind": original.kind,
            "excerpt": text[:EXCERPT] if text else None,
            "recalled": original.recalled_at is not None,
        }
    return shown


def views(found: list[Message]) -> list[dict]:
    """The views of many messages, their senders read in one query (`profiles.member_views`)
    and the messages they answer in another (`quotes`)."""
    senders = profiles.member_views(m.sender for m in found)
    quoted = quotes(found)
    return [
        view(m, sender=senders.get(m.sender.id) if m.sender else None, quote=quoted.get(m.id))
        for m in found
    ]


def uploaded(message: Message) -> dict:
    """What an upload answers: the media's URL and ids, and the message it became."""
    url = media_url(message.media)
    return {
        "url": url,
        "media_id": message.media.id,
        "message_id": message.id,
        "message": view(message, url),
    }


def _sender_view(user: User | None) -> dict:
    return profiles.member_view(user) if user is not None else dict(DELETED_SENDER)
