"""A group has at most `IM_MAX_GROUP_MEMBERS` members: whoever would join past it is refused.

Spec: `ErrorCode` 3012, the descriptions of addMember and approveJoinRequest (409, 3012) and
`GroupDetail.members` (`maxItems`). Runs on an app of its own whose cap is 3, built
in-process: a live server's cap is its own (500 by default, too many accounts to make for a
test), so these are skipped against one.
"""

from __future__ import annotations

import pytest

from conformance.expect import refused, succeed
from conformance.target import Users, bearer, in_process
from conformance.test_races import at_once, no_server_error
from conformance.test_role_races import calling, group_of, view

CAP = 3
GROUP_FULL = (409, 3012, f"A group has at most {CAP} members")
ROUNDS = 3


@pytest.fixture(scope="module")
def capped(target):
    """An in-process app whose groups hold at most CAP members."""
    if target.is_live:
        pytest.skip("needs an app of its own with a small member cap (in-process only)")
    return in_process(max_group_members=CAP)


@pytest.fixture
def api(capped):
    capped.make_current()
    with capped.client() as client:
        yield client


@pytest.fixture
def users(api) -> Users:
    return Users(api)


def add(api, group_id: int, by: dict, newcomer: dict):
    return api.post(
        f"/groups/{group_id}/members", json={"name": newcomer["name"]}, headers=bearer(by["token"])
    )


def member_ids(api, group_id: int, member: dict) -> list[int]:
    members = view(api, group_id, member)["members"]
    assert len(members) <= CAP, members
    return [m["id"] for m in members]


def test_add_member_to_a_full_group_is_refused_with_3012(api, users):
    """POST /groups/{id}/members: once the group has CAP members, the owner's add of another
    user is 409 (3012) and the member list stays at CAP, without them."""
    group_id, members = group_of(api, users, CAP)
    newcomer = users.register()

    refused(add(api, group_id, members[0], newcomer), GROUP_FULL)

    assert member_ids(api, group_id, members[0]) == [m["user"]["id"] for m in members]
    outside = api.get(f"/groups/{group_id}", headers=bearer(newcomer["token"]))
    refused(outside, (403, 3002, "Not a member of this group"))


def test_add_member_after_a_member_leaves_a_full_group_succeeds(api, users):
    """removeMember frees a place: the add refused at the cap works once someone left."""
    group_id, (owner, leaving, _) = group_of(api, users, CAP)
    newcomer = users.register()
    refused(add(api, group_id, owner, newcomer), GROUP_FULL)
    left = api.delete(
        f"/groups/{group_id}/members/{leaving['user']['id']}", headers=bearer(leaving["token"])
    )
    succeed(left)

    succeed(add(api, group_id, owner, newcomer), "group")

    assert newcomer["user"]["id"] in member_ids(api, group_id, owner)


def test_add_member_as_a_join_request_to_a_full_group_is_refused(api, users):
    """With join approval on, a plain member's add to a full group is 409 (3012) too, not a
    request an admin could never approve: none is pending afterwards."""
    group_id, (owner, member, _) = group_of(api, users, CAP, approval=True)

    refused(add(api, group_id, member, users.register()), GROUP_FULL)

    pending = api.get(f"/groups/{group_id}/join_requests", headers=bearer(owner["token"]))
    assert succeed(pending, "requests", "next")["requests"] == []


def test_approve_join_request_when_the_group_filled_meanwhile_is_refused(api, users):
    """approveJoinRequest: a request made with a place free, approved after the group filled
    up, is 409 (3012) and stays pending, for an approval once a place is free again."""
    group_id, (owner, member) = group_of(api, users, CAP - 1, approval=True)
    asking = users.register()
    asked = add(api, group_id, member, asking)
    request_id = succeed(asked, "request", status=202)["request"]["id"]
    last = users.register()
    succeed(add(api, group_id, owner, last), "group")  # the last place
    approve = f"/groups/{group_id}/join_requests/{request_id}/approve"

    refused(api.post(approve, headers=bearer(owner["token"])), GROUP_FULL)

    assert asking["user"]["id"] not in member_ids(api, group_id, owner)
    pending = api.get(f"/groups/{group_id}/join_requests", headers=bearer(owner["token"]))
    assert [r["id"] for r in succeed(pending, "requests", "next")["requests"]] == [request_id]
    # The request's maker stays (their leaving would withdraw it): the last one in leaves.
    left = api.delete(
        f"/groups/{group_id}/members/{last['user']['id']}", headers=bearer(last["token"])
    )
    succeed(left)
    succeed(api.post(approve, headers=bearer(owner["token"])), "group")
    assert asking["user"]["id"] in member_ids(api, group_id, owner)


def test_two_adds_at_once_with_one_place_left_let_exactly_one_in(capped, api, users):
    """Two admins each add someone at the same moment into the group's last place: one is
    200, the other 409 (3012), and the group has CAP members, the winner's among them."""
    for _ in range(ROUNDS):
        group_id, (owner, admin) = group_of(api, users, CAP - 1, admins=1)
        one, other = users.register(), users.register()
        calls = [
            calling("POST", f"/groups/{group_id}/members", owner, {"name": one["name"]}),
            calling("POST", f"/groups/{group_id}/members", admin, {"name": other["name"]}),
        ]

        answers = at_once(capped, calls)

        assert sorted(no_server_error(answers).elements()) == [200, 409]
        loser = next(answer for answer in answers if answer.status_code == 409)
        refused(loser, GROUP_FULL)
        ids = member_ids(api, group_id, owner)
        assert len(ids) == CAP
        winner = one if answers[0].status_code == 200 else other
        assert winner["user"]["id"] in ids


def test_an_add_racing_an_approval_with_one_place_left_lets_one_in(capped, api, users):
    """The owner adds someone and approves a plain member's request at the same moment, with
    one place left: one of them is 200, the other 409 (3012); the group ends with CAP
    members."""
    for _ in range(ROUNDS):
        group_id, (owner, member) = group_of(api, users, CAP - 1, approval=True)
        asked = add(api, group_id, member, users.register())
        request_id = succeed(asked, "request", status=202)["request"]["id"]
        newcomer = users.register()
        add_one = calling("POST", f"/groups/{group_id}/members", owner, {"name": newcomer["name"]})
        approve = calling("POST", f"/groups/{group_id}/join_requests/{request_id}/approve", owner)

        answers = at_once(capped, [add_one, approve])

        assert sorted(no_server_error(answers).elements()) == [200, 409]
        refused(next(a for a in answers if a.status_code == 409), GROUP_FULL)
        assert len(member_ids(api, group_id, owner)) == CAP
