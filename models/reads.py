"""Read state: how far each member has read each conversation, and what that leaves unread.

A member's position (`Membership.read_seq`) only moves forward, by one conditional UPDATE,
so members marking read at once, and one member from several devices, never lose a
position: the highest sent wins. Nothing is written per member when a message is posted:
the unread count is derived, the messages after the position that are not the member's
own, recalled, or deleted by the member for themselves, and the mention count from the
`Mention` rows of the member after it (a recall, or the member's deleting, removes them).
Both count at most the `WINDOW` messages after the position, so a badge costs an index range
of bounded length whatever the conversation's size or history.

Receipts (who has read how far) are shown per member in direct chats and in groups of up to
`read_receipts_max_members` members; larger groups show how many members have read up to
each position, never who.
"""

from __future__ import annotations

import re

from pony.orm import count, select

from im_core.config import current
from im_core.errors import ApiError, Error
from models import events, groups
from models.entities import Group, Hidden, Membership, Mention, Message, User, db

# Messages after a position that a count looks at: a badge says "1000" for that many or more.
WINDOW = 1000
# Positions listed in a large group's receipts (the highest ones).
MOST_POSITIONS = 100
# Members a message may mention; further `@name`s are text only.
MOST_MENTIONS = 50
MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{3,16})(?![A-Za-z0-9_])")


def mark(group_id: int, user_id: int, seq: int) -> dict:
    """Move the member's position to `seq` if that is further; the state after, as
    `state_view`. An older position changes nothing. Raises GROUP_NOT_FOUND, NOT_A_MEMBER, or
    READ_BEYOND_LAST for a seq past the conversation's last message."""
    group = groups.of_member(group_id, User[user_id])
    if seq > group.last_seq:
        raise ApiError(Error.READ_BEYOND_LAST, last_seq=group.last_seq)
    moved = db.execute(
        f'UPDATE "{Membership._table_}" SET "read_seq" = $seq '
        'WHERE "group" = $group_id AND "user" = $user_id AND "read_seq" < $seq',
        {},
        {"seq": seq, "group_id": group_id, "user_id": user_id},
    ).rowcount
    state = states(user_id, [group_id])[group_id]
    if moved:
        events.emit(
            events.Event(
                "read",
                group_id=group_id,
                user_id=user_id,
                seq=state[0],
                counts=state[1:],
                shared=receipts_shown(group),
            )
        )
    return state_view(group_id, state)


def states(user_id: int, group_ids: list[int] | None = None) -> dict[int, tuple[int, int, int]]:
    """(position, unread count, mention count) of the user in each of `group_ids` (every
    conversation of theirs when None), in one query."""
    membership, message, mention = Membership._table_, Message._table_, Mention._table_
    hidden = Hidden._table_
    chosen = ""
    if group_ids is not None:
        if not group_ids:
            return {}
        chosen = f' AND mb."group" IN ({", ".join(str(int(g)) for g in group_ids)})'
    rows = db.select(
        f'SELECT mb."group", mb."read_seq", '
        f'(SELECT COUNT(*) FROM "{message}" m WHERE m."group" = mb."group" '
        f'AND m."seq" > mb."read_seq" AND m."seq" <= mb."read_seq" + {WINDOW} '
        f'AND (m."sender" IS NULL OR m."sender" <> mb."user") AND m."recalled_at" IS NULL '
        f'AND NOT EXISTS (SELECT 1 FROM "{hidden}" h WHERE h."user" = mb."user" '
        f'AND h."group" = m."group" AND h."seq" = m."seq")), '
        f'(SELECT COUNT(*) FROM "{mention}" x WHERE x."user" = mb."user" '
        f'AND x."group" = mb."group" AND x."seq" > mb."read_seq" '
        f'AND x."seq" <= mb."read_seq" + {WINDOW}) '
        f'FROM "{membership}" mb WHERE mb."user" = $user_id{chosen}',
        {},
        {"user_id": user_id},
    )
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def state_view(group_id: int, state: tuple[int, int, int]) -> dict:
    read_seq, unread, mentions = state
    return {
        "group_id": group_id,
        "read_seq": read_seq,
        "unread_count": unread,
        "mention_count": mentions,
    }


def receipts_shown(group: Group) -> bool:
    """Whether members see each other's positions: a direct chat, or a group small enough."""
    if group.kind == "direct":
        return True
    return group.memberships.count() <= current().read_receipts_max_members


def receipts(group: Group) -> dict:
    """Who has read how far: each member's position where receipts are shown (`members`),
    and always how many members have read up to at least each of the highest positions
    (`counts`, highest first)."""
    shown = receipts_shown(group)
    positions = sorted(
        select((m.read_seq, count(m)) for m in Membership if m.group == group),
        reverse=True,
    )
    counts, reached = [], 0
    for seq, members in positions:
        reached += members
        counts.append({"seq": seq, "members": reached})
    answer = {"receipts": "members" if shown else "counts", "counts": counts[:MOST_POSITIONS]}
    if shown:
        answer["members"] = [
            {"user_id": user_id, "read_seq": seq}
            for user_id, seq in select(
                (m.user.id, m.read_seq) for m in Membership if m.group == group
            ).order_by(1)
        ]
    return answer


def mentioned(group_id: int, sender_id: int, text: str) -> list[int]:
    """The ids of the members of the group that `text` mentions by `@name` (ignoring case),
    in the order first mentioned, the sender left out; at most MOST_MENTIONS."""
    keys = []
    for name in MENTION.findall(text):
        key = name.lower()
        if key not in keys:
            keys.append(key)
    if not keys:
        return []
    found = dict(
        select(
            (m.user.name_key, m.user.id)
            for m in Membership
            if m.group.id == group_id and m.user.name_key in keys and m.user.id != sender_id
        )
    )
    return [found[key] for key in keys if key in found][:MOST_MENTIONS]


def record_mentions(group_id: int, seq: int, user_ids: list[int]) -> None:
    """The Mention rows of a new message (in its transaction)."""
    for user_id in user_ids:
        Mention(user=user_id, group=group_id, seq=seq)
