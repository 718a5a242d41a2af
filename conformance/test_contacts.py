"""Finding people, contact requests, contacts and blocks, from outside.

Spec: GET /users (searchUsers), POST and GET /contacts/requests, POST
/contacts/requests/{request_id}/accept and /decline, DELETE /contacts/requests/{request_id},
GET /contacts, DELETE /contacts/{user_id}, PUT, DELETE and GET /blocks; rows 2003 and 7001 to
7010 of ErrorCode. Races go from several threads at once, each on its own connection;
against a live server with several workers they reach different processes.
"""

from __future__ import annotations

import pytest

from conformance.expect import USERNAME_NOT_FOUND, error, refused, succeed
from conformance.target import bearer, unique_name
from conformance.test_abuse_limits import refused_after, too_many
from conformance.test_races import at_once, no_server_error

MEMBER_KEYS = {"id", "name", "avatar_url"}
REQUEST_KEYS = {"id", "requester", "addressee", "note", "created_at"}


def ask(client, who: dict, name: str, **extra):
    return client.post(
        "/contacts/requests", json={"name": name, **extra}, headers=bearer(who["token"])
    )


def pending(client, who: dict, direction: str = "incoming") -> list[dict]:
    listed = client.get(
        "/contacts/requests", params={"direction": direction}, headers=bearer(who["token"])
    )
    return succeed(listed, "requests", "next")["requests"]


def contacts_of(client, who: dict) -> list[dict]:
    listed = client.get("/contacts", headers=bearer(who["token"]))
    return succeed(listed, "contacts", "next")["contacts"]


def befriend(client, one: dict, other: dict) -> dict:
    """Make the two contacts (request, then accept); `one`'s view of the contact."""
    made = succeed(ask(client, one, other["name"]), "request", status=201)["request"]
    accepted = client.post(
        f"/contacts/requests/{made['id']}/accept", headers=bearer(other["token"])
    )
    succeed(accepted, "contact")
    return next(c for c in contacts_of(client, one) if c["user"]["id"] == other["user"]["id"])


def test_search_finds_a_user_by_exact_name_or_prefix_with_public_fields_only(api, users):
    """GET /users?name= finds one user ignoring case; ?prefix= pages through names that
    start with it, by name; only id, name and avatar_url are shown."""
    stem = unique_name("s")[:12]
    found = [users.register(f"{stem}{n}") for n in range(3)]
    me = users.register()

    exact = api.get(
        "/users", params={"name": found[1]["name"].upper()}, headers=bearer(me["token"])
    )
    body = succeed(exact, "users", "next")
    assert body == {**body, "users": [{**_public(found[1])}], "next": None}

    seen, cursor = [], None
    while True:
        params = {"prefix": stem.upper(), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = succeed(
            api.get("/users", params=params, headers=bearer(me["token"])), "users", "next"
        )
        assert all(set(u) == MEMBER_KEYS for u in page["users"])
        seen += [u["name"] for u in page["users"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [u["name"] for u in found]


def _public(user: dict) -> dict:
    return {"id": user["user"]["id"], "name": user["name"], "avatar_url": None}


@pytest.mark.parametrize(
    "params", [{}, {"name": "alice", "prefix": "ali"}], ids=["neither", "both"]
)
def test_search_takes_one_of_name_and_prefix(api, users, params):
    """GET /users with neither or both of `name` and `prefix`: 400, 7010."""
    me = users.register()
    refused(
        api.get("/users", params=params, headers=bearer(me["token"])),
        (400, 7010, "Give name or prefix, one of them"),
    )


@pytest.mark.parametrize("prefix", ["ab", "a%c", "a_%", "x" * 17])
def test_search_refuses_a_short_or_hostile_prefix(api, users, prefix):
    """A prefix must be a name's first 3 to 16 characters: 400, 1001, never a wildcard."""
    me = users.register()
    error(api.get("/users", params={"prefix": prefix}, headers=bearer(me["token"])), 400, 1001)


def test_search_treats_an_underscore_as_itself_not_a_wildcard(api, users):
    """`_` is a name character: the prefix `ab_` finds `ab_x...`, never `abcx...`."""
    stem = unique_name("u")[:10]
    underscored = users.register(f"{stem}_x")
    users.register(f"{stem}yx")
    me = users.register()
    found = api.get("/users", params={"prefix": f"{stem}_"}, headers=bearer(me["token"]))
    assert [u["name"] for u in succeed(found, "users", "next")["users"]] == [underscored["name"]]


def test_a_request_is_seen_by_both_and_accepting_makes_contacts_both_ways(api, users):
    """POST /contacts/requests (201, the request with its note) shows in the addressee's
    incoming and the requester's outgoing list; accept (200) makes each a contact of the
    other and empties both lists."""
    alice, bob = users.register(), users.register()
    made = ask(api, alice, bob["name"].upper(), note="From the hiking club")
    request = succeed(made, "request", status=201)["request"]
    assert set(request) == REQUEST_KEYS
    assert request["requester"] == _public(alice) and request["addressee"] == _public(bob)
    assert request["note"] == "From the hiking club"
    assert pending(api, bob) == [request] and pending(api, alice, "outgoing") == [request]
    assert pending(api, alice) == [] and pending(api, bob, "outgoing") == []

    accepted = api.post(f"/contacts/requests/{request['id']}/accept", headers=bearer(bob["token"]))
    contact = succeed(accepted, "contact")["contact"]
    assert contact["user"] == _public(alice) and contact["conversation_id"] is None
    assert [c["user"] for c in contacts_of(api, alice)] == [_public(bob)]
    assert [c["user"] for c in contacts_of(api, bob)] == [_public(alice)]
    assert pending(api, bob) == [] and pending(api, alice, "outgoing") == []


def test_declining_or_cancelling_ends_the_request_and_it_may_be_made_again(api, users):
    """decline (addressee) and DELETE (requester) each end the request (200); neither makes a
    contact, and a new request can be made after each."""
    alice, bob = users.register(), users.register()
    first = succeed(ask(api, alice, bob["name"]), "request", status=201)["request"]
    succeed(api.post(f"/contacts/requests/{first['id']}/decline", headers=bearer(bob["token"])))
    assert pending(api, bob) == [] and contacts_of(api, alice) == []
    second = succeed(ask(api, alice, bob["name"]), "request", status=201)["request"]
    succeed(api.delete(f"/contacts/requests/{second['id']}", headers=bearer(alice["token"])))
    assert pending(api, bob) == [] and pending(api, alice, "outgoing") == []
    succeed(ask(api, alice, bob["name"]), "request", status=201)


def test_only_the_addressee_answers_and_only_the_requester_cancels(api, users):
    """The other side of the request gets 403 (7012), anyone else 404 (7005): they learn
    nothing of other people's requests; the request stays pending."""
    alice, bob, carol = users.register(), users.register(), users.register()
    request = succeed(ask(api, alice, bob["name"]), "request", status=201)["request"]
    path = f"/contacts/requests/{request['id']}"
    not_yours = (403, 7012, "Only the addressee answers a request, only its requester withdraws it")
    not_found = (404, 7005, "Contact request not found")
    for verb in ("accept", "decline"):
        refused(api.post(f"{path}/{verb}", headers=bearer(alice["token"])), not_yours)
        refused(api.post(f"{path}/{verb}", headers=bearer(carol["token"])), not_found)
    refused(api.delete(path, headers=bearer(bob["token"])), not_yours)
    refused(api.delete(path, headers=bearer(carol["token"])), not_found)
    assert pending(api, bob) == [request]


def test_a_request_both_ways_makes_a_contact_not_two_requests(api, users):
    """When the addressee had asked already, the second request answers 200 with the
    contact: both are contacts and no request is left."""
    alice, bob = users.register(), users.register()
    succeed(ask(api, alice, bob["name"]), "request", status=201)
    contact = succeed(ask(api, bob, alice["name"]), "contact")["contact"]
    assert contact["user"] == _public(alice)
    assert pending(api, alice) == pending(api, bob) == []
    assert [c["user"]["id"] for c in contacts_of(api, alice)] == [bob["user"]["id"]]


def test_requests_refused_with_their_codes(api, users):
    """An unknown name (400, 2003), oneself (400, 7002), a request pending already (409,
    7003), a contact already (409, 7004)."""
    alice, bob, carol = users.register(), users.register(), users.register()
    refused(ask(api, alice, unique_name("n")), USERNAME_NOT_FOUND)
    refused(ask(api, alice, alice["name"].lower()), (400, 7002, "Not with yourself"))
    succeed(ask(api, alice, bob["name"]), "request", status=201)
    refused(ask(api, alice, bob["name"]), (409, 7003, "Contact request already sent"))
    befriend(api, alice, carol)
    refused(ask(api, carol, alice["name"]), (409, 7004, "Already contacts"))


@pytest.mark.parametrize(
    "note", ["", "x" * 201, "line\nbreak", "bell\x07", "\x85next line"], ids=repr
)
def test_a_hostile_or_oversized_note_is_refused(api, users, note):
    alice, bob = users.register(), users.register()
    error(ask(api, alice, bob["name"], note=note), 400, 1001)
    assert pending(api, bob) == []


def test_a_note_with_a_lone_surrogate_is_refused(api, users):
    alice, bob = users.register(), users.register()
    body = b'{"name": "' + bob["name"].encode() + b'", "note": "a\\ud800b"}'
    answer = api.post(
        "/contacts/requests",
        content=body,
        headers={**bearer(alice["token"]), "Content-Type": "application/json"},
    )
    error(answer, 400, 1001)


def test_removing_a_contact_ends_it_both_ways(api, users):
    """DELETE /contacts/{user_id}: 200, then neither lists the other; again: 404, 7006."""
    alice, bob = users.register(), users.register()
    befriend(api, alice, bob)
    removed = api.delete(f"/contacts/{bob['user']['id']}", headers=bearer(alice["token"]))
    succeed(removed)
    assert contacts_of(api, alice) == contacts_of(api, bob) == []
    again = api.delete(f"/contacts/{bob['user']['id']}", headers=bearer(alice["token"]))
    refused(again, (404, 7006, "Not a contact"))
    refused(
        api.delete(f"/contacts/{alice['user']['id']}", headers=bearer(alice["token"])),
        (400, 7002, "Not with yourself"),
    )


def test_blocking_ends_the_contact_and_requests_and_refuses_new_ones(api, users):
    """PUT /blocks/{user_id}: 201, then 200 again (idempotent); the contact and a pending
    request end; the blocked user's new request gets the neutral 403 7007, the blocker's
    own 403 7008; GET /blocks lists it; DELETE /blocks lifts it (then 404, 7009)."""
    alice, bob, carol = users.register(), users.register(), users.register()
    befriend(api, alice, bob)
    succeed(ask(api, carol, alice["name"]), "request", status=201)
    for who in (bob, carol):
        first = api.put(f"/blocks/{who['user']['id']}", headers=bearer(alice["token"]))
        block = succeed(first, "block", status=201)["block"]
        assert block["user"] == _public(who)
        again = api.put(f"/blocks/{who['user']['id']}", headers=bearer(alice["token"]))
        assert succeed(again, "block")["block"] == block
    assert contacts_of(api, alice) == contacts_of(api, bob) == []
    assert pending(api, alice) == [] and pending(api, carol, "outgoing") == []

    refused(ask(api, bob, alice["name"]), (403, 7007, "This user does not accept this from you"))
    refused(ask(api, alice, bob["name"]), (403, 7008, "You blocked this user: unblock them first"))
    listed = succeed(api.get("/blocks", headers=bearer(alice["token"])), "blocks", "next")
    assert [b["user"]["id"] for b in listed["blocks"]] == [carol["user"]["id"], bob["user"]["id"]]

    succeed(api.delete(f"/blocks/{bob['user']['id']}", headers=bearer(alice["token"])))
    refused(
        api.delete(f"/blocks/{bob['user']['id']}", headers=bearer(alice["token"])),
        (404, 7009, "Not blocked"),
    )
    succeed(ask(api, bob, alice["name"]), "request", status=201)


def test_blocking_refuses_oneself_and_unknown_users(api, users):
    alice = users.register()
    refused(
        api.put(f"/blocks/{alice['user']['id']}", headers=bearer(alice["token"])),
        (400, 7002, "Not with yourself"),
    )
    refused(
        api.put("/blocks/9007199254740991", headers=bearer(alice["token"])),
        (404, 7001, "User not found"),
    )


def test_two_users_asking_each_other_at_once_end_as_one_contact(target, api, users):
    """Requests both ways at the same moment: one 201 and one 200 (the contact), never two
    pending requests, never a 5xx."""
    for _ in range(4):
        alice, bob = users.register(), users.register()
        answers = at_once(target, [asking(alice, bob), asking(bob, alice)])
        assert no_server_error(answers) == {201: 1, 200: 1}
        assert pending(api, alice) == pending(api, bob) == []
        assert [c["user"]["id"] for c in contacts_of(api, alice)] == [bob["user"]["id"]]


def asking(one: dict, other: dict):
    return lambda client: ask(client, one, other["name"])


def test_accept_racing_cancel_leaves_one_of_them_done(target, api, users):
    """Accept and cancel of one request at once: one is 200, the other 404 (7005); the end
    state is a contact (accept won) or nothing (cancel won), never both nor a 5xx."""
    for _ in range(4):
        alice, bob = users.register(), users.register()
        request = succeed(ask(api, alice, bob["name"]), "request", status=201)["request"]
        path = f"/contacts/requests/{request['id']}"
        accept, cancel = at_once(
            target,
            [
                lambda c, path=path, bob=bob: c.post(
                    f"{path}/accept", headers=bearer(bob["token"])
                ),
                lambda c, path=path, alice=alice: c.delete(path, headers=bearer(alice["token"])),
            ],
        )
        assert sorted([accept.status_code, cancel.status_code]) == [200, 404], (
            accept.text,
            cancel.text,
        )
        assert pending(api, bob) == []
        contact = [c["user"]["id"] for c in contacts_of(api, bob)]
        assert contact == ([alice["user"]["id"]] if accept.status_code == 200 else [])


def test_requests_and_searches_are_limited_per_account(target, users):
    """POST /contacts/requests and GET /users count against their limits per account
    (IM_LIMIT_CONTACT_REQUEST_PER_ACCOUNT, IM_LIMIT_SEARCH_PER_ACCOUNT), each request from
    an address of its own: past them, 429 with Retry-After, whatever each answer was, so
    accounts cannot be enumerated faster than the limits allow."""
    me = users.register()
    asked, _ = refused_after(target, lambda client, index: ask(client, me, unique_name("n")))
    too_many(asked)
    searched, _ = refused_after(
        target,
        lambda client, index: client.get(
            "/users", params={"prefix": unique_name("p")[:8]}, headers=bearer(me["token"])
        ),
    )
    too_many(searched)
