"""The entities. Times are naive UTC datetimes from the configured clock.

The tables are made and changed by the migrations in models/migrations/, never by Pony: a
change here needs a migration that makes the same change (tests/test_schema.py compares the
newest schema with what Pony would map these entities to). Ids are 64-bit (`size=64`,
BIGINT on PostgreSQL since migration 0002; SQLite's INTEGER PRIMARY KEY is already).
"""

from __future__ import annotations

from datetime import datetime

from pony.orm import Database, Optional, PrimaryKey, Required, Set, composite_key

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
    id = PrimaryKey(int, auto=True, size=64)
    name = Required(str, 64)
    owner = Required(User, reverse="owned_groups")
    created_at = Required(datetime)
    memberships = Set("Membership", cascade_delete=True)
    messages = Set("Message", cascade_delete=True)
    # The seq of the group's newest message (0: none yet). A new message takes the next one
    # by raising this under the row's lock in its own transaction (models.messages), so
    # seqs come in commit order with no gaps, which a database sequence cannot promise.
    # volatile: raised by SQL, not through Pony, so Pony must not hold on to a value it read.
    last_seq = Required(int, size=64, default=0, volatile=True)


class Membership(db.Entity):
    id = PrimaryKey(int, auto=True, size=64)
    group = Required(Group)
    user = Required(User)
    joined_at = Required(datetime)
    composite_key(group, user)


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


class Throttle(db.Entity):
    """Requests counted against one limit for one key (`models.throttle`), in one window."""

    id = PrimaryKey(int, auto=True, size=64)
    bucket = Required(str, 80)  # the limit's name and a hash of the key
    slot = Required(int, size=64)  # the window: seconds since the epoch // its length
    hits = Required(int, size=64)
    expires = Required(int, size=64, index=True)  # seconds since the epoch
    composite_key(bucket, slot)
