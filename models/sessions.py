"""Server-side sessions named by signed bearer tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from pony.orm import select

from im_api import security
from im_api.config import current, now
from im_api.errors import ApiError, Error
from models import locks
from models.entities import Session, User


def open_session(user: User) -> tuple[str, Session]:
    """A new session for `user` and its bearer token."""
    started = now()
    session = Session(
        key=secrets.token_urlsafe(32),
        user=user,
        created_at=started,
        expires_at=started + timedelta(seconds=current().token_ttl),
    )
    return security.issue_token(session.key), session


def active(token_info: dict) -> Session:
    """The session a verified token names.

    Raises INVALID_TOKEN when the session has ended (logout, password change, account
    cancelled) or expired.
    """
    session = Session.get(key=token_info["sub"])
    if session is None or session.expires_at <= now():
        raise ApiError(Error.INVALID_TOKEN)
    return session


def locked(token_info: dict, *, shared: bool = False) -> Session:
    """The session a verified token names, in a new transaction that holds its account's
    lock: exclusive for a request that changes the account or ends sessions, shared for one
    that adds rows referring to it (a group it owns, a new session).

    Everything the request read before is forgotten (`locks.forget_reads`): read what the
    request acts on from the returned session. Raises INVALID_TOKEN when the session has
    ended or expired, also while waiting for the lock.
    """
    locks.forget_reads()
    key = token_info["sub"]
    user_id = select(s.user.id for s in Session if s.key == key).first()
    if user_id is None:
        raise ApiError(Error.INVALID_TOKEN)
    locks.account(user_id, shared=shared)
    return active(token_info)


def end_others(session: Session) -> None:
    """End every session of the same user except `session`."""
    for other in session.user.sessions.select(lambda s: s.id != session.id):
        other.delete()


def end_all(user: User) -> None:
    # Entity deletes, not bulk ones: Pony's cache must know the rows are gone.
    for session in user.sessions.select()[:]:
        session.delete()
