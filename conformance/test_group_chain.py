"""The group chain the spec's links describe, walked once by hand with a real second user.

(The stateful run follows the same links with generated data, where a member to add
rarely exists.) Spec: POST /groups (links), POST /groups/{group_id}/members,
POST /groups/{group_id}/upload_image (components.responses.Uploaded and its links),
GET /groups/{group_id}/messages, GET /media/{media_id}.
"""

from __future__ import annotations

from conformance import media
from conformance.expect import refused, succeed
from conformance.target import bearer

GROUP_KEYS = {"id", "kind", "name", "owner_id", "members", "created_at"}
GROUP_KEYS |= {"read_seq", "unread_count", "mention_count"}
GROUP_KEYS |= {"role", "admin_ids", "announcement", "join_approval", "state_version"}
MESSAGE_KEYS = {"id", "kind", "sender", "media_id", "url", "size", "content_type"}
MESSAGE_KEYS |= {"filename", "created_at", "group_id", "seq", "text", "client_msg_id", "mentions"}
MESSAGE_KEYS |= {"rev", "edited_at", "forwarded"}


def test_create_group_add_member_upload_list_messages_fetch_media(api, users):
    """POST /api/groups -> POST members -> POST upload_image -> GET messages -> GET media."""
    owner, member = users.register(), users.register()

    created = api.post("/groups", json={"name": "Chain test"}, headers=bearer(owner["token"]))
    group = succeed(created, "group", status=201)["group"]
    assert set(group) == GROUP_KEYS
    assert group["owner_id"] == owner["user"]["id"]

    added = api.post(
        f"/groups/{group['id']}/members",
        json={"name": member["name"]},
        headers=bearer(owner["token"]),
    )
    members = succeed(added, "group")["group"]["members"]
    assert [m["id"] for m in members] == [owner["user"]["id"], member["user"]["id"]]

    uploaded = api.post(
        f"/groups/{group['id']}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=bearer(member["token"]),
    )
    upload = succeed(uploaded, "url", "media_id", "message_id", "message", status=201)
    assert set(upload["message"]) == MESSAGE_KEYS
    assert upload["message"]["sender"]["id"] == member["user"]["id"]

    listed = api.get(f"/groups/{group['id']}/messages", headers=bearer(owner["token"]))
    page = succeed(listed, "messages", "next")
    # The same message; its `url` is signed anew for each answer, the signature carrying the
    # second it was made, so it is the same link when both answers fall in one second only.
    listed_message, uploaded_message = dict(page["messages"][0]), dict(upload["message"])
    assert listed_message.pop("url").split("?")[0] == uploaded_message.pop("url").split("?")[0]
    assert listed_message == uploaded_message

    # The signed URL works without a token, as in an <img> tag; it is relative to the server.
    fetched = api.get(upload["url"].removeprefix("/api"))
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == media.PNG
    assert fetched.headers["content-type"].split(";")[0] == "image/png"
    assert fetched.headers["x-content-type-options"] == "nosniff"


def test_a_non_member_can_neither_see_nor_post_into_a_group(api, users):
    """GET /api/groups/{group_id}, its messages and uploads: a user outside the group is 403."""
    owner, stranger = users.register(), users.register()
    group = api.post("/groups", json={"name": "Private"}, headers=bearer(owner["token"])).json()
    path = f"/groups/{group['group']['id']}"
    forbidden = (403, 3002, "Not a member of this group")

    refused(api.get(path, headers=bearer(stranger["token"])), forbidden)
    refused(api.get(f"{path}/messages", headers=bearer(stranger["token"])), forbidden)
    upload = api.post(
        f"{path}/upload_image",
        files={"image": ("pixel.png", media.PNG, "image/png")},
        headers=bearer(stranger["token"]),
    )
    refused(upload, forbidden)
