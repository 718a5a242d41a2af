"""Group chats, their members and their messages (/api/groups/...)."""

from __future__ import annotations

from handlers import SUCCEED
from models import groups, messages, sessions


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


def list_messages(group_id, token_info, limit, cursor=None):
    group = groups.of_member(group_id, sessions.active(token_info).user)
    found, next_cursor = messages.page(group, cursor, limit)
    return {**SUCCEED, "messages": [messages.view(m) for m in found], "next": next_cursor}
