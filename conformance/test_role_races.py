"""Role changes racing each other end in one consistent state, never a 5xx.

Spec: the descriptions of removeMember (an admin removes plain members only; the owner's
leave passes the group on), transferGroup (racing the owner's leave, one happens first: the
group always has an owner while it has members), approveJoinRequest and cancelJoinRequest
(of the two at once, one happens and the other is 404, 3010). Against a live server with
several workers, the requests reach different processes (see test_races).
"""

from __future__ import annotations

from conformance.expect import refused, succeed
from conformance.target import bearer
from conformance.test_races import at_once, no_server_error

ROUNDS = 3


def group_of(api, users, size: int, *, admins: int = 0, approval: bool = False):
    """A group of `size` members (the first its owner, the next `admins` its admins)."""
    members = [users.register() for _ in range(size)]
    owner = bearer(members[0]["token"])
    created = api.post("/groups", json={"name": "Role racers"}, headers=owner)
    group_id = succeed(created, "group", status=201)["group"]["id"]
    for member in members[1:]:
        added = api.post(
            f"/groups/{group_id}/members", json={"name": member["name"]}, headers=owner
        )
        succeed(added, "group")
    for member in members[1 : 1 + admins]:
        appointed = api.put(f"/groups/{group_id}/admins/{member['user']['id']}", headers=owner)
        succeed(appointed, "group")
    if approval:
        succeed(
            api.patch(f"/groups/{group_id}", json={"join_approval": True}, headers=owner), "group"
        )
    return group_id, members


def calling(method: str, path: str, who: dict, body: dict | None = None):
    """A call for `at_once`: `who` sends `method path` (with `body`) on the given client."""
    options = {"json": body} if body is not None else {}
    return lambda client: client.request(method, path, headers=bearer(who["token"]), **options)


def view(api, group_id: int, member: dict) -> dict:
    return succeed(api.get(f"/groups/{group_id}", headers=bearer(member["token"])), "group")[
        "group"
    ]


def test_two_admins_removing_each_other_are_both_refused(target, api, users):
    """Admins may not remove admins: both 403 (3003) however they interleave, and both stay
    admins."""
    for _ in range(ROUNDS):
        group_id, (owner, one, other) = group_of(api, users, 3, admins=2)

        calls = [
            calling("DELETE", f"/groups/{group_id}/members/{gone['user']['id']}", actor)
            for actor, gone in ((one, other), (other, one))
        ]

        answers = at_once(target, calls)

        assert no_server_error(answers) == {403: 2}
        for answer in answers:
            refused(answer, (403, 3003, None))
        shown = view(api, group_id, owner)
        assert shown["admin_ids"] == [one["user"]["id"], other["user"]["id"]]


def test_an_admin_removing_a_member_while_dismissed_ends_one_way_or_the_other(target, api, users):
    """The owner dismisses an admin who is removing a member at once: either the removal
    came first (the member is gone) or the dismissal did (403, the member stays); the
    admin is a plain member after both."""
    for _ in range(ROUNDS):
        group_id, (owner, admin, member) = group_of(api, users, 3, admins=1)
        dismiss = calling("DELETE", f"/groups/{group_id}/admins/{admin['user']['id']}", owner)
        remove = calling("DELETE", f"/groups/{group_id}/members/{member['user']['id']}", admin)

        dismissed, removed = at_once(target, [dismiss, remove])

        no_server_error([dismissed, removed])
        assert dismissed.status_code == 200, dismissed.text
        shown = view(api, group_id, owner)
        assert shown["admin_ids"] == []
        still_there = member["user"]["id"] in {m["id"] for m in shown["members"]}
        if removed.status_code == 200:
            assert not still_there
        else:
            refused(removed, (403, 3003, None))
            assert still_there


def test_a_transfer_racing_the_owner_s_leave_leaves_the_group_an_owner(target, api, users):
    """The owner transfers the group and leaves it at once: whichever comes first, the group
    has exactly one owner, a member, afterwards; the transfer either made the target owner
    or met an owner no longer a member (403, 3002)."""
    for _ in range(ROUNDS):
        group_id, (owner, first, chosen, last) = group_of(api, users, 4)
        transfer = calling(
            "POST", f"/groups/{group_id}/transfer", owner, {"user_id": chosen["user"]["id"]}
        )
        leave = calling("DELETE", f"/groups/{group_id}/members/{owner['user']['id']}", owner)

        transferred, left = at_once(target, [transfer, leave])

        no_server_error([transferred, left])
        assert left.status_code == 200, left.text
        shown = view(api, group_id, last)
        members = {m["id"] for m in shown["members"]}
        assert owner["user"]["id"] not in members
        assert shown["owner_id"] in members
        if transferred.status_code == 200:
            assert shown["owner_id"] == chosen["user"]["id"]
        else:
            refused(transferred, (403, 3002, "Not a member of this group"))
            assert shown["owner_id"] == first["user"]["id"]  # the longest-standing member


def test_an_approval_racing_the_request_s_withdrawal_happens_or_not(target, api, users):
    """An admin approves a join request while its maker withdraws it: one is 200 and the
    other 404 (3010); the person is a member exactly when the approval won."""
    for _ in range(ROUNDS):
        group_id, (owner, admin, member) = group_of(api, users, 3, admins=1, approval=True)
        newcomer = users.register()
        asked = api.post(
            f"/groups/{group_id}/members",
            json={"name": newcomer["name"]},
            headers=bearer(member["token"]),
        )
        request_id = succeed(asked, "request", status=202)["request"]["id"]
        path = f"/groups/{group_id}/join_requests/{request_id}"
        approve = calling("POST", f"{path}/approve", admin)
        cancel = calling("DELETE", path, member)

        approved, cancelled = at_once(target, [approve, cancel])

        assert sorted(no_server_error([approved, cancelled]).elements()) == [200, 404]
        loser = cancelled if approved.status_code == 200 else approved
        refused(loser, (404, 3010, "Join request not found"))
        members = {m["id"] for m in view(api, group_id, owner)["members"]}
        assert (newcomer["user"]["id"] in members) == (approved.status_code == 200)
        pending = api.get(f"/groups/{group_id}/join_requests", headers=bearer(owner["token"]))
        assert succeed(pending, "requests", "next")["requests"] == []
