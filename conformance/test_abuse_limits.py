"""Limits per client address and per target: 429 with `Retry-After`, shared by every worker.

Spec: the 429 responses (components.responses.TooManyRequests) of register, login,
email_code, change_password and the uploads, and info "Decisions the sources left open"
(abuse limits). Their values are the server's settings, which the suite does not know: each
test sends requests of one kind for one key (a client address, named in X-Forwarded-For; a
name; a mailbox) until the first 429, within a bound, then checks that answer and that the
limit holds for that key only. Each request goes on a connection of its own, so that
against several workers they land on different ones: the count is shared, so once refused,
a key stays refused whichever worker answers.

The server must take the suite's X-Forwarded-For (`IM_TRUSTED_PROXIES`, as `run_live.sh`
sets it); the suite names an address of its own for every other request.
"""

from __future__ import annotations

import time

import pytest

from conformance import media
from conformance.expect import error
from conformance.target import PASSWORD, bearer, client_address, unique_name

MOST = 200  # requests a test sends to meet a limit; past that it says the limit is higher


def refused_after(target, send, most: int = MOST):
    """`send(client, index)` on a new connection each time until a 429: that response and
    how many were answered before it. Skips when none comes within `most`."""
    for index in range(most):
        with target.client() as client:
            response = send(client, index)
        assert response.status_code < 500, response.text
        if response.status_code == 429:
            response.received_at = time.monotonic()  # for `stays_refused`
            return response, index
    pytest.skip(f"no 429 within {most} requests: this server's limit is higher")


def too_many(response) -> int:
    body = error(response, 429, 1009, None, "retry_after")
    assert isinstance(body["retry_after"], int) and body["retry_after"] >= 1
    assert response.headers["Retry-After"] == str(body["retry_after"])
    return body["retry_after"]


def stays_refused(target, send, refusal, times: int = 6) -> None:
    """The key stays refused on new connections (whichever worker answers), for as long as
    the first `refusal` (from `refused_after`) said: limits count in fixed windows, and a
    run that meets one just before its window ends (an hour's, at the full hour) sees the
    next window open, rightly. A second's margin covers the rounding of Retry-After."""
    open_again = refusal.received_at + int(refusal.headers["Retry-After"]) - 1
    for index in range(times):
        with target.client() as client:
            response = send(client, MOST + index)
        if time.monotonic() >= open_again:
            return  # the window is over: the limit is for the next one to show
        too_many(response)


def test_register_is_limited_per_client_address(target, api):
    """POST /api/user/register from one client address: past the limit, 429 with
    Retry-After, and it stays so; from another address registering goes on."""
    address = client_address()

    def send(client, index):
        return client.post(
            "/user/register",
            json={"name": unique_name("l"), "password": PASSWORD},
            headers={"X-Forwarded-For": address},
        )

    first_refusal, accepted = refused_after(target, send)

    too_many(first_refusal)
    assert accepted >= 1
    stays_refused(target, send, first_refusal)
    other = api.post("/user/register", json={"name": unique_name("l"), "password": PASSWORD})
    assert other.status_code == 200, other.text


def test_login_is_limited_per_client_address(target, api):
    """POST /api/user/login from one client address (each for another, unknown, name):
    past the limit, 429; from another address the same request is answered as before."""
    address = client_address()

    def send(client, index):
        return client.post(
            "/user/login",
            json={"name": unique_name("n"), "password": PASSWORD},
            headers={"X-Forwarded-For": address},
        )

    first_refusal, _ = refused_after(target, send)

    too_many(first_refusal)
    stays_refused(target, send, first_refusal)
    other = api.post("/user/login", json={"name": unique_name("n"), "password": PASSWORD})
    error(other, 400, 2003, "Username not found")


def test_login_is_limited_per_name_asked_for(target, api):
    """POST /api/user/login for one name, each time from another address: past the limit,
    429, in any case of the name; another name is answered as before."""
    name = unique_name("t")

    def send(client, index):
        spelled = name.upper() if index % 2 else name
        return client.post("/user/login", json={"name": spelled, "password": PASSWORD})

    first_refusal, _ = refused_after(target, send)

    too_many(first_refusal)
    stays_refused(target, send, first_refusal)
    other = api.post("/user/login", json={"name": unique_name("t"), "password": PASSWORD})
    error(other, 400, 2003, "Username not found")


def test_email_codes_are_limited_per_mailbox_whatever_the_tag(target, api):
    """POST /api/user/email_code (login) for one mailbox, each time under another `+tag`
    (so no code waits for another) and from another address: past the limit, 429; another
    mailbox is answered as before."""
    local = unique_name("m")

    def send(client, index):
        body = {"email": f"{local}+{index}@example.com", "purpose": "login"}
        return client.post("/user/email_code", json=body)

    first_refusal, accepted = refused_after(target, send)

    too_many(first_refusal)
    assert accepted >= 1
    other = api.post(
        "/user/email_code", json={"email": f"{unique_name('m')}@example.com", "purpose": "login"}
    )
    assert other.status_code == 200, other.text


def test_email_codes_are_limited_per_client_address(target, api):
    """POST /api/user/email_code (login) from one address, each for another mailbox: past
    the limit, 429; from another address, the same request is answered as before."""
    address = client_address()

    def send(client, index):
        body = {"email": f"{unique_name('a')}@example.com", "purpose": "login"}
        return client.post("/user/email_code", json=body, headers={"X-Forwarded-For": address})

    first_refusal, _ = refused_after(target, send)

    too_many(first_refusal)
    stays_refused(target, send, first_refusal)
    body = {"email": f"{unique_name('a')}@example.com", "purpose": "login"}
    assert api.post("/user/email_code", json=body).status_code == 200


def test_password_changes_are_limited_per_account(target, users):
    """POST /api/user/change_password (to the same password, each time with the fresh
    token), each from another address: past the limit, 429."""
    token = users.token()

    def send(client, index):
        nonlocal token
        response = client.post(
            "/user/change_password",
            json={"old_password": PASSWORD, "new_password": PASSWORD},
            headers=bearer(token),
        )
        if response.status_code == 200:
            token = response.json()["token"]
        return response

    first_refusal, accepted = refused_after(target, send)

    too_many(first_refusal)
    assert accepted >= 1


def test_uploads_are_limited_per_account(target, api, users):
    """POST /api/groups/{group_id}/upload_image by one account, each from another address:
    past the limit, 429; another account uploads as before."""
    token = users.token()
    group = api.post("/groups", json={"name": "Uploads"}, headers=bearer(token)).json()["group"]

    def send(client, index, token=token):
        files = {"image": ("dot.png", media.PNG, "image/png")}
        return client.post(
            f"/groups/{group['id']}/upload_image", files=files, headers=bearer(token)
        )

    first_refusal, accepted = refused_after(target, send, most=400)

    too_many(first_refusal)
    assert accepted >= 1
    other = users.token()
    mine = api.post("/groups", json={"name": "Mine"}, headers=bearer(other)).json()["group"]
    files = {"image": ("dot.png", media.PNG, "image/png")}
    uploaded = api.post(f"/groups/{mine['id']}/upload_image", files=files, headers=bearer(other))
    assert uploaded.status_code == 201, uploaded.text
