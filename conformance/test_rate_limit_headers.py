"""Limited operations say their limits before they refuse: `RateLimit-Policy` and `RateLimit`.

Spec: components.headers RateLimitPolicy and RateLimit (draft-ietf-httpapi-ratelimit-headers:
each policy's quota `q` and window `w`; for the policy closest to its limit, what is left `r`
and the seconds `t` until more is), declared on the successes and the 429 of every operation
with a limit; components.responses TooManyRequests and TooManyUploads.

The numbers come from the bookkeeping that decides the 429 (shared by every worker): so one
more request leaves one less, and a 429 says nothing is left for as long as `Retry-After`.
Requests name their client address (X-Forwarded-For, as `target.client_address`).
"""

from __future__ import annotations

import pytest

from conformance import contract, media, rate_limits
from conformance.expect import succeed
from conformance.target import (
    PASSWORD,
    Users,
    bearer,
    client_address,
    in_process,
    unique_name,
)
from conformance.test_abuse_limits import refused_after, too_many
from conformance.test_limits import MAX_FAILURES, login

HEADERS = {"RateLimit", "RateLimit-Policy"}


def post(client, token: str, group_id: int, text: str, address: str, **extra):
    return client.post(
        f"/groups/{group_id}/messages",
        json={"text": text, **extra},
        headers={**bearer(token), "X-Forwarded-For": address},
    )


def one_less(first, second) -> bool:
    """Whether `second` names the same policy as `first` with one less left; False when the
    window turned over between them (more time left after than before)."""
    name, left, reset = rate_limits.current(first)
    again, left_after, reset_after = rate_limits.current(second)
    if reset_after > reset:
        return False
    assert again == name, (first.headers["RateLimit"], second.headers["RateLimit"])
    assert left_after == left - 1, (first.headers["RateLimit"], second.headers["RateLimit"])
    return True


def test_post_message_says_what_is_left_and_one_less_each_time(api, users):
    """POST /api/groups/{group_id}/messages: each 201 carries RateLimit-Policy (the limits
    per account and per client address, with `q` and `w`) and RateLimit (the one closest to
    its limit); the next post from the same account and address leaves one less."""
    me = users.register()
    group_id, address = _group(api, me), client_address()
    for _ in range(2):  # a second try if the window turned over between the two posts
        first = post(api, me["token"], group_id, "one", address)
        second = post(api, me["token"], group_id, "two", address)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        assert len(rate_limits.policies(first)) == 2, first.headers["RateLimit-Policy"]
        if one_less(first, second):
            return
    pytest.fail("the window turned over twice in a row")


def test_register_from_one_address_leaves_one_less_each_time(api):
    """POST /api/user/register: from one client address, each 200 leaves one less of the
    limit per address."""
    address = client_address()

    def register():
        return api.post(
            "/user/register",
            json={"name": unique_name("r"), "password": PASSWORD},
            headers={"X-Forwarded-For": address},
        )

    first, second = register(), register()
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert one_less(first, second)


def test_search_users_429_says_nothing_is_left_until_retry_after(target, users):
    """GET /api/users past its limit: the 429 carries RateLimit with `r=0` and `t` equal to
    `Retry-After`, naming a policy of its RateLimit-Policy; the answers before it counted
    down to it."""
    me = users.register()
    answers = []

    def send(client, index):
        answers.append(
            client.get(
                "/users", params={"prefix": unique_name("p")[:8]}, headers=bearer(me["token"])
            )
        )
        return answers[-1]

    refusal, _ = refused_after(target, send)

    too_many(refusal)
    rate_limits.spent(refusal)
    assert rate_limits.current(answers[-2])[1] == 0  # the last one accepted left nothing


def test_login_locked_by_failed_passwords_says_nothing_is_left(api, users):
    """POST /api/user/login, locked after 10 wrong passwords from one address: the 429's
    RateLimit has `r=0` and `t` equal to `Retry-After`."""
    account, address = users.register(), client_address()
    for _ in range(MAX_FAILURES):
        login(api, account["name"], "not the password", address)

    locked = login(api, account["name"], PASSWORD, address)

    too_many(locked)
    rate_limits.spent(locked)


# Every operation that declares the headers, with how to get each declared success: a
# function of (client, users) that prepares what the operation needs and returns
# `send(client)`, which asks for it once more each call (same account, same address).


def _group(client, member: dict) -> int:
    made = client.post("/groups", json={"name": "Limits"}, headers=bearer(member["token"]))
    return succeed(made, "group", status=201)["group"]["id"]


def _as(member: dict, address: str) -> dict:
    return {**bearer(member["token"]), "X-Forwarded-For": address}


def _register(client, users):
    address = client_address()
    body = lambda: {"name": unique_name("r"), "password": PASSWORD}  # noqa: E731
    return lambda c: c.post("/user/register", json=body(), headers={"X-Forwarded-For": address})


def _email_code(client, users):
    address = client_address()

    def send(c):
        body = {"email": f"{unique_name('m')}@example.com", "purpose": "register"}
        return c.post("/user/email_code", json=body, headers={"X-Forwarded-For": address})

    return send


def _login(client, users):
    me, address = users.register(), client_address()
    body = {"name": me["name"], "password": PASSWORD}
    return lambda c: c.post("/user/login", json=body, headers={"X-Forwarded-For": address})


def _change_password(client, users):
    me, address = users.register(), client_address()
    state = {"token": me["token"], "password": PASSWORD}

    def send(c):
        new = f"{state['password']}x"
        body = {"old_password": state["password"], "new_password": new}
        answer = c.post("/user/change_password", json=body, headers=_as(state, address))
        if answer.status_code == 200:
            state.update(token=answer.json()["token"], password=new)
        return answer

    return send


def _cancel_account(client, users):
    address = client_address()

    def send(c):
        me = users.register()  # a new account each time, cancelled from one address
        return c.post("/user/cancel_account", json={"password": PASSWORD}, headers=_as(me, address))

    return send


def _change_image(client, users):
    me, address = users.register(), client_address()
    files = {"avatar": ("me.png", media.PNG, "image/png")}
    return lambda c: c.post("/user/change_image", files=files, headers=_as(me, address))


def _upload(kind: str, part: str, filename: str, content: bytes, content_type: str):
    def prepare(client, users):
        me, address = users.register(), client_address()
        group_id = _group(client, me)
        files = {part: (filename, content, content_type)}
        return lambda c: c.post(
            f"/groups/{group_id}/upload_{kind}", files=files, headers=_as(me, address)
        )

    return prepare


def _post_message(client, users):
    me, address = users.register(), client_address()
    group_id = _group(client, me)
    return lambda c: c.post(
        f"/groups/{group_id}/messages", json={"text": "hi"}, headers=_as(me, address)
    )


def _post_message_again(client, users):
    """The same client_msg_id posted again: 200, the message already posted."""
    me, address = users.register(), client_address()
    group_id = _group(client, me)
    body = {"text": "hi", "client_msg_id": unique_name("id")}
    posted = client.post(f"/groups/{group_id}/messages", json=body, headers=bearer(me["token"]))
    succeed(posted, "message", status=201)
    return lambda c: c.post(f"/groups/{group_id}/messages", json=body, headers=_as(me, address))


def _forward(client, users):
    me, address = users.register(), client_address()
    source, group_id = _group(client, me), _group(client, me)
    posted = client.post(
        f"/groups/{source}/messages", json={"text": "fw"}, headers=bearer(me["token"])
    )
    seq = succeed(posted, "message", status=201)["message"]["seq"]
    body = {"from_group_id": source, "seqs": [seq]}
    return lambda c: c.post(f"/groups/{group_id}/forward", json=body, headers=_as(me, address))


def _search(client, users):
    me, address = users.register(), client_address()
    return lambda c: c.get(
        "/users", params={"prefix": unique_name("p")[:8]}, headers=_as(me, address)
    )


def _request_contact(client, users):
    me, address = users.register(), client_address()
    return lambda c: c.post(
        "/contacts/requests", json={"name": users.register()["name"]}, headers=_as(me, address)
    )


def _request_contact_back(client, users):
    """Asking someone who asked first: 200, the contact made."""
    me, address = users.register(), client_address()

    def send(c):
        other = users.register()
        asked = client.post(
            "/contacts/requests", json={"name": me["name"]}, headers=bearer(other["token"])
        )
        assert asked.status_code == 201, asked.text
        return c.post("/contacts/requests", json={"name": other["name"]}, headers=_as(me, address))

    return send


SUCCESSES = {
    ("register", 200): _register,
    ("sendEmailCode", 200): _email_code,
    ("login", 200): _login,
    ("changePassword", 200): _change_password,
    ("cancelAccount", 200): _cancel_account,
    ("changeImage", 200): _change_image,
    ("uploadImage", 201): _upload("image", "image", "a.png", media.PNG, "image/png"),
    ("uploadExpression", 201): _upload("expression", "expression", "a.png", media.PNG, "image/png"),
    ("uploadFile", 201): _upload("file", "file", "a.txt", b"some text", "text/plain"),
    ("uploadVoice", 201): _upload("voice", "voice", "a.wav", media.wav(), "audio/wav"),
    ("postMessage", 201): _post_message,
    ("postMessage", 200): _post_message_again,
    ("forwardMessages", 201): _forward,
    ("searchUsers", 200): _search,
    ("requestContact", 201): _request_contact,
    ("requestContact", 200): _request_contact_back,
}


def declaring() -> list[tuple[str, int]]:
    """(operationId, status) of every response of the contract that declares the headers."""
    found = []
    for operation in contract.operations():
        for status, response in operation.definition.get("responses", {}).items():
            if set(contract.resolve(response).get("headers", {})) >= HEADERS:
                found.append((operation.definition["operationId"], int(status)))
    return found


def test_the_limited_operations_declare_the_headers_on_their_successes_and_429():
    """Every operation with a limit (a 429 documented) declares both headers on each of its
    successes and on its 429, and no other operation does; each declared success has a
    scenario below."""
    declared = set(declaring())
    limited = {
        (operation.definition["operationId"], int(status))
        for operation in contract.operations()
        if operation.documents(429)
        for status in operation.definition["responses"]
        if status.startswith("2") or status == "429"
    }
    assert declared == limited
    assert {pair for pair in declared if pair[1] != 429} == set(SUCCESSES)


@pytest.fixture(scope="module")
def tight(target):
    """An in-process app where every limit is 3 an hour: the fourth request is refused (each
    scenario's accounts are made from addresses of their own)."""
    if target.is_live:
        pytest.skip("needs an app of its own with low limits (in-process only)")
    import dataclasses

    from im_core.config import Settings

    fields = [field.name for field in dataclasses.fields(Settings)]
    limits = {field: "3/3600" for field in fields if field.startswith("limit_")}
    return in_process(**limits)


@pytest.mark.parametrize(("operation_id", "status"), sorted(SUCCESSES))
def test_each_declared_success_and_429_carries_the_headers(tight, operation_id, status):
    """Each declared success carries both headers, each following one leaves one less, and
    the 429 that follows says nothing is left until `Retry-After`."""
    tight.make_current()
    with tight.client() as client:
        send = SUCCESSES[(operation_id, status)](client, Users(client))
        answers = [send(client) for _ in range(6)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[0] == status, answers[0].text
    assert 429 in statuses, statuses
    refused_at = statuses.index(429)
    accepted = answers[:refused_at]
    assert all(answer.status_code == status for answer in accepted), statuses
    for before, after in zip(accepted, accepted[1:], strict=False):
        assert one_less(before, after)
    rate_limits.spent(answers[refused_at])
