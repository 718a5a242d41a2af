"""Uploads into group chats (/api/groups/{group_id}/upload_*) and fetching media back
(/api/media/{media_id}).

The multipart body was streamed to a spool file by `im_api.uploads` before a handler runs;
the handler checks membership and keeps it as a message.
"""

from __future__ import annotations

from handlers import SUCCEED
from im_api import clients, serving, uploads
from models import groups, media, messages, sessions, storage, throttle


def upload_image(group_id, token_info):
    return _post(group_id, token_info, "image")


def upload_expression(group_id, token_info):
    return _post(group_id, token_info, "expression")


def upload_file(group_id, token_info):
    return _post(group_id, token_info, "file")


def upload_voice(group_id, token_info):
    return _post(group_id, token_info, "voice")


def fetch_media(media_id, sig):
    found, life = media.by_signed_link(media_id, sig)
    inline = media.KINDS[found.kind].inline
    return serving.send(storage.store(), found, inline=inline, fresh_for=life)


def _post(group_id, token_info, kind):
    throttle.spend_upload(clients.address(), sessions.active(token_info).user.id)
    sender = sessions.active(token_info).user
    group = groups.of_member(group_id, sender)
    upload = uploads.received()
    message = messages.send(group, sender, kind, upload.spool, upload.filename)
    return {**SUCCEED, **messages.uploaded(message)}, 201
