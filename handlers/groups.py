"""Conversations (group chats and direct chats), their members and their messages
(/api/groups/...); a direct chat opened by user (/api/direct/{user_id})."""

from __future__ import annotations

from handlers import SUCCEED
from im_api import clients
from im_core.errors import ApiError, Error
from models import (
    changes,
    conversations,
    groups,
    joins,
    messages,
    reads,
    roles,
    sessions,
    throttle,
)


def create_group(body, token_info):
    user = sessions.locked(token_info, shared=True).user
    group = groups.create(user, body["name"])
    return {**SUCCEED, "group": conversations.view(group, user)}, 201


def list_my_groups(token_info, limit, cursor=None):
    found, next_page = conversations.page(sessions.active(token_info).user, cursor, limit)
    return {**SUCCEED, "groups": found, "next": next_page}


def get_group(group_id, token_info):
    user = sessions.active(token_info).user
    group = groups.of_member(group_id, user)
    return {**SUCCEED, "group": conversations.view(group, user)}


def open_direct_chat(user_id, token_info):
    me = sessions.active(token_info).user
    chat, made = conversations.open_direct(me.id, user_id)
    return {**SUCCEED, "group": conversations.view(chat, me)}, 201 if made else 200


def add_member(group_id, body, token_info):
    user = sessions.active(token_info).user
    group, waiting = groups.add_member(group_id, user.id, body["name"])
    if waiting is not None:  # join approval: an admin decides
        return {**SUCCEED, "request": joins.views([waiting])[0]}, 202
    return {**SUCCEED, "group": conversations.view(group, user)}


def remove_member(group_id, user_id, token_info):
    groups.remove_member(group_id, sessions.active(token_info).user.id, user_id)
    return SUCCEED


def update_group(group_id, body, token_info):
    user = sessions.active(token_info).user
    group = roles.update(group_id, user.id, body.get("name"), body.get("join_approval"))
    return {**SUCCEED, "group": conversations.view(group, user)}


def disband_group(group_id, token_info):
    groups.disband(group_id, sessions.active(token_info).user.id)
    return SUCCEED


def appoint_admin(group_id, user_id, token_info):
    user = sessions.active(token_info).user
    group = roles.appoint(group_id, user.id, user_id)
    return {**SUCCEED, "group": conversations.view(group, user)}


def dismiss_admin(group_id, user_id, token_info):
    user = sessions.active(token_info).user
    group = roles.dismiss(group_id, user.id, user_id)
    return {**SUCCEED, "group": conversations.view(group, user)}


def transfer_group(group_id, body, token_info):
    user = sessions.active(token_info).user
    group = roles.transfer(group_id, user.id, body["user_id"])
    return {**SUCCEED, "group": conversations.view(group, user)}


def set_announcement(group_id, body, token_info):
    user = sessions.active(token_info).user
    group = roles.set_announcement(group_id, user.id, body["text"])
    return {**SUCCEED, "group": conversations.view(group, user)}


def clear_announcement(group_id, token_info):
    user = sessions.active(token_info).user
    group = roles.clear_announcement(group_id, user.id)
    return {**SUCCEED, "group": conversations.view(group, user)}


def list_join_requests(group_id, token_info, limit, cursor=None):
    user_id = sessions.active(token_info).user.id
    found, next_page = joins.pending(group_id, user_id, int(cursor) if cursor else None, limit)
    return {**SUCCEED, "requests": found, "next": next_page}


def approve_join_request(group_id, request_id, token_info):
    user = sessions.active(token_info).user
    group = joins.approve(group_id, user.id, request_id)
    return {**SUCCEED, "group": conversations.view(group, user)}


def decline_join_request(group_id, request_id, token_info):
    joins.decline(group_id, sessions.active(token_info).user.id, request_id)
    return SUCCEED


def cancel_join_request(group_id, request_id, token_info):
    joins.cancel(group_id, sessions.active(token_info).user.id, request_id)
    return SUCCEED


def list_messages(group_id, token_info, limit, cursor=None, after_seq=None):
    if cursor is not None and after_seq is not None:
        raise ApiError(Error.PAGING_CONFLICT)
    viewer = sessions.active(token_info).user
    group = groups.of_member(group_id, viewer)
    if after_seq is not None:
        found, next_page = messages.after(group, viewer, after_seq, limit)
    else:
        found, next_page = messages.page(group, viewer, cursor, limit)
    return {**SUCCEED, "messages": messages.views(found), "next": next_page}


def mark_read(group_id, body, token_info):
    user_id = sessions.active(token_info).user.id
    return {**SUCCEED, "read": reads.mark(group_id, user_id, body["seq"])}


def list_reads(group_id, token_info):
    group = groups.of_member(group_id, sessions.active(token_info).user)
    return {**SUCCEED, **reads.receipts(group)}


def post_message(group_id, body, token_info):
    # Counted first, like uploads: a refused or failing post counts too.
    sender_id = sessions.active(token_info).user.id
    throttle.spend_message(clients.address(), sender_id)
    shown, created = messages.post_text(
        group_id, sender_id, body["text"], body.get("client_msg_id"), body.get("reply_to_seq")
    )
    return {**SUCCEED, "message": shown}, 201 if created else 200


def edit_message(group_id, seq, body, token_info):
    user_id = sessions.active(token_info).user.id
    return {**SUCCEED, "message": messages.view(changes.edit(group_id, user_id, seq, body["text"]))}


def recall_message(group_id, seq, token_info):
    user_id = sessions.active(token_info).user.id
    return {**SUCCEED, "message": messages.view(changes.recall(group_id, user_id, seq))}


def hide_message(group_id, seq, token_info):
    changes.hide(group_id, sessions.active(token_info).user.id, seq)
    return SUCCEED


def forward_messages(group_id, body, token_info):
    # Each copy is a message: counted as posts are, first.
    sender_id = sessions.active(token_info).user.id
    throttle.spend_message(clients.address(), sender_id, len(body["seqs"]))
    made = changes.forward(group_id, sender_id, body["from_group_id"], body["seqs"])
    return {**SUCCEED, "messages": messages.views(made)}, 201
