"""Group chats, their members and their messages (/api/groups/...)."""

from __future__ import annotations

from handlers import SUCCEED
from im_api import clients
from im_core.errors import ApiError, Error
from models import groups, messages, sessions, throttle


def create_group(body, token_info):
    group = groups.create(sessions.locked(token_info, shared=True).user, body["name"])
    return {**SUCCEED, "group": groups.view(group)}, 201


def list_my_groups(token_info):
    mine = groups.of_user(sessions.active(token_info).user)
    return {**SUCCEED, "groups": [groups.summary(group) for group in mine]}


def get_group(group_id, token_info):
    group = groups.of_member(group_id, sessions.active(token_info).user)
    return {**SUCCEED, "group": groups.view(group)}


def add_member(group_id, body, token_info):
    group = groups.add_member(group_id, sessions.active(token_info).user.id, body["name"])
    return {**SUCCEED, "group": groups.view(group)}


def remove_member(group_id, user_id, token_info):
    groups.remove_member(group_id, sessions.active(token_info).user.id, user_id)
    return SUCCEED


def list_messages(group_id, token_info, limit, cursor=None, after_seq=None):
    if cursor is not None and after_seq is not None:
        raise ApiError(Error.PAGING_CONFLICT)
    group = groups.of_member(group_id, sessions.active(token_info).user)
    if after_seq is not None:
        found, next_page = messages.after(group, after_seq, limit)
    else:
        found, next_page = messages.page(group, cursor, limit)
    return {**SUCCEED, "messages": [messages.view(m) for m in found], "next": next_page}


def post_message(group_id, body, token_info):
    # Counted first, like uploads: a refused or failing post counts too.
    sender_id = sessions.active(token_info).user.id
    throttle.spend_message(clients.address(), sender_id)
    message, created = messages.post_text(
        group_id, sender_id, body["text"], body.get("client_msg_id")
    )
    return {**SUCCEED, "message": messages.view(message)}, 201 if created else 200
