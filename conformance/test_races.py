"""Requests racing for the same rows get the answers they would get one after the other.

Spec: the descriptions of DELETE /groups/{group_id}/members/{user_id} (the owner is always a
member: when the owner leaves, the longest-standing member becomes the owner; a group whose
last member leaves is deleted), of the account operations, and info "Decisions the sources
left open" (at most 10 failed logins per account per 15 minutes). Whatever the interleaving,
every answer is one the contract lists for that operation, never a 5xx.

Each test sends its requests from several threads at once, each with its own connection,
released together by a barrier; against a live server with several workers they reach
different processes.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from conformance import media
from conformance.expect import WRONG_PASSWORD, refused, succeed
from conformance.target import PASSWORD, bearer, client_address, unique_name

THREADS = 8


def at_once(target, calls: list) -> list:
    """Run each `call(client)` from its own thread and connection, all released together;
    their responses in the order of `calls`."""
    start = threading.Barrier(len(calls), timeout=120)

    def run(call):
        with target.client() as client:
            start.wait()
            return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def no_server_error(responses) -> Counter:
    statuses = Counter(response.status_code for response in responses)
    failures = [r.text for r in responses if r.status_code >= 500]
    assert not failures, f"{statuses}: {failures[:3]}"
    return statuses


def make_group(api, users, size: int) -> tuple[int, list[dict]]:
    """A group of `size` members, the first its owner; returns its id and the members, each
    a dict with `token` and `id`."""
    members = [users.register() for _ in range(size)]
    owner = bearer(members[0]["token"])
    group = api.post("/groups", json={"name": "Racers"}, headers=owner).json()["group"]
    for member in members[1:]:
        added = api.post(
            f"/groups/{group['id']}/members", json={"name": member["name"]}, headers=owner
        )
        succeed(added, "group")
    return group["id"], [{"token": m["token"], "id": m["user"]["id"]} for m in members]


def leave(group_id: int, member: dict):
    return lambda client: client.delete(
        f"/groups/{group_id}/members/{member['id']}", headers=bearer(member["token"])
    )


def test_every_member_leaving_at_once_deletes_the_group(target, api, users):
    """DELETE /api/groups/{group_id}/members/{own id} by every member at once, owner included:
    each is 200, and then the group is gone (404, 3001 to its former members), whose
    members can all cancel their accounts (200)."""
    for _ in range(3):
        group_id, members = make_group(api, users, THREADS)

        responses = at_once(target, [leave(group_id, member) for member in members])

        assert no_server_error(responses) == {200: THREADS}
        for member in members:
            gone = api.get(f"/groups/{group_id}", headers=bearer(member["token"]))
            refused(gone, (404, 3001, "Group not found"))
        for member in members:
            cancelled = api.post(
                "/user/cancel_account", json={"password": PASSWORD}, headers=bearer(member["token"])
            )
            succeed(cancelled)


def test_the_owner_and_others_leaving_at_once_leave_an_owner_who_is_a_member(target, api, users):
    """DELETE /api/groups/{group_id}/members/{own id} by the owner and all members but two,
    at once: each is 200, and the group's owner is one of the two who stayed."""
    for _ in range(3):
        group_id, members = make_group(api, users, THREADS + 2)
        leaving, staying = members[:THREADS], members[THREADS:]

        responses = at_once(target, [leave(group_id, member) for member in leaving])

        assert no_server_error(responses) == {200: THREADS}
        group = succeed(
            api.get(f"/groups/{group_id}", headers=bearer(staying[0]["token"])), "group"
        )
        member_ids = {member["id"] for member in group["group"]["members"]}
        assert member_ids == {member["id"] for member in staying}
        assert group["group"]["owner_id"] in member_ids


def test_members_cancelling_their_accounts_at_once_leave_no_group_behind(target, api, users):
    """POST /api/user/cancel_account by every member of a group at once: each is 200 and the
    group is gone with them; a user who was never in it sees 404 as for any missing group."""
    group_id, members = make_group(api, users, THREADS)

    responses = at_once(
        target,
        [
            lambda client, m=member: client.post(
                "/user/cancel_account", json={"password": PASSWORD}, headers=bearer(m["token"])
            )
            for member in members
        ],
    )

    assert no_server_error(responses) == {200: THREADS}
    stranger = bearer(users.token())
    refused(api.get(f"/groups/{group_id}", headers=stranger), (404, 3001, "Group not found"))


def test_the_owner_cancelling_while_members_leave_keeps_the_owner_a_member(target, api, users):
    """The owner cancels the account while all other members but one leave, at once: each
    answer is 200, and the one who stayed owns the group."""
    group_id, members = make_group(api, users, THREADS + 1)
    owner, leaving, staying = members[0], members[1:THREADS], members[THREADS]

    calls = [
        lambda client: client.post(
            "/user/cancel_account", json={"password": PASSWORD}, headers=bearer(owner["token"])
        )
    ] + [leave(group_id, member) for member in leaving]
    responses = at_once(target, calls)

    assert no_server_error(responses) == {200: THREADS}
    group = succeed(api.get(f"/groups/{group_id}", headers=bearer(staying["token"])), "group")
    assert [member["id"] for member in group["group"]["members"]] == [staying["id"]]
    assert group["group"]["owner_id"] == staying["id"]


def test_change_name_from_two_sessions_at_once_always_answers(target, api, users):
    """POST /api/user/change_name, 40 times at once by one user from two sessions, each to a
    free name: every answer is 200, and the name is one of those sent."""
    account = users.register()
    tokens = [account["token"], users.login(account["name"])]
    names = [unique_name("r") for _ in range(40)]

    def rename(index):
        return lambda client: client.post(
            "/user/change_name",
            json={"new_name": names[index]},
            headers=bearer(tokens[index % 2]),
        )

    responses = []
    for batch in range(0, 40, THREADS):
        responses += at_once(target, [rename(index) for index in range(batch, batch + THREADS)])

    assert no_server_error(responses) == {200: 40}
    profile = succeed(api.get("/user/me", headers=bearer(tokens[0])), "user")
    assert profile["user"]["name"] in names


def test_change_image_at_once_always_answers(target, api, users):
    """POST /api/user/change_image, 8 times at once by one user: every answer is 200, or 429
    for the uploads past those one account may have going at once (4009); the avatar is one
    of those accepted."""
    files = {"avatar": ("me.png", media.PNG, "image/png")}
    for _ in range(3):
        token = users.token()

        responses = at_once(
            target,
            [
                lambda client, t=token: client.post(
                    "/user/change_image", files=files, headers=bearer(t)
                )
                for _ in range(THREADS)
            ],
        )

        statuses = no_server_error(responses)
        assert set(statuses) <= {200, 429} and statuses[200] >= 1, statuses
        assert all(r.json()["code"] == 4009 for r in responses if r.status_code == 429)
        profile = succeed(api.get("/user/me", headers=bearer(token)), "user")
        accepted = {r.json()["url"] for r in responses if r.status_code == 200}
        assert profile["user"]["avatar_url"] in accepted


def test_change_password_from_two_sessions_at_once_ends_the_losers_sessions(target, api, users):
    """POST /api/user/change_password at once from two sessions of one user (4 each, each to
    another new password): answers are 200 or 401 (the session was ended by a change that
    came first), never a 5xx; the last password set signs in."""
    account = users.register()
    tokens = [account["token"], users.login(account["name"])]
    passwords = [f"new password {index}" for index in range(THREADS)]

    responses = at_once(
        target,
        [
            lambda client, i=index: client.post(
                "/user/change_password",
                json={"old_password": PASSWORD, "new_password": passwords[i]},
                headers=bearer(tokens[i % 2]),
            )
            for index in range(THREADS)
        ],
    )

    statuses = no_server_error(responses)
    assert set(statuses) <= {200, 401, 400}, statuses
    assert statuses[200] >= 1

    def login(password):
        return api.post("/user/login", json={"name": account["name"], "password": password})

    # Every wrong password counts towards the lock (10 failures): the losers answered 400
    # counted already, so trying all eight passwords in order could lock the account (429)
    # before the right one came. The passwords answered 200 go first; one of them is set.
    won = [passwords[i] for i, response in enumerate(responses) if response.status_code == 200]
    lost = [passwords[i] for i, response in enumerate(responses) if response.status_code != 200]
    signed_in = [login(password).status_code for password in won]
    assert signed_in.count(200) == 1, signed_in
    if lost:
        refused(login(lost[0]), WRONG_PASSWORD)


def test_logout_twice_at_once_ends_the_session(target, api, users):
    """POST /api/user/logout twice at once with one token: 200 or 401 each, and the token is
    refused after."""
    for _ in range(3):
        token = users.token()

        responses = at_once(
            target, [lambda client, t=token: client.post("/user/logout", headers=bearer(t))] * 2
        )

        statuses = no_server_error(responses)
        assert set(statuses) <= {200, 401} and statuses[200] >= 1, statuses
        refused(api.get("/user/me", headers=bearer(token)), (401, 1004, None))


def test_adding_one_user_from_several_members_at_once_adds_them_once(target, api, users):
    """POST /api/groups/{group_id}/members naming one user, by 8 members at once: one 200,
    the others 409 Already a member."""
    group_id, members = make_group(api, users, THREADS)
    newcomer = users.register()["name"]

    responses = at_once(
        target,
        [
            lambda client, m=member: client.post(
                f"/groups/{group_id}/members", json={"name": newcomer}, headers=bearer(m["token"])
            )
            for member in members
        ],
    )

    assert no_server_error(responses) == {200: 1, 409: THREADS - 1}


def test_the_owner_removing_a_member_who_leaves_at_once(target, api, users):
    """DELETE /api/groups/{group_id}/members/{user_id} for one member, by the owner (4 times)
    and by the member (4 times), at once: one 200, the rest 404 Member not found or 403 Not
    a member; the group keeps its owner."""
    group_id, members = make_group(api, users, 3)
    owner, member = members[0], members[1]
    url = f"/groups/{group_id}/members/{member['id']}"

    responses = at_once(
        target,
        [lambda client: client.delete(url, headers=bearer(owner["token"]))] * 4
        + [lambda client: client.delete(url, headers=bearer(member["token"]))] * 4,
    )

    statuses = no_server_error(responses)
    assert statuses[200] == 1 and set(statuses) <= {200, 403, 404}, statuses
    group = succeed(api.get(f"/groups/{group_id}", headers=bearer(owner["token"])), "group")
    assert group["group"]["owner_id"] == owner["id"]
    assert {m["id"] for m in group["group"]["members"]} == {owner["id"], members[2]["id"]}


def test_thirty_wrong_passwords_at_once_get_at_most_ten_wrong_password_answers(target, api, users):
    """POST /api/user/login with a wrong password 30 times at once from one client address:
    at most 10 answers say Wrong Password (the limit per account and address), every other
    is 429; then the right password from there is 429 too."""
    account = users.register()
    address = {"X-Forwarded-For": client_address()}

    responses = at_once(
        target,
        [
            lambda client: client.post(
                "/user/login",
                json={"name": account["name"], "password": "not the password"},
                headers=address,
            )
        ]
        * 30,
    )

    statuses = no_server_error(responses)
    assert set(statuses) <= {400, 429}, statuses
    assert statuses[400] <= 10, statuses
    locked = api.post(
        "/user/login", json={"name": account["name"], "password": PASSWORD}, headers=address
    )
    assert locked.status_code == 429
