"""The entities. Times are naive UTC datetimes from the configured clock.

The tables are made and changed by the migrations in models/migrations/, never by Pony: a
change here needs a migration that makes the same change (tests/test_schema.py compares the
newest schema with what Pony would map these entities to). Ids are 64-bit (`size=64`,
BIGINT on PostgreSQL since migration 0002; SQLite's INTEGER PRIMARY KEY is already).
"""

from __future__ import annotations

from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, Set, composite_key

from models.database import db


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
    group = Required(Group, index=True)
    # None once the sender cancelled the account: the message stays, from a deleted user.
    sender = Optional(User, reverse="messages")
    kind = Required(str, 16)
    media = Required(Media)
    created_at = Required(datetime)


class Throttle(db.Entity):
    """Requests counted against one limit for one key (`models.throttle`), in one window."""

    id = PrimaryKey(int, auto=True, size=64)
    bucket = Required(str, 80)  # the limit's name and a hash of the key
    slot = Required(int, size=64)  # the window: seconds since the epoch // its length
    hits = Required(int, size=64)
    expires = Required(int, size=64, index=True)  # seconds since the epoch
    composite_key(bucket, slot)
