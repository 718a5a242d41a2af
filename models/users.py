"""Accounts: creation, password checks with the failed-login limit, changes, cancellation."""

from __future__ import annotations

import math
from datetime import timedelta

from pony.orm import IntegrityError, TransactionIntegrityError, commit, rollback

from im_api.config import current, now
from im_api.errors import ApiError, Error, too_many_attempts
from models import groups, present, sessions
from models.entities import EmailCode, LoginFailure, User
from models.passwords import check_password, hash_password
from models.present import utc_iso


def view(user: User) -> dict:
    """The user as its owner sees it."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "avatar_url": avatar_url(user),
        "created_at": utc_iso(user.created_at),
    }


def member_view(user: User) -> dict:
    """The user as other members see it."""
    return {"id": user.id, "name": user.name, "avatar_url": avatar_url(user)}


def avatar_url(user: User) -> str | None:
    return present.avatar_url(user.avatar) if user.avatar else None


def by_name(name: str) -> User | None:
    return User.get(name_key=name.lower())


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

    Raises USERNAME_NOT_FOUND, WRONG_PASSWORD (the failure is recorded and committed), or
    TOO_MANY_ATTEMPTS once the account had `login_max_failures` failures in the window.
    """
    user = by_name(name)
    if user is None:
        raise ApiError(Error.USERNAME_NOT_FOUND)
    _refuse_if_locked(user)
    if not check_password(password, user.password_hash):
        _record_failure(user)
        raise ApiError(Error.WRONG_PASSWORD)
    for failure in user.login_failures.select()[:]:
        failure.delete()
    return user


def verify_password(user: User, password: str) -> None:
    """Raises WRONG_PASSWORD unless `password` is the user's."""
    if not check_password(password, user.password_hash):
        raise ApiError(Error.WRONG_PASSWORD)


def rename(user: User, new_name: str) -> None:
    """Raises USERNAME_DUPLICATE when another account has the name (ignoring case)."""
    if new_name.lower() != user.name_key:
        _ensure_free(new_name, None)
    user.name = new_name
    user.name_key = new_name.lower()
    _commit_unique(new_name, None)


def change_password(session, old_password: str, new_password: str) -> tuple[str, object]:
    """Set a new password, end the user's other sessions, and open a fresh one.

    The session the request came with ends too: the returned token replaces it.
    Raises WRONG_PASSWORD.
    """
    user = session.user
    verify_password(user, old_password)
    user.password_hash = hash_password(new_password, current().bcrypt_rounds)
    sessions.end_all(user)
    return sessions.open_session(user)


def change_email(user: User, new_email: str) -> None:
    """Raises EMAIL_EXISTS when another account has the address."""
    new_email = new_email.lower()
    if new_email != user.email:
        _ensure_free(None, new_email)
    user.email = new_email
    _commit_unique(None, new_email)


def cancel(user: User, password: str) -> None:
    """Delete the account after checking its password once more.

    Sessions, failed logins and codes go; groups the user owned pass to their next member
    (or are deleted when empty); messages stay, from a deleted user. Raises WRONG_PASSWORD.
    """
    verify_password(user, password)
    if user.email:
        for code in EmailCode.select(lambda c: c.email == user.email)[:]:
            code.delete()
    for membership in list(user.memberships):
        groups.leave(membership.group, user)
    avatar = user.avatar
    user.avatar = None
    user.delete()
    if avatar is not None:
        from models import media  # late: media imports users for its views

        media.release(avatar)


def _refuse_if_locked(user: User) -> None:
    settings = current()
    window = timedelta(seconds=settings.login_failure_window)
    since = now() - window
    recent = sorted(f.at for f in user.login_failures if f.at > since)
    if len(recent) < settings.login_max_failures:
        return
    # Locked until the oldest failure that still counts leaves the window.
    unlock = recent[-settings.login_max_failures] + window
    raise too_many_attempts(math.ceil((unlock - now()).total_seconds()))


def _record_failure(user: User) -> None:
    """Keep the failure (committed now: the request ends in an error, which rolls back)."""
    since = now() - timedelta(seconds=current().login_failure_window)
    for failure in user.login_failures.select(lambda f: f.at <= since)[:]:
        failure.delete()
    LoginFailure(user=user, at=now())
    commit()


def _ensure_free(name: str | None, email: str | None) -> None:
    if name is not None and by_name(name) is not None:
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
        if name is not None and by_name(name) is not None:
            raise ApiError(Error.USERNAME_DUPLICATE) from None
        raise ApiError(Error.EMAIL_EXISTS) from None
