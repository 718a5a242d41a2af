"""Messages that change after they are made: edits, recalls, deleting for oneself, and
forwards (copies into another conversation).

A message keeps its seq for life; each change takes the conversation's next `rev` under the
conversation row's lock, as a new message does, so revs come in commit order and a client
that has seen rev n of a conversation has seen every change before it. An edit or a recall
is a `message.updated` event carrying the message's new state, sent on commit. Deleting for
oneself changes nothing others see: it is a notice to the user's own sockets
(`message.hidden`), and the message leaves their lists, replays and counts.

Changes to one message take turns (its lock, exclusive), while posts to the conversation go
on (its lock, shared). A forward holds the locks of the messages it copies, shared, so a
recall waits for it and then finds the copy: the media both show is released only when no
message shows it any more (`models.media.release`).
"""

from __future__ import annotations

from datetime import timedelta

from pony.orm import IntegrityError, TransactionIntegrityError, delete, flush, rollback, select

from im_core.config import current, now
from im_core.errors import ApiError, Error
from models import direct, events, frames, groups, locks, media, messages, notices, reads, roles
from models.entities import Group, Hidden, Membership, Mention, Message, User, db


def edit(group_id: int, user_id: int, seq: int, text: str) -> Message:
    """The sender replaces the text of their text message; its mentions are read again.
    Raises GROUP_NOT_FOUND, NOT_A_MEMBER, MESSAGE_NOT_FOUND, NOT_YOUR_MESSAGE, NOT_EDITABLE,
    RECALLED or INVALID_TEXT."""
    messages.check_text(text)
    group, user, message = _locked(group_id, user_id, seq)
    if message.sender != user:
        raise ApiError(Error.NOT_YOUR_MESSAGE)
    if message.kind != "text":
        raise ApiError(Error.NOT_EDITABLE)
    mentioned = reads.mentioned(group.id, user.id, text)
    delete(x for x in Mention if x.group == group and x.seq == seq)
    reads.record_mentions(group_id, seq, mentioned)
    message.text = text
    message.mentions = ",".join(map(str, mentioned)) or None
    message.edited_at = now()
    _changed(message)
    return message


def recall(group_id: int, user_id: int, seq: int) -> Message:
    """The sender (within `recall_window` seconds of sending), or the group's owner or an
    admin at any time, takes a message back: it stays in its place as a tombstone saying who
    recalled it, its text, mentions and media gone, and the media's bytes released once no
    message shows them. Raises GROUP_NOT_FOUND, NOT_A_MEMBER, MESSAGE_NOT_FOUND, NOT_YOUR_MESSAGE,
    RECALL_TOO_LATE or RECALLED; MEDIA_STORE_UNAVAILABLE when the store cannot delete."""
    group, user, message = _locked(group_id, user_id, seq)
    if not _moderates(group, user):
        if message.sender != user:
            raise ApiError(Error.NOT_YOUR_MESSAGE)
        window = current().recall_window
        if now() - message.created_at > timedelta(seconds=window):
            raise ApiError(Error.RECALL_TOO_LATE, window=window)
    shown = message.media
    delete(x for x in Mention if x.group == group and x.seq == seq)
    message.text = None
    message.mentions = None
    message.media = None
    message.recalled_at = now()
    message.recalled_by = user
    _changed(message)
    if shown is not None:
        flush()  # the message no longer shows it: release sees that
        media.release(shown)
    return message


def hide(group_id: int, user_id: int, seq: int) -> None:
    """Delete the message for the user alone (again: nothing more happens). Its mention of
    them goes; their sockets hear it (a notice). Raises GROUP_NOT_FOUND, NOT_A_MEMBER or
    MESSAGE_NOT_FOUND."""
    user = User[user_id]
    group = groups.of_member(group_id, user)
    if not Message.exists(group=group, seq=seq):
        raise ApiError(Error.MESSAGE_NOT_FOUND)
    if Hidden.exists(user=user, group=group, seq=seq):
        return
    Hidden(user=user, group=group, seq=seq)
    delete(x for x in Mention if x.user == user and x.group == group and x.seq == seq)
    try:
        flush()  # the unique key: a concurrent hide of the same message made it already
    except (IntegrityError, TransactionIntegrityError):
        rollback()  # that one tells the user's sockets
        return
    notices.send(user_id, "message.hidden", group_id=group_id, seq=seq)


def forward(target_id: int, user_id: int, source_id: int, seqs: list[int]) -> list[Message]:
    """Copy the messages `seqs` of the conversation `source_id` into `target_id`, in that
    order, as new messages from the user marked `forwarded`: the same text, or the same
    media (shared, not copied). The user must be a member of both, and may write to the
    target. Raises GROUP_NOT_FOUND, NOT_A_MEMBER (the target), FORWARD_SOURCE (no source of
    theirs), NOT_FORWARDABLE (no such message, one recalled or deleted for the user), and in
    a direct chat what `direct.check_may_post` raises."""
    locks.forget_reads()
    for group_id in sorted({target_id, source_id}):
        locks.group(group_id, shared=True)
    user = User[user_id]
    target = groups.of_member(target_id, user)
    source = Group.get(id=source_id)
    # The source is named in the body: not a path's 404, and nobody learns which ids exist.
    if source is None or not Membership.exists(group=source, user=user):
        raise ApiError(Error.FORWARD_SOURCE)
    direct.check_may_post(target, user)
    for seq in sorted(set(seqs)):
        locks.message(source_id, seq, shared=True)
    originals = {
        m.seq: m for m in select(m for m in Message if m.group == source and m.seq in seqs)
    }
    hidden = set(
        select(h.seq for h in Hidden if h.user == user and h.group == source and h.seq in seqs)
    )
    made = []
    for seq in seqs:
        original = originals.get(seq)
        if original is None or original.recalled_at is not None or seq in hidden:
            raise ApiError(Error.NOT_FORWARDABLE, seq=seq)
        made.append(messages.forwarded_copy(target, user, original))
    return made


def changed_after(group_id: int, rev: int, limit: int) -> list[Message]:
    """Up to `limit` messages of the conversation whose last change is after `rev`, in rev
    order (for a socket that resumes)."""
    return list(
        select(m for m in Message if m.group.id == group_id and m.rev > rev)
        .order_by(lambda m: m.rev)
        .limit(limit)
    )


def _locked(group_id: int, user_id: int, seq: int) -> tuple[Group, User, Message]:
    """The conversation, the user and the message, read afresh under the conversation's lock
    (shared: posts go on) and the message's (exclusive: changes to it take turns). Raises
    GROUP_NOT_FOUND, NOT_A_MEMBER, MESSAGE_NOT_FOUND or RECALLED."""
    locks.forget_reads()
    locks.group(group_id, shared=True)
    locks.message(group_id, seq)
    user = User[user_id]
    group = groups.of_member(group_id, user)
    message = Message.get(group=group, seq=seq)
    if message is None:
        raise ApiError(Error.MESSAGE_NOT_FOUND)
    if message.recalled_at is not None:
        raise ApiError(Error.RECALLED)
    return group, user, message


def _moderates(group: Group, user: User) -> bool:
    """Whether `user` may recall anyone's message in `group`, at any time: its owner and its
    admins."""
    membership = Membership.get(group=group, user=user)
    return roles.role_of(group, user, membership) in (roles.OWNER, roles.ADMIN)


def _changed(message: Message) -> None:
    """Give the changed message the conversation's next rev and announce its new state."""
    message.rev = _next_rev(message.group.id)
    flush()
    frame = frames.message_updated(messages.view(message)) if events.in_process() else None
    events.emit(
        events.Event(
            "message.updated",
            group_id=message.group.id,
            seq=message.seq,
            rev=message.rev,
            message_id=message.id,
            frame=frame,
        )
    )


def _next_rev(group_id: int) -> int:
    cursor = db.execute(
        f'UPDATE "{Group._table_}" SET "last_rev" = "last_rev" + 1 WHERE "id" = $group_id '
        'RETURNING "last_rev"',
        {},
        {"group_id": group_id},
    )
    return cursor.fetchone()[0]
