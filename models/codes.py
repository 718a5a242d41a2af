"""Email codes: sending, checking and consuming them.

A code is 6 digits from `secrets`, mailed to one address for one purpose (`register`,
`login` or `change_email`). Only an HMAC of it is stored, keyed with the server's secret and
bound to the address and purpose, so the database alone does not give the codes away. One
row per (email, purpose) holds the code last sent: it lasts `code_ttl` seconds, works once,
ends after `code_max_tries` wrong tries, and is not replaced sooner than `code_resend_after`
seconds after it was sent.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import secrets
from datetime import timedelta

from pony.orm import TransactionIntegrityError, commit, db_session, rollback

from im_core import metrics, request_info
from im_core.config import current, now
from im_core.errors import ApiError, Error, too_many_attempts
from models import locks, mail, sessions, throttle
from models.entities import EmailCode, User

logger = logging.getLogger(__name__)


def send(email: str, purpose: str, token_info: dict | None = None) -> dict:
    """Make a new code for (email, purpose) and mail it; says how long it lasts.

    Only `change_email` needs the signed-in user (`token_info`, from a verified token);
    the other purposes ignore any token.

    A login code for an address no account has is stored like any other but never mailed,
    so neither this answer nor later tries with it tell whether the address has an account.

    Raises MISSING_TOKEN (change_email without a valid token: the operation also accepts
    none, so Connexion hands a bad token over as none), INVALID_TOKEN (change_email with a
    token whose session has ended), EMAIL_EXISTS (register to an address an account has,
    change_email to one another account has), TOO_MANY_ATTEMPTS (a code went to the same
    address for the same purpose less than `code_resend_after` seconds ago) or UNAVAILABLE
    (the mail server refused the mail or did not answer; the new code is then forgotten,
    and so is the one it replaced). A login code is mailed after the answer: a failure
    then is logged and forgets the code the same way, but cannot be answered.
    """
    settings = current()
    email = email.lower()
    owner = User.get(email=email)
    if purpose == "change_email":
        if not token_info:
            raise ApiError(Error.MISSING_TOKEN)
        if owner not in (None, sessions.active(token_info).user):
            raise ApiError(Error.EMAIL_EXISTS)
    if purpose == "register" and owner is not None:
        raise ApiError(Error.EMAIL_EXISTS)

    code = f"{secrets.randbelow(10**6):06d}"
    row = _store(email, purpose, code)
    message = mail.code_message(settings, email, purpose, code)
    if purpose == "login":
        # Mailed after the answer, so that the answer takes the same time whether or not
        # the address has an account: composed and handed off either way, sent only to an
        # account's address.
        forget = functools.partial(_forget_unsent, email, purpose, row.code_hash)
        mail.deliver_later(settings, message, send=owner is not None, on_failure=forget)
    else:
        try:
            mail.deliver(settings, message)
        except mail.MailError as error:
            row.delete()
            commit()
            raise ApiError(Error.UNAVAILABLE, str(error)) from None
    return {"expires_in": settings.code_ttl, "resend_after": settings.code_resend_after}


def _forget_unsent(email: str, purpose: str, code_hash: str) -> None:
    """A login code whose mail failed is forgotten (unless a newer one replaced it), so
    that a new one can be asked at once."""
    with db_session:
        row = EmailCode.get_for_update(email=email, purpose=purpose)
        if row is not None and row.code_hash == code_hash:
            row.delete()


def consume(email: str, purpose: str, code: str | None) -> None:
    """Use up the code sent to `email` for `purpose`.

    The code is marked used in the request's transaction: should the request fail after
    this (a name already taken, say), the code stays usable. A wrong try is committed at
    once, since the error that follows rolls the request's transaction back.

    Raises VERIFY_EMAIL (no code given), WRONG_CODE (no code was sent to this address for
    this purpose, or this is not it), CODE_EXPIRED, CODE_USED, CODE_TRIES_EXHAUSTED, or
    TOO_MANY_ATTEMPTS once `limit_code_guesses` wrong codes were tried for this address and
    purpose in its window (across new codes).
    """
    if code is None:
        raise ApiError(Error.VERIFY_EMAIL)
    settings = current()
    # Locked, so that concurrent tries are counted one after the other and a code is used
    # by one request only.
    row = EmailCode.get_for_update(email=email.lower(), purpose=purpose)
    if row is None:
        raise ApiError(Error.WRONG_CODE)
    # Wrong guesses are also counted per address and purpose over a window, whatever code
    # they were for: a new code resets the tries of one code, not this.
    guesses = f"{purpose} {row.email}"
    throttle.refuse_if_spent("code_guesses", guesses)
    if row.wrong_tries >= settings.code_max_tries:
        raise ApiError(Error.CODE_TRIES_EXHAUSTED)
    if now() >= row.expires_at:
        raise ApiError(Error.CODE_EXPIRED)
    matches = _matches(row, code)
    if row.used:
        # Only the holder of the code hears it was used: login codes for addresses without
        # an account are never used, so "used" to anyone would tell the address has one.
        raise ApiError(Error.CODE_USED if matches else Error.WRONG_CODE)
    if not matches:
        row.wrong_tries += 1
        throttle.count_one("code_guesses", guesses)
        commit()
        raise ApiError(Error.WRONG_CODE)
    row.used = True


def login(email: str, code: str) -> User:
    """The account with this address, signed in by a login code.

    Raises what `consume` raises, and WRONG_CODE when no account has the address (in the
    same words, so the answer does not tell whether it has one).
    """
    owner = User.get(email=email.lower())
    if owner is not None:
        # The new session must not land on an account being cancelled: its lock, shared,
        # taken before the code's row (as change_email takes them).
        owner_id = owner.id
        locks.forget_reads()
        locks.account(owner_id, shared=True)
    consume(email, "login", code)
    user = User.get(email=email.lower())
    if user is None:
        raise ApiError(Error.WRONG_CODE)
    return user


def mailbox(email: str) -> str:
    """The mailbox an address reaches: lower-cased, any `+tag` of its local part left out
    (mail providers deliver `alice+x@example.com` to `alice@example.com`)."""
    local, _, domain = email.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _store(email: str, purpose: str, code: str) -> EmailCode:
    """Keep the new code in place of the last one, committed before any mail goes out.

    Committing first makes a concurrent request for the same address and purpose see this
    code and wait its turn, and keeps the database unlocked while the mail server is slow.
    Raises TOO_MANY_ATTEMPTS while the last code is younger than `code_resend_after`.
    """
    settings = current()
    moment = now()
    fields = {
        "code_hash": _digest(settings.secret_keys[0], email, purpose, code),
        "sent_at": moment,
        "expires_at": moment + timedelta(seconds=settings.code_ttl),
        "wrong_tries": 0,
        "used": False,
    }
    row = EmailCode.get_for_update(email=email, purpose=purpose)
    if row is None:
        row = EmailCode(email=email, purpose=purpose, **fields)
    else:
        wait = (row.sent_at - moment).total_seconds() + settings.code_resend_after
        if wait > 0:
            metrics.refused("code_resend")
            wait = math.ceil(wait)
            resend = request_info.Limit(
                "code_resend", 1, settings.code_resend_after, 0, wait, refused=True
            )
            request_info.note_limit(resend)
            raise too_many_attempts(wait)
        row.set(**fields)
    try:
        commit()
    except TransactionIntegrityError:
        # A concurrent request stored a code for the same address and purpose first.
        rollback()
        metrics.refused("code_resend")
        raise too_many_attempts(settings.code_resend_after) from None
    return row


def _digest(key: str, email: str, purpose: str, code: str) -> str:
    message = f"{purpose}\n{email}\n{code}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _matches(row: EmailCode, code: str) -> bool:
    # Every key verifies, so a code sent just before a key rotation still works.
    return any(
        hmac.compare_digest(row.code_hash, _digest(key, row.email, row.purpose, code))
        for key in current().secret_keys
    )
