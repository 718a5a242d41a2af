"""Accounts: creation, password checks with the failed-attempt limit, changes, cancellation."""

from __future__ import annotations

import math
from datetime import timedelta

from pony.orm import (
    IntegrityError,
    TransactionIntegrityError,
    commit,
    count,
    delete,
    rollback,
    select,
)

from im_core import metrics
from im_core.config import current, now
from im_core.errors import ApiError, Error, too_many_attempts
from models import contacts, groups, joins, locks, media, profiles, sessions
from models.entities import EmailCode, Group, LoginFailure, Membership, User
from models.passwords import check_password, dummy_hash, hash_password


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


def authenticate(name: str, password: str) -> User:
    """The account named `name` if `password` is its password.

    An unknown name costs the same bcrypt check as a known one, so the time taken does not
    tell whether the name exists. Raises USERNAME_NOT_FOUND, WRONG_PASSWORD or
    TOO_MANY_ATTEMPTS (see `check_password_of`).
    """
    user = profiles.by_name(name)
    if user is None:
        check_password(password, dummy_hash(current().bcrypt_rounds))
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user_id = user.id
    check_password_of(user, password)
    # The new session must not land on an account being cancelled: its lock, shared.
    locks.forget_reads()
    locks.account(user_id, shared=True)
    user = User.get(id=user_id)
    if user is None:
        raise ApiError(Error.USERNAME_NOT_FOUND)
    forget_failures(user)
    return user


def check_password_of(user: User, password: str) -> None:
    """Check a password given for `user` (login, change_password, cancel_account), counted
    against the limit of failed attempts: at most `login_max_failures` in
    `login_failure_window` seconds, whatever the operation.

    The attempt is recorded (committed) before bcrypt runs and stays recorded unless the
    caller clears the record after a success (`forget_failures`), so attempts sent at once
    are counted at once: at most the limit of them get as far as bcrypt. bcrypt runs with no
    transaction open. Raises TOO_MANY_ATTEMPTS, WRONG_PASSWORD, or USERNAME_NOT_FOUND when
    the account was cancelled meanwhile.
    """
    password_hash = user.password_hash
    _spend_attempt(user.id)
    if not check_password(password, password_hash):
        raise ApiError(Error.WRONG_PASSWORD)


def forget_failures(user: User) -> None:
    """Clear the account's failed attempts (after a right password), in the transaction."""
    delete(f for f in LoginFailure if f.user == user)


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


def change_password(token_info: dict, old_password: str, new_password: str) -> tuple[str, object]:
    """Set a new password, end the user's sessions, and open a fresh one.

    The session the request came with ends too: the returned token replaces it. Raises
    INVALID_TOKEN (also when another change ended the session meanwhile), WRONG_PASSWORD
    or TOO_MANY_ATTEMPTS.
    """
    user = sessions.active(token_info).user
    try:
        check_password_of(user, old_password)
    except ApiError as error:
        raise _session_ended_if_account_gone(error) from None
    password_hash = hash_password(new_password, current().bcrypt_rounds)  # outside any lock
    user = sessions.locked(token_info).user
    forget_failures(user)
    user.password_hash = password_hash
    sessions.end_all(user, "password_changed")
    return sessions.open_session(user)


def change_email(user: User, new_email: str) -> None:
    """Raises EMAIL_EXISTS when another account has the address."""
    new_email = new_email.lower()
    if new_email != user.email:
        _ensure_free(None, new_email)
    user.email = new_email
    _commit_unique(None, new_email)


def cancel(token_info: dict, password: str) -> None:
    """Delete the account after checking its password once more.

    Sessions, failed logins and codes go; groups the user owned pass to their next member
    (or are deleted when empty); messages stay, from a deleted user; contacts and requests
    go, each other side hearing of it, and direct chats stay with their other member.
    Raises INVALID_TOKEN (also when the account went meanwhile), WRONG_PASSWORD or
    TOO_MANY_ATTEMPTS.
    """
    try:
        check_password_of(sessions.active(token_info).user, password)
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


def _spend_attempt(user_id: int) -> None:
    """Record one password attempt for the account, committed; raises TOO_MANY_ATTEMPTS
    when the account had `login_max_failures` failures in the window already, or has more
    counting this one (attempts sent at once: each counts every one recorded before it).

    Raises USERNAME_NOT_FOUND when the account is gone.
    """
    settings = current()
    window = timedelta(seconds=settings.login_failure_window)
    since = now() - window
    locks.account(user_id, shared=True)  # its cancellation must not miss this row
    # Its id only: reading the row again would clash with the values read before the lock.
    if not select(u.id for u in User if u.id == user_id).exists():
        raise ApiError(Error.USERNAME_NOT_FOUND)
    user = User[user_id]
    _refuse_if_locked(user_id, settings.login_max_failures, window)
    delete(f for f in LoginFailure if f.user == user and f.at <= since)
    LoginFailure(user=user, at=now())
    commit()
    try:
        counted = count(f for f in LoginFailure if f.user.id == user_id and f.at > since)
        if counted > settings.login_max_failures:
            _refuse_if_locked(user_id, settings.login_max_failures, window)
    finally:
        # End the transaction the count began: bcrypt comes next, and on SQLite Pony begins
        # every transaction after a write as IMMEDIATE, which would hold the database's write
        # lock through the check (every other writer, and every other login, waiting).
        rollback()


def _refuse_if_locked(user_id: int, max_failures: int, window: timedelta) -> None:
    since = now() - window
    recent = sorted(
        select(
            f.at for f in LoginFailure if f.user.id == user_id and f.at > since
        ).without_distinct()  # two failures may share a time
    )
    if len(recent) < max_failures:
        return
    # Locked until the oldest failure that still counts leaves the window.
    unlock = recent[-max_failures] + window
    metrics.refused("login_failures")
    raise too_many_attempts(math.ceil((unlock - now()).total_seconds()))


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
