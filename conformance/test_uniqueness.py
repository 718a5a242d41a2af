"""Names are unique ignoring case, also when many clients race for one.

Spec: info "Decisions the sources left open" (names unique ignoring case), the 409 responses
of register and change_name, and the 2001 row of components.schemas.ErrorCode.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from conformance.expect import USERNAME_DUPLICATE, refused, succeed
from conformance.target import PASSWORD, bearer, unique_name

RACERS = 8


def race(target, send) -> list:
    """`send(client, index)` from RACERS threads at once, each with its own connection."""
    start = threading.Barrier(RACERS, timeout=60)

    def run(index: int):
        with target.client() as client:
            start.wait()
            return send(client, index)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(run, range(RACERS)))


def test_register_same_name_concurrently_succeeds_exactly_once(target, api):
    """POST /api/user/register from 8 clients at once with one name (in varied case): exactly
    one 200, every other 409 Username duplicate, never a 5xx."""
    name = unique_name("u")
    spellings = [name.lower(), name.upper(), name.capitalize(), name.swapcase()]

    responses = race(
        target,
        lambda client, index: client.post(
            "/user/register",
            json={"name": spellings[index % len(spellings)], "password": PASSWORD},
        ),
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: RACERS - 1}, statuses
    for response in responses:
        if response.status_code == 200:
            succeed(response, "token", "expires_at", "ws_url", "user")
        else:
            refused(response, USERNAME_DUPLICATE)


def test_change_name_to_one_free_name_concurrently_succeeds_exactly_once(target, users):
    """POST /api/user/change_name from 8 users at once to one free name: exactly one 200,
    every other 409 Username duplicate, never a 5xx."""
    tokens = [users.token() for _ in range(RACERS)]
    name = unique_name("n")

    responses = race(
        target,
        lambda client, index: client.post(
            "/user/change_name", json={"new_name": name}, headers=bearer(tokens[index])
        ),
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: RACERS - 1}, statuses
    for response in responses:
        if response.status_code == 409:
            refused(response, USERNAME_DUPLICATE)


def test_register_a_name_taken_in_another_case_is_a_conflict(api, users):
    """POST /api/user/register: a name another account has, in any case, is 409, 2001."""
    taken = users.register()["name"]

    response = api.post("/user/register", json={"name": taken.upper(), "password": PASSWORD})

    refused(response, USERNAME_DUPLICATE)
