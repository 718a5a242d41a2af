"""The entities. Times are naive UTC datetimes from the configured clock.

The tables are made and changed by the migrations in models/migrations/, never by Pony: a
change here needs a migration that makes the same change (tests/test_schema.py compares the
newest schema with what Pony would map these entities to). Ids are 64-bit (`size=64`,
BIGINT on PostgreSQL since migration 0002; SQLite's INTEGER PRIMARY KEY is already).
"""

from __future__ import annotations

from datetime import datetime

from pony.orm import Database, Optional, PrimaryKey, Required, Set, composite_index, composite_key

# The one Pony `Database`, declared unbound: `models.database.bind()` connects it when the app
# starts. The entities below are declared on it as this module is imported.
db = Database()


class User(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    name = Required(str, 16)
    # The name lower-cased: the unique index that makes names unique ignoring case.
    name_key = Required(str, 16, unique=True)
    email = Optional(str, 254, unique=True, nullable=True)
    password_hash = Required(str, 100)
    created_at = Required(datetime)
    avatar = Optional("Media", reverse="avatar_of")
    sessions = Set("Session", cascade_delete=True)
    login_failures = Set("LoginFailure", cascade_delete=True)
    known_addresses = Set("KnownAddress", cascade_delete=True)
    memberships = Set("Membership", cascade_delete=True)
    # No cascade: groups.leave() hands a group on before its owner goes.
    owned_groups = Set("Group", reverse="owner", cascade_delete=False)
    messages = Set("Message", reverse="sender")
    uploads = Set("Media", reverse="uploader")
    # Contacts (models.contacts): each contact is two rows, one per side, so "my contacts"
    # is one indexed lookup; requests and blocks go with either account.
    requests_sent = Set("ContactRequest", reverse="requester", cascade_delete=True)
    requests_received = Set("ContactRequest", reverse="addressee", cascade_delete=True)
    contacts = Set("Contact", reverse="owner", cascade_delete=True)
    contact_of = Set("Contact", reverse="other", cascade_delete=True)
    blocks = Set("Block", reverse="blocker", cascade_delete=True)
    blocked_by = Set("Block", reverse="blocked", cascade_delete=True)
    notices = Set("Notice", cascade_delete=True)
    mentioned = Set("Mention", cascade_delete=True)
    hidden = Set("Hidden", cascade_delete=True)
    recalls = Set("Message", reverse="recalled_by")
    announced = Set("Group", reverse="announcement_by")
    join_requests = Set("JoinRequest", reverse="user", cascade_delete=True)
    join_requests_made = Set("JoinRequest", reverse="added_by", cascade_delete=True)
    # The number of the user's newest notice (0: none yet), raised by SQL under the
    # account's row lock like a group's last_seq (models.notices).
    last_notice = Required(int, size=64, default=0, volatile=True)


class Session(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    key = Required(str, 64, unique=True)
    user = Required(User)
    created_at = Required(datetime)
    expires_at = Required(datetime)


class LoginFailure(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    user = Required(User, index=True)
    at = Required(datetime)
    # The client address the attempt came from, as `models.users.address_key` (hashed);
    # None for failures recorded before migration 0005 (they count for the account only).
    address = Optional(str, 48, nullable=True)


class KnownAddress(db.Entity):
    """A client address (hashed, as `LoginFailure.address`) the user signed in from, and
    when last: the right password from it passes the account's lockout (models.users)."""

    id = PrimaryKey(int, auto=True, size=64)
    user = Required(User)  # indexed by the (user, address) key, which starts with it
    address = Required(str, 48)
    last_at = Required(datetime)
    composite_key(user, address)


class EmailCode(db.Entity):
    """The code last sent for one (email, purpose); a new code replaces the row."""

    id = PrimaryKey(int, auto=True, size=64)
    email = Required(str, 254)
    purpose = Required(str, 16)
    code_hash = Required(str, 64)
    sent_at = Required(datetime)
    expires_at = Required(datetime)
    wrong_tries = Required(int, default=0)
    used = Required(bool, default=False)
    composite_key(email, purpose)


class Group(db.Entity):
    """A conversation: a group chat (`kind` "group": a name, an owner) or a direct chat
    (`kind` "direct": two members, no name, no owner, one per pair of users). Both have
    members, messages and seqs alike; the name `Group` (and its table) is older than
    direct chats."""

    id = PrimaryKey(int, auto=True, size=64)
    name = Optional(str, 64)  # empty for a direct chat
    owner = Optional(User, reverse="owned_groups")  # None for a direct chat
    created_at = Required(datetime)
    memberships = Set("Membership", cascade_delete=True)
    messages = Set("Message", cascade_delete=True)
    mentions = Set("Mention", cascade_delete=True)
    # The seq of the group's newest message (0: none yet). A new message takes the next one
    # by raising this under the row's lock in its own transaction (models.messages), so
    # seqs come in commit order with no gaps, which a database sequence cannot promise.
    # volatile: raised by SQL, not through Pony, so Pony must not hold on to a value it read.
    last_seq = Required(int, size=64, default=0, volatile=True)
    kind = Required(str, 8, default="group")  # "group" or "direct"
    # A direct chat's pair, "low:high" (the two user ids in order): unique, so two calls
    # to open the same chat at once make one.
    direct_key = Optional(str, 48, unique=True, nullable=True)
    # When the conversation last had a message (its creation before that): the order of
    # the conversation list. Raised with last_seq, by SQL.
    last_activity_at = Required(datetime, volatile=True)
    # The number of the conversation's newest change (a message made, edited or recalled),
    # raised under the row's lock like last_seq, in the same statement for a new message.
    last_rev = Required(int, size=64, default=0, sql_default="0", volatile=True)
    hidden = Set("Hidden", cascade_delete=True)
    # Roles (models.roles): with join approval on, a member's add waits for an admin.
    join_approval = Required(bool, default=False, sql_default="false")
    announcement = Optional(str, 1000, nullable=True, autostrip=False)
    announcement_by = Optional(User, reverse="announced")
    announcement_at = Optional(datetime)
    # Raised at every change of what the group's view shows besides its messages and members
    # (name, owner, admins, announcement, approval), under the group's lock: a socket that
    # resumes with the versions it had gets the state of each group that moved on.
    state_version = Required(int, size=64, default=0, sql_default="0")
    join_requests = Set("JoinRequest", cascade_delete=True)


class Membership(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    group = Required(Group)
    user = Required(User)
    joined_at = Required(datetime)
    composite_key(group, user)
    # How far the member has read (a seq; 0: nothing), only ever raised, by SQL
    # (models.reads): unread counts are derived from it, never kept per message.
    read_seq = Required(int, size=64, default=0, volatile=True)
    # "member" or "admin"; the owner is the group's `owner` (one per group).
    role = Required(str, 8, default="member", sql_default="'member'")


class Media(db.Entity):
    """One stored upload; `sha256` names its file, which identical uploads share."""

    id = PrimaryKey(int, auto=True, size=64)
    sha256 = Required(str, 64, index=True)
    size = Required(int, size=64)
    content_type = Required(str, 128)
    filename = Required(str, 255)
    kind = Required(str, 16)  # image, expression, file, voice or avatar
    created_at = Required(datetime)
    uploader = Optional(User, reverse="uploads")
    avatar_of = Optional(User, reverse="avatar")
    messages = Set("Message", cascade_delete=False)


class Message(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    group = Required(Group)  # indexed by the (group, seq) key, which starts with it
    # None once the sender cancelled the account: the message stays, from a deleted user.
    sender = Optional(User, reverse="messages")
    kind = Required(str, 16)  # text, or the kind of upload it shows
    media = Optional(Media)  # None for a text message
    created_at = Required(datetime)
    seq = Required(int, size=64)  # 1, 2, 3 ... in the group, in commit order
    # Kept exactly as sent: Pony would strip surrounding whitespace by default.
    text = Optional(str, nullable=True, autostrip=False)  # set iff kind is "text"
    # Chosen by the sender's client to make a retried post answer the first one.
    client_msg_id = Optional(str, 64, nullable=True)
    composite_key(group, seq)
    composite_key(group, sender, client_msg_id)
    # The ids of the members its text mentions (`@name`), comma-separated; None for none.
    mentions = Optional(str, nullable=True)
    # Its last change (models.changes): the conversation's rev of it, and what it was.
    rev = Required(int, size=64, default=0, sql_default="0")
    edited_at = Optional(datetime)
    recalled_at = Optional(datetime)
    recalled_by = Optional(User, reverse="recalls")
    # The seq of the message of the same conversation it answers.
    reply_to_seq = Optional(int, size=64, nullable=True)
    forwarded = Required(bool, default=False, sql_default="false")
    # Replays of what changed after a client's rev read the conversation's messages by rev.
    composite_index(group, rev)


class Throttle(db.Entity):
    """Requests counted against one limit for one key (`models.throttle`), in one window."""

    id = PrimaryKey(int, auto=True, size=64)
    bucket = Required(str, 80)  # the limit's name and a hash of the key
    slot = Required(int, size=64)  # the window: seconds since the epoch // its length
    hits = Required(int, size=64)
    expires = Required(int, size=64, index=True)  # seconds since the epoch
    composite_key(bucket, slot)


class ContactRequest(db.Entity):
    """A pending request to be contacts; answered or withdrawn, the row goes."""

    id = PrimaryKey(int, auto=True, size=64)
    requester = Required(User, reverse="requests_sent")
    addressee = Required(User, reverse="requests_received")
    note = Optional(str, 200, autostrip=False)
    created_at = Required(datetime)
    composite_key(requester, addressee)


class Contact(db.Entity):
    """One side of a contact: `other` is a contact of `owner` (the other side is its twin)."""

    id = PrimaryKey(int, auto=True, size=64)
    owner = Required(User, reverse="contacts")
    other = Required(User, reverse="contact_of")
    created_at = Required(datetime)
    composite_key(owner, other)


class Block(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    blocker = Required(User, reverse="blocks")
    blocked = Required(User, reverse="blocked_by")
    created_at = Required(datetime)
    composite_key(blocker, blocked)


class Notice(db.Entity):
    """One entry of a user's own feed (models.notices): a change to their contacts, requests,
    blocks or conversations, kept as the frame their sockets get, numbered 1, 2, 3 ... per
    user so that a socket resumes from the last one it saw."""

    id = PrimaryKey(int, auto=True, size=64)
    user = Required(User)
    number = Required(int, size=64)
    frame = Required(str, autostrip=False)
    created_at = Required(datetime)
    composite_key(user, number)


class Mention(db.Entity):
    """A member mentioned by a message (its group and seq): counted per member after their
    read position, so a mention badge costs an index range, not a scan."""

    id = PrimaryKey(int, auto=True, size=64)
    user = Required(User, reverse="mentioned")
    group = Required(Group)
    seq = Required(int, size=64)
    composite_key(user, group, seq)


class Hidden(db.Entity):
    """A message a user deleted for themselves: left out of their lists, replays and counts;
    the others still see it."""

    id = PrimaryKey(int, auto=True, size=64)
    user = Required(User)
    group = Required(Group)
    seq = Required(int, size=64)
    composite_key(user, group, seq)


class JoinRequest(db.Entity):
    """A member's add of `user` to a group with join approval on, waiting for an admin."""

    id = PrimaryKey(int, auto=True, size=64)
    group = Required(Group)
    user = Required(User, reverse="join_requests")
    added_by = Required(User, reverse="join_requests_made")
    created_at = Required(datetime)
    composite_key(group, user)
