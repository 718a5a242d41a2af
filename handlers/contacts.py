"""Finding people, contact requests, contacts and blocks (/api/users, /api/contacts/...,
/api/blocks/...)."""

from __future__ import annotations

from handlers import SUCCEED
from im_api import clients
from im_core.errors import ApiError, Error
from models import contacts, profiles, sessions, throttle


def search_users(token_info, limit, name=None, prefix=None, cursor=None):
    user_id = sessions.active(token_info).user.id
    if (name is None) == (prefix is None):
        raise ApiError(Error.SEARCH_TERMS)
    throttle.spend_pair("search", clients.address(), user_id)
    found, next_page = profiles.search(
        name or prefix, exact=name is not None, after=cursor, limit=limit
    )
    shown = profiles.member_views(found)
    return {**SUCCEED, "users": [shown[u.id] for u in found], "next": next_page}


def request_contact(body, token_info):
    user_id = sessions.active(token_info).user.id
    throttle.spend_pair("contact_request", clients.address(), user_id)
    outcome, made = contacts.request(user_id, body["name"], body.get("note", ""))
    if outcome == "contact":
        return {**SUCCEED, "contact": contacts.contact_views([made])[0]}, 200
    return {**SUCCEED, "request": contacts.request_view(made)}, 201


def list_contact_requests(token_info, limit, direction="incoming", cursor=None):
    user = sessions.active(token_info).user
    found, next_page = contacts.requests_of(user, direction, cursor, limit)
    return {**SUCCEED, "requests": contacts.request_views(found), "next": next_page}


def accept_contact_request(request_id, token_info):
    made = contacts.accept(sessions.active(token_info).user.id, request_id)
    return {**SUCCEED, "contact": contacts.contact_views([made])[0]}


def decline_contact_request(request_id, token_info):
    contacts.decline(sessions.active(token_info).user.id, request_id)
    return SUCCEED


def cancel_contact_request(request_id, token_info):
    contacts.cancel(sessions.active(token_info).user.id, request_id)
    return SUCCEED


def list_contacts(token_info, limit, cursor=None):
    found, next_page = contacts.contacts_of(sessions.active(token_info).user, cursor, limit)
    return {**SUCCEED, "contacts": contacts.contact_views(found), "next": next_page}


def remove_contact(user_id, token_info):
    contacts.remove(sessions.active(token_info).user.id, user_id)
    return SUCCEED


def block_user(user_id, token_info):
    made, new = contacts.block(sessions.active(token_info).user.id, user_id)
    return {**SUCCEED, "block": contacts.block_view(made)}, 201 if new else 200


def unblock_user(user_id, token_info):
    contacts.unblock(sessions.active(token_info).user.id, user_id)
    return SUCCEED


def list_blocks(token_info, limit, cursor=None):
    found, next_page = contacts.blocks_of(sessions.active(token_info).user, cursor, limit)
    return {**SUCCEED, "blocks": contacts.block_views(found), "next": next_page}
