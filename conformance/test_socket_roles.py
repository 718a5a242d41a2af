"""Group roles on the socket: group states live and on resume, join requests as notices.

Spec: asyncapi.yaml, info "Group states" (`group.updated`, `states` in `sync` and `ready`)
and "Join requests" (`join_request.created`, `join_request.removed`); openapi.yaml's role
operations. Every frame received is checked against asyncapi.yaml.
"""

from __future__ import annotations

import pytest

from conformance import socket_client
from conformance.socket_client import bearer


@pytest.fixture
def world():
    yield from socket_client.worlds()


def call(world, who: dict, method: str, path: str, body: dict | None = None, status: int = 200):
    options = {"json": body} if body is not None else {}
    answer = world.api.request(method, path, headers=bearer(who["token"]), **options)
    assert answer.status_code == status, answer.text
    return answer.json()


def version_of(world, group_id: int, who: dict) -> int:
    return call(world, who, "GET", f"/groups/{group_id}")["group"]["state_version"]


def test_role_and_announcement_changes_reach_every_member_live(world):
    """The owner appoints an admin, who sets the announcement: each member's socket that
    follows group states gets a `group.updated` per change, with the state then and
    consecutive versions; a socket that did not ask for states gets none."""
    owner, admin, member = world.account(), world.account(), world.account()
    group_id = world.group(owner, admin, member)
    start = version_of(world, group_id, owner)
    members_socket = world.live_socket(member, states={group_id: start})
    old_client = world.live_socket(member)

    call(world, owner, "PUT", f"/groups/{group_id}/admins/{admin['user']['id']}")
    appointed = members_socket.expect("group.updated")["group"]
    assert appointed["admin_ids"] == [admin["user"]["id"]]
    assert appointed["state_version"] == start + 1

    text = "Meet at the station, 8:00 sharp."
    call(world, admin, "PUT", f"/groups/{group_id}/announcement", {"text": text})
    announced = members_socket.expect("group.updated")["group"]
    assert announced["announcement"]["text"] == text
    assert announced["announcement"]["set_by"]["id"] == admin["user"]["id"]
    assert announced["state_version"] == start + 2
    assert announced == {
        key: value
        for key, value in call(world, member, "GET", f"/groups/{group_id}")["group"].items()
        if key in announced
    }
    old_client.nothing_for()


def test_a_socket_that_resumes_gets_the_state_of_each_group_that_moved_on(world):
    """`sync` with `states`: a `group.updated` with the state now of each group whose version
    is past the client's, none for the others; `ready` gives every version."""
    owner, member = world.account(), world.account()
    moved, still = world.group(owner, member), world.group(owner, member)
    seen = {g: version_of(world, g, member) for g in (moved, still)}
    call(world, owner, "PATCH", f"/groups/{moved}", {"name": "Renamed while away"})
    call(world, owner, "PATCH", f"/groups/{moved}", {"join_approval": True})

    socket = world.socket(member)
    replayed, ready = socket.sync({}, states=seen)

    assert [f["type"] for f in replayed] == ["group.updated"]
    state = replayed[0]["group"]
    assert (state["id"], state["name"], state["join_approval"]) == (
        moved,
        "Renamed while away",
        True,
    )
    assert state["state_version"] == seen[moved] + 2
    assert ready["states"] == {str(moved): seen[moved] + 2, str(still): seen[still]}
    # Without `states`, `ready` says nothing of them (a client of the contract before roles).
    _, plain_ready = world.socket(member).sync({})
    assert "states" not in plain_ready


def test_the_owner_leaving_tells_the_members_who_owns_the_group_now(world):
    owner, admin, member = world.account(), world.account(), world.account()
    group_id = world.group(owner, member, admin)
    call(world, owner, "PUT", f"/groups/{group_id}/admins/{admin['user']['id']}")
    socket = world.live_socket(member, states={})

    world.remove(group_id, owner, owner)

    assert socket.expect("member.removed")["user_id"] == owner["user"]["id"]
    state = socket.expect("group.updated")["group"]
    assert (state["owner_id"], state["admin_ids"]) == (admin["user"]["id"], [])


def test_a_join_request_reaches_everyone_it_concerns_as_notices(world):
    """With approval on, a member's add: its maker, the person added, the owner and the admins
    get `join_request.created`; the approval `join_request.removed` (approved), and the new
    member's socket `member.added` and then the group's messages."""
    owner, admin, member, newcomer = (world.account() for _ in range(4))
    group_id = world.group(owner, admin, member)
    call(world, owner, "PUT", f"/groups/{group_id}/admins/{admin['user']['id']}")
    call(world, owner, "PATCH", f"/groups/{group_id}", {"join_approval": True})
    sockets = {
        who: world.live_socket(account, notices=0)
        for who, account in (("owner", owner), ("admin", admin), ("member", member))
    }
    sockets["newcomer"] = world.live_socket(newcomer, notices=0)

    asked = call(
        world, member, "POST", f"/groups/{group_id}/members", {"name": newcomer["name"]}, 202
    )
    request = asked["request"]
    for socket in sockets.values():
        created = socket.expect("join_request.created")
        assert created["request"] == request

    call(world, admin, "POST", f"/groups/{group_id}/join_requests/{request['id']}/approve")
    removed = {"request_id": request["id"], "group_id": group_id, "reason": "approved"}
    newcomers = sockets.pop("newcomer")
    frames = [newcomers.recv(), newcomers.recv()]
    by_type = {f["type"]: f for f in frames}
    assert by_type["member.added"]["user"]["id"] == newcomer["user"]["id"]
    assert {k: by_type["join_request.removed"][k] for k in removed} == removed
    for socket in sockets.values():
        seen = [socket.recv(), socket.recv()]
        kinds = sorted(f["type"] for f in seen)
        assert kinds == ["join_request.removed", "member.added"]
    message = world.say(group_id, owner, "welcome")
    assert newcomers.expect("message.created")["message"]["seq"] == message["seq"]


def test_join_request_notices_are_replayed_on_resume(world):
    owner, member, newcomer = world.account(), world.account(), world.account()
    group_id = world.group(owner, member)
    call(world, owner, "PATCH", f"/groups/{group_id}", {"join_approval": True})
    asked = call(
        world, member, "POST", f"/groups/{group_id}/members", {"name": newcomer["name"]}, 202
    )
    call(world, owner, "POST", f"/groups/{group_id}/join_requests/{asked['request']['id']}/decline")

    replayed, ready = world.socket(newcomer).sync({}, notices=0)

    assert [f["type"] for f in replayed] == ["join_request.created", "join_request.removed"]
    assert replayed[1]["reason"] == "declined"
    assert ready["notices"] == 2
