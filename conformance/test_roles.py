"""Group roles: who may do what to a group, join approval, ownership passing on, and the
refusals of bad input.

Spec: openapi.yaml, the operations of `/groups/{group_id}` (updateGroup, disbandGroup),
`/admins/{user_id}`, `/transfer`, `/announcement`, `/join_requests...`, removeMember,
recallMessage and addMember (202 with join approval on); the `ErrorCode` rows 3002, 3003,
3005 to 3011, 5005, 7002 and 7012; `GroupDetail` (`role`, `admin_ids`, `announcement`,
`join_approval`, `state_version`, each member's `role`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from conformance.expect import INVALID_REQUEST, error, refused, succeed
from conformance.target import bearer

NOT_A_MEMBER = (403, 3002, "Not a member of this group")
OWNER_ONLY = (403, 3003, None)
MEMBER_NOT_FOUND = (404, 3005, "Member not found")
DIRECT_CHAT = (409, 3006, None)
ADMIN_ONLY = (403, 3007, "Only the group's owner and admins can do this")
NOT_AN_ADMIN = (404, 3008, "Not an admin of this group")
TOO_MANY_ADMINS = (409, 3009, "A group has at most 50 admins")
JOIN_REQUEST_NOT_FOUND = (404, 3010, "Join request not found")
JOIN_REQUEST_PENDING = (409, 3011, "A request to add this user waits for an admin already")
ALREADY_A_MEMBER = (409, 3004, "Already a member")
NOT_YOUR_MESSAGE = (403, 5005, None)
NOT_YOURSELF = (400, 7002, "Not with yourself")
REQUEST_NOT_YOURS = (403, 7012, None)


@dataclass
class Cast:
    """A group with one of each: its owner, two admins, a plain member, a plain member others
    act on (`target`), a member who was removed, an outsider; and a message of the target."""

    api: object
    group_id: int
    people: dict[str, dict] = field(default_factory=dict)
    message_seq: int = 0

    def id(self, who: str) -> int:
        return self.people[who]["user"]["id"]

    def headers(self, who: str) -> dict:
        return bearer(self.people[who]["token"])

    def view(self) -> dict:
        found = self.api.get(f"/groups/{self.group_id}", headers=self.headers("owner"))
        return succeed(found, "group")["group"]

    def call(self, who: str, method: str, path: str, body: dict | None = None):
        url = f"/groups/{self.group_id}{path}"
        options = {"json": body} if body is not None else {}
        return self.api.request(method, url, headers=self.headers(who), **options)


def cast(api, users, *, approval: bool = False) -> Cast:
    people = {role: users.register() for role in ROLES_AND_OTHERS}
    owner = bearer(people["owner"]["token"])
    created = api.post("/groups", json={"name": "Roles"}, headers=owner)
    group_id = succeed(created, "group", status=201)["group"]["id"]
    made = Cast(api, group_id, people)
    for who in ("admin", "admin2", "member", "target", "removed"):
        added = api.post(
            f"/groups/{group_id}/members", json={"name": people[who]["name"]}, headers=owner
        )
        succeed(added, "group")
    for who in ("admin", "admin2"):
        succeed(made.call("owner", "PUT", f"/admins/{made.id(who)}"), "group")
    succeed(made.call("owner", "DELETE", f"/members/{made.id('removed')}"))
    posted = made.call("target", "POST", "/messages", {"text": "hello"})
    made.message_seq = succeed(posted, "message", status=201)["message"]["seq"]
    if approval:
        succeed(made.call("owner", "PATCH", "", {"join_approval": True}), "group")
    return made


ROLES_AND_OTHERS = ("owner", "admin", "admin2", "member", "target", "removed", "outsider")
ACTORS = ("owner", "admin", "member", "outsider", "removed")


def _pending_request(made: Cast, users) -> int:
    """A join request made by the plain member (approval is on)."""
    newcomer = users.register()
    asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
    return succeed(asked, "request", status=202)["request"]["id"]


# Each operation: (method, path or a function of the cast giving it, body, needs approval,
# the answer per actor: "ok" or the refusal).
OUTSIDE = {"outsider": NOT_A_MEMBER, "removed": NOT_A_MEMBER}
ADMINS = {"owner": "ok", "admin": "ok", "member": ADMIN_ONLY, **OUTSIDE}
OWNER = {"owner": "ok", "admin": OWNER_ONLY, "member": OWNER_ONLY, **OUTSIDE}
OPERATIONS = {
    "rename": ("PATCH", lambda c: "", {"name": "Renamed"}, ADMINS),
    "approval_on": ("PATCH", lambda c: "", {"join_approval": True}, ADMINS),
    "set_announcement": ("PUT", lambda c: "/announcement", {"text": "Read me"}, ADMINS),
    "clear_announcement": ("DELETE", lambda c: "/announcement", None, ADMINS),
    "appoint": ("PUT", lambda c: f"/admins/{c.id('target')}", None, OWNER),
    "dismiss_other_admin": ("DELETE", lambda c: f"/admins/{c.id('admin2')}", None, OWNER),
    "transfer": ("POST", lambda c: "/transfer", "target", OWNER),
    "disband": ("DELETE", lambda c: "", None, OWNER),
    "remove_member": (
        "DELETE",
        lambda c: f"/members/{c.id('target')}",
        None,
        {**ADMINS, "member": OWNER_ONLY},
    ),
    "remove_admin": (
        "DELETE",
        lambda c: f"/members/{c.id('admin2')}",
        None,
        {**OWNER, "member": OWNER_ONLY},
    ),
    "remove_owner": (
        "DELETE",
        lambda c: f"/members/{c.id('owner')}",
        None,
        {"owner": "ok", "admin": OWNER_ONLY, "member": OWNER_ONLY, **OUTSIDE},
    ),
    "recall_others_message": (
        "DELETE",
        lambda c: f"/messages/{c.message_seq}",
        None,
        {**ADMINS, "member": NOT_YOUR_MESSAGE},
    ),
    "list_join_requests": (
        "GET",
        lambda c: "/join_requests",
        None,
        {"owner": "ok", "admin": "ok", "member": "ok", **OUTSIDE},
    ),
    "approve": ("POST", "approve", None, ADMINS),
    "decline": ("POST", "decline", None, ADMINS),
}

CASES = [
    pytest.param(name, actor, id=f"{name}-by-{actor}")
    for name, (_, _, _, answers) in OPERATIONS.items()
    for actor in ACTORS
    if actor in answers
]


@pytest.mark.parametrize(("operation", "actor"), CASES)
def test_every_role_gets_the_documented_answer_and_a_refusal_changes_nothing(
    api, users, operation, actor
):
    """Each group operation by the owner, an admin, a plain member, an outsider and a removed
    member: allowed ones succeed; refused ones answer the documented code, and the group
    (its view, members, roles, announcement, pending requests, messages) is as it was."""
    method, path, body, answers = OPERATIONS[operation]
    needs_request = path in ("approve", "decline")
    made = cast(api, users, approval=needs_request)
    if needs_request:
        request_id = _pending_request(made, users)
        path = f"/join_requests/{request_id}/{path}"
    else:
        path = path(made)
    if body == "target":
        body = {"user_id": made.id("target")}
    succeed(made.call("owner", "PUT", "/announcement", {"text": "Before"}), "group")
    before = _everything(made)

    answer = made.call(actor, method, path, body)

    expected = answers[actor]
    if expected == "ok":
        assert answer.status_code == 200, answer.text
        return
    refused(answer, expected)
    assert _everything(made) == before


def _everything(made: Cast) -> dict:
    group = made.view()
    requests = made.call("owner", "GET", "/join_requests")
    messages = made.call("owner", "GET", "/messages")
    return {
        "group": group,
        "requests": succeed(requests, "requests", "next")["requests"],
        "messages": succeed(messages, "messages", "next")["messages"],
    }


def test_the_view_shows_each_member_s_role_and_the_caller_s_own(api, users):
    """GET /groups/{id}: `role` is the caller's, `owner_id` and `admin_ids` name the owner
    and the admins, and each member carries their role; the conversation list agrees."""
    made = cast(api, users)
    for who, role in (("owner", "owner"), ("admin", "admin"), ("member", "member")):
        found = made.api.get(f"/groups/{made.group_id}", headers=made.headers(who))
        view = succeed(found, "group")["group"]
        assert view["role"] == role
        assert view["owner_id"] == made.id("owner")
        assert view["admin_ids"] == [made.id("admin"), made.id("admin2")]
        roles = {m["id"]: m["role"] for m in view["members"]}
        assert roles == {
            made.id("owner"): "owner",
            made.id("admin"): "admin",
            made.id("admin2"): "admin",
            made.id("member"): "member",
            made.id("target"): "member",
        }
        listed = succeed(made.api.get("/groups", headers=made.headers(who)), "groups", "next")
        summary = next(g for g in listed["groups"] if g["id"] == made.group_id)
        assert (summary["role"], summary["admin_ids"]) == (role, view["admin_ids"])


def test_an_announcement_is_signed_and_shown_in_the_view_and_the_list(api, users):
    """PUT /groups/{id}/announcement by an admin: the view and the conversation list show
    its text, who set it and when; DELETE takes it down; each change raises state_version."""
    made = cast(api, users)
    start = made.view()["state_version"]
    text = '<script>alert("x")</script> & ‮ 😀 ' + "é" * 900
    set_ = succeed(made.call("admin", "PUT", "/announcement", {"text": text}), "group")["group"]
    shown = set_["announcement"]
    assert shown["text"] == text  # kept as sent: markup is text
    assert shown["set_by"] == {
        "id": made.id("admin"),
        "name": made.people["admin"]["name"],
        "avatar_url": None,
    }
    assert shown["set_at"].endswith("Z")
    assert set_["state_version"] == start + 1
    listed = succeed(made.api.get("/groups", headers=made.headers("member")), "groups", "next")
    summary = next(g for g in listed["groups"] if g["id"] == made.group_id)
    assert summary["announcement"] == shown
    cleared = succeed(made.call("owner", "DELETE", "/announcement"), "group")["group"]
    assert cleared["announcement"] is None and cleared["state_version"] == start + 2
    again = succeed(made.call("owner", "DELETE", "/announcement"), "group")["group"]
    assert again["state_version"] == start + 2  # nothing to take down: nothing changed


@pytest.mark.parametrize(
    "text",
    ["", "x" * 1001, "nul \x00 inside", "lone \ud800 surrogate"],
    ids=["empty", "too-long", "nul", "lone-surrogate"],
)
def test_a_bad_announcement_is_refused_and_changes_nothing(api, users, text):
    """An empty, oversized (over 1000 characters), NUL-holding or lone-surrogate announcement
    is 400 (1001), and the group stays as it was."""
    made = cast(api, users)
    before = made.view()
    answer = made.api.put(
        f"/groups/{made.group_id}/announcement",
        content=_json_text({"text": text}),
        headers={**made.headers("owner"), "Content-Type": "application/json"},
    )
    refused(answer, INVALID_REQUEST)
    assert made.view() == before


def _json_text(value) -> bytes:
    """JSON with lone surrogates escaped as JSON allows (httpx's encoder would refuse them)."""
    import json

    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("path", "method", "answer"),
    [
        ("/admins/{self}", "PUT", NOT_YOURSELF),
        ("/admins/{outsider}", "PUT", MEMBER_NOT_FOUND),
        ("/admins/999999999", "PUT", MEMBER_NOT_FOUND),
        ("/admins/{member}", "DELETE", NOT_AN_ADMIN),
        ("/admins/{self}", "DELETE", NOT_AN_ADMIN),
        ("/admins/{outsider}", "DELETE", MEMBER_NOT_FOUND),
        ("/members/{outsider}", "DELETE", MEMBER_NOT_FOUND),
    ],
)
def test_roles_for_unknown_people_or_oneself_are_refused(api, users, path, method, answer):
    """The owner appointing themselves (7002), someone not in the group (3005), dismissing a
    member who is no admin or themselves (3008): refused, nothing changed."""
    made = cast(api, users)
    before = made.view()
    ids = {"self": made.id("owner"), "outsider": made.id("outsider"), "member": made.id("member")}
    refused(made.call("owner", method, path.format(**ids)), answer)
    assert made.view() == before


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"user_id": "self"}, NOT_YOURSELF),
        ({"user_id": "outsider"}, MEMBER_NOT_FOUND),
        ({"user_id": 0}, INVALID_REQUEST),
        ({}, INVALID_REQUEST),
        ({"user_id": "target", "and": 1}, INVALID_REQUEST),
    ],
    ids=["self", "outsider", "zero", "empty", "extra-field"],
)
def test_a_transfer_to_no_other_member_is_refused(api, users, body, answer):
    made = cast(api, users)
    before = made.view()
    names = {"self": made.id("owner"), "outsider": made.id("outsider"), "target": made.id("target")}
    body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    refused(made.call("owner", "POST", "/transfer", body), answer)
    assert made.view() == before


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"join_approval": "yes"}, {"owner_id": 1}])
def test_an_update_without_a_valid_change_is_refused(api, users, body):
    made = cast(api, users)
    before = made.view()
    refused(made.call("owner", "PATCH", "", body), INVALID_REQUEST)
    assert made.view() == before


def test_a_transfer_makes_the_member_owner_and_the_owner_a_plain_member(api, users):
    """POST /groups/{id}/transfer: the member named is the owner (and no longer among the
    admins), the old owner a plain member who may then leave; the new owner runs the
    group."""
    made = cast(api, users)
    answer = made.call("owner", "POST", "/transfer", {"user_id": made.id("admin")})
    view = succeed(answer, "group")["group"]
    assert view["owner_id"] == made.id("admin") and view["role"] == "member"
    assert view["admin_ids"] == [made.id("admin2")]
    refused(made.call("owner", "PUT", f"/admins/{made.id('target')}"), OWNER_ONLY)
    succeed(made.call("admin", "PUT", f"/admins/{made.id('target')}"), "group")
    succeed(made.call("owner", "DELETE", f"/members/{made.id('owner')}"))
    assert made.api.get(f"/groups/{made.group_id}", headers=made.headers("admin")).json()["group"][
        "owner_id"
    ] == made.id("admin")


def test_the_owner_leaving_passes_the_group_to_the_longest_standing_admin(api, users):
    """The owner leaves: the admin appointed from the earliest member takes over, even when
    plain members joined before them."""
    made = cast(api, users)
    succeed(made.call("owner", "DELETE", f"/admins/{made.id('admin')}"), "group")
    # admin2 is now the only admin; `admin`, `member` and `target` joined no later.
    succeed(made.call("owner", "DELETE", f"/members/{made.id('owner')}"))
    view = made.api.get(f"/groups/{made.group_id}", headers=made.headers("member"))
    shown = succeed(view, "group")["group"]
    assert shown["owner_id"] == made.id("admin2")
    assert shown["admin_ids"] == []


def test_without_admins_the_owner_leaving_passes_the_group_to_the_longest_standing_member(
    api, users
):
    made = cast(api, users)
    for who in ("admin", "admin2"):
        succeed(made.call(who, "DELETE", f"/admins/{made.id(who)}"), "group")  # stepping down
    succeed(made.call("owner", "DELETE", f"/members/{made.id('owner')}"))
    shown = succeed(
        made.api.get(f"/groups/{made.group_id}", headers=made.headers("member")), "group"
    )["group"]
    assert shown["owner_id"] == made.id("admin")  # the first added after the owner


def test_admins_remove_plain_members_and_recall_any_message(api, users):
    made = cast(api, users)
    recalled = made.call("admin", "DELETE", f"/messages/{made.message_seq}")
    assert succeed(recalled, "message")["message"]["recalled"]["by"]["id"] == made.id("admin")
    succeed(made.call("admin", "DELETE", f"/members/{made.id('target')}"))
    members = {m["id"] for m in made.view()["members"]}
    assert made.id("target") not in members


def test_at_most_fifty_admins(api, users):
    """Appointing a 51st admin is 409 (3009); appointing an admin again changes nothing."""
    made = cast(api, users)
    owner = made.headers("owner")
    for _ in range(48):  # admin and admin2 are two already
        newcomer = users.register()
        added = api.post(
            f"/groups/{made.group_id}/members", json={"name": newcomer["name"]}, headers=owner
        )
        succeed(added, "group")
        succeed(made.call("owner", "PUT", f"/admins/{newcomer['user']['id']}"), "group")
    before = made.view()
    assert len(before["admin_ids"]) == 50
    again = succeed(made.call("owner", "PUT", f"/admins/{made.id('admin')}"), "group")["group"]
    assert again == before
    refused(made.call("owner", "PUT", f"/admins/{made.id('target')}"), TOO_MANY_ADMINS)
    assert made.view() == before


def test_role_operations_on_a_direct_chat_are_409(api, users):
    """A direct chat has no owner, admins, announcement or join requests: each role
    operation is 409 (3006)."""
    alice, bob = users.register(), users.register()
    asked = api.post(
        "/contacts/requests", json={"name": bob["name"]}, headers=bearer(alice["token"])
    )
    request_id = succeed(asked, "request", status=201)["request"]["id"]
    succeed(
        api.post(f"/contacts/requests/{request_id}/accept", headers=bearer(bob["token"])), "contact"
    )
    opened = api.put(f"/direct/{bob['user']['id']}", headers=bearer(alice["token"]))
    chat = succeed(opened, "group", status=201)["group"]
    assert (chat["role"], chat["admin_ids"], chat["announcement"]) == ("member", [], None)
    other = bob["user"]["id"]
    for method, path, body in [
        ("PATCH", "", {"join_approval": True}),
        ("DELETE", "", None),
        ("PUT", f"/admins/{other}", None),
        ("DELETE", f"/admins/{other}", None),
        ("POST", "/transfer", {"user_id": other}),
        ("PUT", "/announcement", {"text": "hi"}),
        ("DELETE", "/announcement", None),
        ("GET", "/join_requests", None),
        ("POST", "/join_requests/1/approve", None),
        ("POST", "/join_requests/1/decline", None),
    ]:
        options = {"json": body} if body is not None else {}
        answer = api.request(
            method, f"/groups/{chat['id']}{path}", headers=bearer(alice["token"]), **options
        )
        refused(answer, DIRECT_CHAT)


# --- Join approval ---------------------------------------------------------------------------


def test_with_approval_a_member_s_add_waits_for_an_admin_who_approves_it(api, users):
    """addMember by a plain member with join approval on: 202 with the request, the person
    is not a member yet; it is listed for the admins and its maker; approving makes them a
    member, and the request is gone."""
    made = cast(api, users, approval=True)
    newcomer = users.register()
    asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
    request = succeed(asked, "request", status=202)["request"]
    assert request["user"]["id"] == newcomer["user"]["id"]
    assert request["added_by"]["id"] == made.id("member")
    assert (request["group_id"], request["group_name"]) == (made.group_id, "Roles")
    assert newcomer["user"]["id"] not in {m["id"] for m in made.view()["members"]}
    for who in ("owner", "admin", "member"):
        listed = succeed(made.call(who, "GET", "/join_requests"), "requests", "next")
        assert listed["requests"] == [request]
    # A plain member sees only their own requests.
    mine = succeed(made.call("target", "GET", "/join_requests"), "requests", "next")
    assert mine["requests"] == []
    refused(
        made.call("target", "POST", "/members", {"name": newcomer["name"]}), JOIN_REQUEST_PENDING
    )

    approved = made.call("admin", "POST", f"/join_requests/{request['id']}/approve")
    view = succeed(approved, "group")["group"]
    assert newcomer["user"]["id"] in {m["id"] for m in view["members"]}
    assert (
        succeed(made.call("owner", "GET", "/join_requests"), "requests", "next")["requests"] == []
    )
    refused(
        made.call("owner", "POST", f"/join_requests/{request['id']}/approve"),
        JOIN_REQUEST_NOT_FOUND,
    )


def test_with_approval_admins_add_at_once_and_settle_a_pending_request(api, users):
    """An admin's add works at once with approval on, and a request pending for that person
    is gone (approved)."""
    made = cast(api, users, approval=True)
    newcomer = users.register()
    succeed(
        made.call("member", "POST", "/members", {"name": newcomer["name"]}), "request", status=202
    )
    succeed(made.call("admin", "POST", "/members", {"name": newcomer["name"]}), "group")
    assert (
        succeed(made.call("owner", "GET", "/join_requests"), "requests", "next")["requests"] == []
    )
    refused(made.call("member", "POST", "/members", {"name": newcomer["name"]}), ALREADY_A_MEMBER)


def test_a_declined_request_adds_no_one(api, users):
    made = cast(api, users, approval=True)
    newcomer = users.register()
    asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
    request_id = succeed(asked, "request", status=202)["request"]["id"]
    succeed(made.call("owner", "POST", f"/join_requests/{request_id}/decline"))
    assert newcomer["user"]["id"] not in {m["id"] for m in made.view()["members"]}
    refused(
        made.call("owner", "POST", f"/join_requests/{request_id}/approve"), JOIN_REQUEST_NOT_FOUND
    )


def test_its_maker_or_the_person_added_withdraws_a_request_and_no_one_else(api, users):
    """DELETE /groups/{id}/join_requests/{rid}: its maker may, and the person it would add
    (not a member); another member is 403 (7012), an outsider 404 (3010)."""
    made = cast(api, users, approval=True)
    newcomer = users.register()
    asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
    request_id = succeed(asked, "request", status=202)["request"]["id"]
    path = f"/groups/{made.group_id}/join_requests/{request_id}"
    error(api.delete(path, headers=made.headers("admin")), *REQUEST_NOT_YOURS[:2])
    refused(api.delete(path, headers=made.headers("outsider")), JOIN_REQUEST_NOT_FOUND)
    succeed(api.delete(path, headers=bearer(newcomer["token"])))
    refused(api.delete(path, headers=made.headers("member")), JOIN_REQUEST_NOT_FOUND)

    asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
    request_id = succeed(asked, "request", status=202)["request"]["id"]
    succeed(made.call("member", "DELETE", f"/join_requests/{request_id}"))
    assert (
        succeed(made.call("owner", "GET", "/join_requests"), "requests", "next")["requests"] == []
    )


def test_a_leaver_s_requests_lapse_and_requests_stay_when_approval_goes_off(api, users):
    """The requests a member made lapse when they leave; switching approval off keeps the
    others pending for an admin, and adds work at once again."""
    made = cast(api, users, approval=True)
    first, second = users.register(), users.register()
    succeed(made.call("member", "POST", "/members", {"name": first["name"]}), "request", status=202)
    kept = made.call("target", "POST", "/members", {"name": second["name"]})
    kept = succeed(kept, "request", status=202)["request"]
    succeed(made.call("member", "DELETE", f"/members/{made.id('member')}"))
    assert succeed(made.call("owner", "GET", "/join_requests"), "requests", "next")["requests"] == [
        kept
    ]

    view = succeed(made.call("admin", "PATCH", "", {"join_approval": False}), "group")["group"]
    assert view["join_approval"] is False
    assert succeed(made.call("owner", "GET", "/join_requests"), "requests", "next")["requests"] == [
        kept
    ]
    succeed(made.call("target", "POST", "/members", {"name": first["name"]}), "group")


def test_join_requests_page_oldest_first(api, users):
    made = cast(api, users, approval=True)
    made_ids = []
    for _ in range(5):
        newcomer = users.register()
        asked = made.call("member", "POST", "/members", {"name": newcomer["name"]})
        made_ids.append(succeed(asked, "request", status=202)["request"]["id"])
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = succeed(made.call("admin", "GET", f"/join_requests{query}"), "requests", "next")
        seen += [r["id"] for r in page["requests"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == made_ids


def test_disbanding_deletes_the_group_for_everyone(api, users):
    made = cast(api, users)
    succeed(made.call("owner", "DELETE", ""))
    for who in ("owner", "admin", "member"):
        gone = api.get(f"/groups/{made.group_id}", headers=made.headers(who))
        refused(gone, (404, 3001, "Group not found"))


def test_an_announcement_outlives_its_author_s_account(api, users):
    """An admin sets the announcement, leaves the group and cancels their account: the
    announcement stays, signed by a deleted user."""
    made = cast(api, users)
    text = "Still here"
    succeed(made.call("admin", "PUT", "/announcement", {"text": text}), "group")
    succeed(made.call("admin", "DELETE", f"/members/{made.id('admin')}"))
    cancelled = api.post(
        "/user/cancel_account",
        json={"password": made.people["admin"]["password"]},
        headers=made.headers("admin"),
    )
    succeed(cancelled)
    shown = made.view()["announcement"]
    assert shown["text"] == text
    assert shown["set_by"] == {"id": None, "name": "deleted user", "avatar_url": None}
