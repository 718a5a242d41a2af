"""Server-side sessions named by signed bearer tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from pony.orm import select

from im_core import request_info, security
from im_core.config import current, now
from im_core.errors import ApiError, Error
from models import events, locks
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
    if user.id is not None:  # a user registered in this transaction has none until a flush
        request_info.note_user(user.id)  # for the request's log line
    return security.issue_token(session.key), session


def active(token_info: dict) -> Session:
    """The session a verified token names.

    Raises INVALID_TOKEN when the session has ended (logout, password change, account
    cancelled) or expired.
    """
    session = Session.get(key=token_info["sub"])
    if session is None or session.expires_at <= now():
        raise ApiError(Error.INVALID_TOKEN)
    request_info.note_user(session.user.id)  # for the request's log line
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


def end(session: Session, reason: str) -> None:
    """End one session (logout); its sockets close when the transaction commits."""
    _ended(session.user.id, [session.id], reason)
    session.delete()


def end_exposed(token_info: dict) -> bool:
    """End the session a verified token names because the token was seen where it must
    never be (a URL's query string, which lands in logs): whoever read it there must not
    use it. False when there was no such session."""
    session = Session.get(key=token_info["sub"])
    if session is None:
        return False
    end(session, "token_exposed")
    return True


def end_others(session: Session, reason: str) -> None:
    """End every session of the same user except `session`."""
    others = session.user.sessions.select(lambda s: s.id != session.id)[:]
    _ended(session.user.id, [other.id for other in others], reason)
    for other in others:
        other.delete()


def end_all(user: User, reason: str) -> None:
    """End every session of `user` (password changed, account cancelled)."""
    # Entity deletes, not bulk ones: Pony's cache must know the rows are gone.
    ending = user.sessions.select()[:]
    _ended(user.id, [session.id for session in ending], reason)
    for session in ending:
        session.delete()


def _ended(user_id: int, session_ids: list[int], reason: str) -> None:
    """Tell the sockets of these sessions to close, when the transaction commits."""
    if session_ids:
        event = events.Event(
            "session.ended", user_id=user_id, session_ids=tuple(sorted(session_ids)), reason=reason
        )
        events.emit(event)
