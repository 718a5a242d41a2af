"""Accounts: creation, password checks with the failed-attempt limit, changes, cancellation."""

from __future__ import annotations

import hashlib
import ipaddress
import math
from datetime import timedelta

from pony.orm import (
    IntegrityError,
    TransactionIntegrityError,
    commit,
    delete,
    rollback,
    select,
)

from im_core import metrics, request_info
from im_core.config import current, now
from im_core.errors import ApiError, Error, too_many_attempts
from models import contacts, groups, joins, locks, media, profiles, sessions
from models.entities import EmailCode, Group, KnownAddress, LoginFailure, Membership, User, db
from models.passwords import check_password, dummy_hash, hash_password

# How long an address the account signed in from stays one whose right password passes the
# account's lockout (each sign-in from it starts this again).
KNOWN_FOR = timedelta(days=90)


def create(name: str, password: str, email: str | None = None) -> User:
    """A new account, committed.

    Raises USERNAME_DUPLICATE or EMAIL_EXISTS, also when a concurrent request took the name
    or the email between our check and our commit.
    """
    email = email.lower() if email else None
    _ensure_free(name, email)
    password_hash = hash_password(password, current().bcrypt_rounds)
    user = User(
        name=name,
        name_key=name.lower(),
        email=email,
        password_hash=password_hash,
        created_at=now(),
    )
    _commit_unique(name, email)
    return user


def authenticate(name: str, password: str, address: str) -> User:
    """The account named `name` if `password` is its password, asked from the client
    `address`.

    An unknown name costs the same bcrypt check as a known one, so the time taken does not
    tell whether the name exists. Raises USERNAME_NOT_FOUND, WRONG_PASSWORD or
    TOO_MANY_ATTEMPTS (see `check_password_of`).
    """
    user = profiles.by_name(name)
    if user is None:
        check_password(password, dummy_hash(current().bcrypt_rounds))
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user_id = user.id
    check_password_of(user, password, address)
    # The new session must not land on an account being cancelled: its lock, shared.
    locks.forget_reads()
    locks.account(user_id, shared=True)
    user = User.get(id=user_id)
    if user is None:
        raise ApiError(Error.USERNAME_NOT_FOUND)
    forget_failures(user, address)
    return user


def check_password_of(user: User, password: str, address: str) -> None:
    """Check a password given for `user` from the client `address` (login, change_password,
    cancel_account), counted against the limits of failed attempts, whatever the operation:

    * per account and address, at most `login_max_failures` in `login_failure_window`
      seconds: past it, 429 from that address (a guesser locks itself out, not the owner);
    * per account from every address, at most `login_max_account_failures` in
      `login_account_failure_window` seconds: past it, 429 from every address the account
      has not signed in from within KNOWN_FOR (guessing from many addresses stops, and the
      owner still signs in from home).

    The attempt is recorded (committed) before bcrypt runs and stays recorded unless the
    caller clears the address's record after a success (`forget_failures`), so attempts sent
    at once are counted at once: at most the limit of them get as far as bcrypt. bcrypt runs
    with no transaction open. Raises TOO_MANY_ATTEMPTS, WRONG_PASSWORD, or
    USERNAME_NOT_FOUND when the account was cancelled meanwhile.
    """
    password_hash = user.password_hash
    _spend_attempt(user.id, address_key(address))
    if not check_password(password, password_hash):
        raise ApiError(Error.WRONG_PASSWORD)


def forget_failures(user: User, address: str) -> None:
    """Clear the failed attempts of the account from `address` (after a right password), in
    the transaction. Those from other addresses stay: signing in does not give a guesser
    elsewhere a fresh count."""
    key = address_key(address)
    delete(f for f in LoginFailure if f.user == user and f.address == key)


def signed_in_from(user: User, address: str) -> None:
    """Remember that `user` signed in (registered, logged in, changed its password) from the
    client `address`: the right password from there passes the account's lockout."""
    table = KnownAddress._table_
    db.execute(
        f'INSERT INTO "{table}" ("user", "address", "last_at") VALUES ($user, $key, $at) '
        'ON CONFLICT ("user", "address") DO UPDATE SET "last_at" = $at',
        {},
        {"user": user.id, "key": address_key(address), "at": now()},
    )


def signed_in_before(name_or_email: str, address: str) -> bool:
    """Whether the account named so (a name any case, or an email) signed in from the
    client `address` within KNOWN_FOR; False when there is no such account."""
    lowered = name_or_email.lower()
    user_id = select(u.id for u in User if u.name_key == lowered or u.email == lowered).first()
    return user_id is not None and _known(user_id, address_key(address))


def address_key(address: str) -> str:
    """The client address as the failure and sign-in records keep it: hashed (the tables
    keep no addresses), an IPv6 address by its /64 (one subscriber's network, whose
    addresses change from day to day)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        normal = address
    else:
        if parsed.version == 6 and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        if parsed.version == 6:
            normal = str(ipaddress.ip_network(f"{parsed}/64", strict=False))
        else:
            normal = str(parsed)
    digest = hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:48]


def verify_password(user: User, password: str) -> None:
    """Raises WRONG_PASSWORD unless `password` is the user's (no attempt is counted)."""
    if not check_password(password, user.password_hash):
        raise ApiError(Error.WRONG_PASSWORD)


def rename(user: User, new_name: str) -> None:
    """Raises USERNAME_DUPLICATE when another account has the name (ignoring case)."""
    if new_name.lower() != user.name_key:
        _ensure_free(new_name, None)
    user.name = new_name
    user.name_key = new_name.lower()
    _commit_unique(new_name, None)


def change_password(
    token_info: dict, old_password: str, new_password: str, address: str
) -> tuple[str, object]:
    """Set a new password, end the user's sessions, and open a fresh one, for a request
    from the client `address`.

    The session the request came with ends too: the returned token replaces it. Raises
    INVALID_TOKEN (also when another change ended the session meanwhile), WRONG_PASSWORD
    or TOO_MANY_ATTEMPTS.
    """
    user = sessions.active(token_info).user
    try:
        check_password_of(user, old_password, address)
    except ApiError as error:
        raise _session_ended_if_account_gone(error) from None
    password_hash = hash_password(new_password, current().bcrypt_rounds)  # outside any lock
    user = sessions.locked(token_info).user
    forget_failures(user, address)
    user.password_hash = password_hash
    sessions.end_all(user, "password_changed")
    signed_in_from(user, address)
    return sessions.open_session(user)


def change_email(user: User, new_email: str) -> None:
    """Raises EMAIL_EXISTS when another account has the address."""
    new_email = new_email.lower()
    if new_email != user.email:
        _ensure_free(None, new_email)
    user.email = new_email
    _commit_unique(None, new_email)


def cancel(token_info: dict, password: str, address: str) -> None:
    """Delete the account after checking its password once more (given from the client
    `address`).

    Sessions, failed logins, known addresses and codes go; groups the user owned pass to
    their next member (or are deleted when empty); messages stay, from a deleted user;
    contacts and requests go, each other side hearing of it, and direct chats stay with
    their other member.
    Raises INVALID_TOKEN (also when the account went meanwhile), WRONG_PASSWORD or
    TOO_MANY_ATTEMPTS.
    """
    try:
        check_password_of(sessions.active(token_info).user, password, address)
    except ApiError as error:
        raise _session_ended_if_account_gone(error) from None
    user = sessions.locked(token_info).user
    # Every group it is in or owns, each locked (in id order) before it is read; and those
    # whose announcement it signed, which its deletion changes (signed by a deleted user).
    group_ids = set(select(m.group.id for m in Membership if m.user == user))
    group_ids |= set(select(g.id for g in Group if g.owner == user))
    group_ids |= set(select(g.id for g in Group if g.announcement_by == user))
    for group_id in sorted(group_ids):
        locks.group(group_id)
    for group_id in sorted(group_ids):
        group = Group.get(id=group_id)
        if group is not None:  # not deleted by a last member leaving before our lock
            groups.leave(group, user)
    joins.forget_account(user)
    contacts.forget_account(user)
    if user.email:
        delete(c for c in EmailCode if c.email == user.email)
    avatar = user.avatar
    user.avatar = None
    sessions.end_all(user, "account_cancelled")
    user.delete()
    if avatar is not None:
        media.release(avatar)


def _session_ended_if_account_gone(error: ApiError) -> ApiError:
    # A session's account cancelled while its password was being checked: the session is
    # gone with it.
    return ApiError(Error.INVALID_TOKEN) if error.error is Error.USERNAME_NOT_FOUND else error


def _spend_attempt(user_id: int, key: str) -> None:
    """Record one password attempt for the account from the address `key`, committed;
    raises TOO_MANY_ATTEMPTS when a limit of `check_password_of` was met already, or is
    passed counting this one (attempts sent at once: each counts every one recorded before
    it).

    Raises USERNAME_NOT_FOUND when the account is gone.
    """
    settings = current()
    longest = max(settings.login_failure_window, settings.login_account_failure_window)
    locks.account(user_id, shared=True)  # its cancellation must not miss this row
    # Its id only: reading the row again would clash with the values read before the lock.
    if not select(u.id for u in User if u.id == user_id).exists():
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user = User[user_id]
    known = _known(user_id, key)
    _refuse_if_locked(user_id, key, known, counted=False)
    delete(f for f in LoginFailure if f.user == user and f.at <= now() - timedelta(seconds=longest))
    LoginFailure(user=user, at=now(), address=key)
    commit()
    try:
        _refuse_if_locked(user_id, key, known, counted=True)
    finally:
        # End the transaction the check began: bcrypt comes next, and on SQLite Pony begins
        # every transaction after a write as IMMEDIATE, which would hold the database's write
        # lock through the check (every other writer, and every other login, waiting).
        rollback()


def _known(user_id: int, key: str) -> bool:
    """Whether the account signed in from the address `key` within KNOWN_FOR."""
    since = now() - KNOWN_FOR
    return select(
        k.id
        for k in KnownAddress
        if k.user.id == user_id and k.address == key and k.last_at > since
    ).exists()


def _refuse_if_locked(user_id: int, key: str, known: bool, *, counted: bool) -> None:
    """Raise TOO_MANY_ATTEMPTS when the failures in a limit's window reach its count (before
    this attempt is recorded), or pass it (once recorded, `counted`)."""
    settings = current()
    limits = [("per_address", settings.login_max_failures, settings.login_failure_window, key)]
    if not known:
        limits.append(
            (
                "per_account",
                settings.login_max_account_failures,
                settings.login_account_failure_window,
                None,
            )
        )
    for kind, max_failures, seconds, address in limits:
        if max_failures <= 0:
            continue
        window = timedelta(seconds=seconds)
        recent = _failure_times(user_id, now() - window, address)
        if len(recent) > max_failures or (not counted and len(recent) == max_failures):
            # Locked until the oldest failure that still counts leaves the window.
            unlock = recent[-max_failures] + window
            metrics.refused("login_failures")
            wait = max(1, math.ceil((unlock - now()).total_seconds()))
            request_info.note_limit(
                request_info.Limit(f"login_failures_{kind}", max_failures, seconds, 0, wait, True)
            )
            raise too_many_attempts(wait)


def _failure_times(user_id: int, since, address: str | None) -> list:
    """When the account's failures since `since` were, from `address` (None: from any)."""
    if address is None:
        found = select(f.at for f in LoginFailure if f.user.id == user_id and f.at > since)
    else:
        found = select(
            f.at
            for f in LoginFailure
            if f.user.id == user_id and f.at > since and f.address == address
        )
    return sorted(found.without_distinct())  # two failures may share a time


def _ensure_free(name: str | None, email: str | None) -> None:
    if name is not None and profiles.by_name(name) is not None:
        raise ApiError(Error.USERNAME_DUPLICATE)
    if email is not None and User.get(email=email) is not None:
        raise ApiError(Error.EMAIL_EXISTS)


def _commit_unique(name: str | None, email: str | None) -> None:
    """Commit; a unique index that a concurrent request won becomes the matching 409.

    Pony raises the driver's IntegrityError as it is when the violating row is flushed by
    `commit()` itself, and wraps it in TransactionIntegrityError when a query flushed first.
    """
    try:
        commit()
    except (IntegrityError, TransactionIntegrityError):
        rollback()
        if name is not None and profiles.by_name(name) is not None:
            raise ApiError(Error.USERNAME_DUPLICATE) from None
        raise ApiError(Error.EMAIL_EXISTS) from None
