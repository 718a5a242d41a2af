"""The account operations (/api/user/...)."""

from __future__ import annotations

from handlers import SUCCEED
from im_api import clients, uploads
from im_core.errors import ApiError
from models import codes, media, profiles, sessions, throttle, users
from models.present import utc_iso, ws_url


def _signed_in(user, token, session) -> dict:
    return {
        **SUCCEED,
        "token": token,
        "expires_at": utc_iso(session.expires_at),
        "ws_url": ws_url(user.id),
        "user": profiles.view(user),
    }


def register(body):
    throttle.spend("register_per_address", clients.address())
    email = body.get("email")
    if email is not None:
        codes.consume(email, "register", body.get("security_code"))
    user = users.create(body["name"], body["password"], email)
    users.signed_in_from(user, clients.address())
    token, session = sessions.open_session(user)
    return _signed_in(user, token, session)


def send_email_code(body, token_info=None):
    throttle.spend("email_code_per_address", clients.address())
    throttle.spend("email_code_per_mailbox", codes.mailbox(body["email"]))
    return {**SUCCEED, **codes.send(body["email"], body["purpose"], token_info)}


def login(body):
    address = clients.address()
    throttle.spend("login_per_address", address)
    target = (body.get("name") or body.get("email")).lower()
    try:
        throttle.spend("login_per_target", target)
    except ApiError:
        # Strangers trying a name do not lock its owner out: not where it signed in before.
        if not users.signed_in_before(target, address):
            raise
    if "email" in body:
        user = codes.login(body["email"], body["security_code"])
    else:
        user = users.authenticate(body["name"], body["password"], address)
    users.signed_in_from(user, address)
    token, session = sessions.open_session(user)
    return _signed_in(user, token, session)


def logout(token_info):
    sessions.end(sessions.active(token_info), "logout")
    return SUCCEED


def cancel_account(body, token_info):
    throttle.spend_password(clients.address(), sessions.active(token_info).user.id)
    users.cancel(token_info, body["password"], clients.address())
    return SUCCEED


def get_me(token_info):
    return {**SUCCEED, "user": profiles.view(sessions.active(token_info).user)}


def change_name(body, token_info):
    users.rename(sessions.locked(token_info).user, body["new_name"])
    return SUCCEED


def change_password(body, token_info):
    throttle.spend_password(clients.address(), sessions.active(token_info).user.id)
    token, fresh = users.change_password(
        token_info, body["old_password"], body["new_password"], clients.address()
    )
    return {**SUCCEED, "token": token, "expires_at": utc_iso(fresh.expires_at)}


def change_email(body, token_info):
    user = sessions.locked(token_info).user
    codes.consume(body["new_email"], "change_email", body["security_code"])
    users.change_email(user, body["new_email"])
    return SUCCEED


def change_image(token_info):
    # Counted before the work of decoding the image.
    throttle.spend_upload(clients.address(), sessions.active(token_info).user.id)
    upload = uploads.received()
    content_type = media.inspect(upload.spool, "avatar")
    user = sessions.locked(token_info).user
    media.change_avatar(user, upload.spool, upload.filename, content_type)
    return {**SUCCEED, "url": profiles.avatar_url(user)}
