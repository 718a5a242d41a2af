"""Limits on how often one client address, account or target may ask for something.

Each limit is a setting `limit_<name>` (`IM_LIMIT_<NAME>`) of the form `COUNT/SECONDS`:
at most COUNT requests per key in each fixed window of SECONDS (empty: no limit). Counts
live in the database (`Throttle` rows, one per key and window, the key hashed), so every
worker and machine shares them; a count is added with one atomic upsert and committed at
once, so requests sent at once are all counted and a failing request counts too.

Every count and refusal is also noted on the request being served (`request_info`), from
the count the statement returned, for its `RateLimit` header fields: no query more.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pony.orm import commit, delete, rollback, select

from im_core import metrics, request_info
from im_core.config import current, now, parse_limit
from im_core.errors import too_many_attempts
from models.entities import Throttle, db

EPOCH = datetime(1970, 1, 1)

# The limits, each with the operations it applies to (for the README and the spec).
LIMITS = {
    "register_per_address": "POST /user/register, per client address",
    "login_per_address": "POST /user/login, per client address",
    "login_per_target": "POST /user/login, per name or email asked for",
    "email_code_per_address": "POST /user/email_code, per client address",
    "email_code_per_mailbox": "POST /user/email_code, per mailbox (`+tag` ignored)",
    "password_per_account": "POST /user/change_password and cancel_account, per account",
    "password_per_address": "POST /user/change_password and cancel_account, per client address",
    "upload_per_account": "uploads and POST /user/change_image, per account",
    "upload_per_address": "uploads and POST /user/change_image, per client address",
    "message_per_account": "POST /groups/{group_id}/messages, per account",
    "message_per_address": "POST /groups/{group_id}/messages, per client address",
    "code_guesses": "wrong email codes, per address and purpose of the code",
    "search_per_account": "GET /users, per account",
    "search_per_address": "GET /users, per client address",
    "contact_request_per_account": "POST /contacts/requests, per account",
    "contact_request_per_address": "POST /contacts/requests, per client address",
    "replay_per_user": "messages the socket's `sync` replays, per user",
}


def spend(name: str, key: str, amount: int = 1) -> None:
    """Count `amount` requests (one by default) against the limit `name` for `key`,
    committed at once; raises TOO_MANY_ATTEMPTS (with the seconds left in the window) once
    past the limit.

    Call it first in a request: it ends the request's transaction and forgets what the
    request read, so that later reads are not held in a write transaction.
    """
    spend_all([(name, key)], amount)


def spend_all(limits: list[tuple[str, str]], amount: int = 1) -> None:
    """`spend` against several (limit, key) at once: one statement, one commit (a request
    limited per address and per account costs two round trips, not four). Every one is
    counted; the longest wait of those past their limit is raised."""
    counted = []
    for name, key in limits:
        limit = _limit(name)
        if limit is not None:
            count, seconds = limit
            slot, ends, epoch = _window(seconds)
            counted.append((name, _bucket(name, key), slot, ends, epoch, limit))
    if not counted:
        return
    hits = _add_all([(bucket, slot, ends) for _, bucket, slot, ends, _, _ in counted], amount)
    if secrets.randbelow(100) == 0:  # now and then, forget the windows that are over
        epoch = counted[0][4]
        delete(t for t in Throttle if t.expires < epoch)
    commit()
    rollback()
    refused = []
    for name, bucket, _, ends, epoch, (count, seconds) in counted:
        over = hits[bucket] > count
        left = max(0, count - hits[bucket])
        _note(name, (count, seconds), left, ends - epoch, refused=over)
        if over:
            refused.append(ends - epoch)
            metrics.refused(name)
    if refused:
        raise too_many_attempts(max(refused))


def spend_password(address: str, user_id: int) -> None:
    """Count a password change or account cancellation (two bcrypt hashes, or one)."""
    spend_pair("password", address, user_id)


def spend_upload(address: str, user_id: int) -> None:
    """Count an upload of any kind, avatars included (disk, and image decoding)."""
    spend_pair("upload", address, user_id)


def spend_message(address: str, user_id: int, amount: int = 1) -> None:
    """Count text messages posted or forwarded (a row each, and a frame to every member's
    sockets)."""
    spend_pair("message", address, user_id, amount)


def spend_pair(name: str, address: str, user_id: int, amount: int = 1) -> None:
    """Count against the limits `<name>_per_address` and `<name>_per_account`, at once."""
    spend_all([(f"{name}_per_address", address), (f"{name}_per_account", str(user_id))], amount)


def refuse_if_spent(name: str, key: str) -> None:
    """Raise TOO_MANY_ATTEMPTS if `key` has used up the limit `name` in this window (a
    read, nothing counted)."""
    limit = _limit(name)
    if limit is None:
        return
    count, seconds = limit
    slot, ends, epoch = _window(seconds)
    bucket = _bucket(name, key)
    hits = select(t.hits for t in Throttle if t.bucket == bucket and t.slot == slot).first()
    if hits is not None and hits >= count:
        metrics.refused(name)
        _note(name, limit, 0, ends - epoch, refused=True)
        raise too_many_attempts(ends - epoch)


def left(name: str, key: str) -> tuple[int, int] | None:
    """What `key` may still spend against the limit `name` in this window, and the seconds
    until the window ends; None when there is no limit (a read, nothing counted)."""
    limit = _limit(name)
    if limit is None:
        return None
    count, seconds = limit
    slot, ends, epoch = _window(seconds)
    bucket = _bucket(name, key)
    hits = select(t.hits for t in Throttle if t.bucket == bucket and t.slot == slot).first()
    return max(0, count - (hits or 0)), ends - epoch


def spend_many(name: str, key: str, amount: int) -> None:
    """Count `amount` against the limit `name` for `key`, committed at once (for a cost
    measured after the work, such as messages replayed)."""
    limit = _limit(name)
    if limit is None or amount <= 0:
        return
    slot, ends, _ = _window(limit[1])
    _add(_bucket(name, key), slot, ends, amount)
    commit()


def count_one(name: str, key: str) -> None:
    """Count one against the limit `name` for `key` in the caller's transaction."""
    limit = _limit(name)
    if limit is not None:
        slot, ends, _ = _window(limit[1])
        _add(_bucket(name, key), slot, ends)


def _note(name: str, limit: tuple[int, int], left: int, reset: int, *, refused: bool) -> None:
    count, seconds = limit
    request_info.note_limit(request_info.Limit(name, count, seconds, left, reset, refused))


def _limit(name: str) -> tuple[int, int] | None:
    field = f"limit_{name}"
    return parse_limit(field, getattr(current(), field))


def _window(seconds: int) -> tuple[int, int, int]:
    """The current window's number, when it ends and now, in seconds since the epoch."""
    epoch = int((now() - EPOCH).total_seconds())
    slot = epoch // seconds
    return slot, (slot + 1) * seconds, epoch


def _bucket(name: str, key: str) -> str:
    # Hashed: the table keeps no addresses or names, and every key fits the column.
    return f"{name}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:48]}"


def _add(bucket: str, slot: int, expires: int, amount: int = 1) -> int:
    """Add `amount` to the window's count in one statement, and return the count."""
    return _add_all([(bucket, slot, expires)], amount)[bucket]


def _add_all(windows: list[tuple[str, int, int]], amount: int = 1) -> dict[str, int]:
    """Add `amount` to each (bucket, slot, expires) window's count in one statement; the
    counts by bucket."""
    table = Throttle._table_
    values, parameters = [], {"amount": amount}
    for index, (bucket, slot, expires) in enumerate(windows):
        values.append(f"($bucket{index}, $slot{index}, $amount, $expires{index})")
        parameters.update(
            {f"bucket{index}": bucket, f"slot{index}": slot, f"expires{index}": expires}
        )
    cursor = db.execute(
        f'INSERT INTO "{table}" ("bucket", "slot", "hits", "expires") VALUES {", ".join(values)} '
        f'ON CONFLICT ("bucket", "slot") DO UPDATE SET "hits" = "{table}"."hits" + $amount '
        'RETURNING "bucket", "hits"',
        {},
        parameters,
    )
    return dict(cursor.fetchall())
