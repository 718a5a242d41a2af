"""Email codes through the API: POST /user/email_code, then register, login or change_email.

The codes travel through a real SMTP server (aiosmtpd on loopback) and are read out of the
delivered mail, as a user would read them.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from envelope import error_body
from test_mail import SmtpServer, parse, read_code, start_smtp

from im_core.config import Settings
from models import mail

CODE_SENT = {"code": 0, "info": "Succeed", "expires_in": 600, "resend_after": 60}
WRONG_CODE = {"code": 2006, "info": "Wrong verify code"}
CODE_EXPIRED = {"code": 2007, "info": "Verify code expired"}
CODE_USED = {"code": 2008, "info": "Verify code already used"}
CODE_TRIES_EXHAUSTED = {"code": 2009, "info": "Too many wrong codes, ask for a new one"}
EMAIL_EXISTS = {"code": 2002, "info": "Email already exists"}


@pytest.fixture
def smtp(settings: Settings):
    """The SMTP server the app mails to."""
    controller, server = start_smtp()
    settings.mail_url = server.url
    settings.mail_timeout = 2.0
    yield server
    controller.stop()


class Api:
    """The account calls these tests make, each response kept to check none shows a code."""

    def __init__(self, client, smtp: SmtpServer):
        self.client = client
        self.smtp = smtp
        self.responses = []

    def post(self, path: str, body: dict, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(f"/api/user/{path}", json=body, headers=headers)
        self.responses.append(response)
        return response

    def ask_code(self, email: str, purpose: str, token: str | None = None):
        return self.post("email_code", {"email": email, "purpose": purpose}, token)

    def code(self, email: str, purpose: str, token: str | None = None) -> str:
        """Ask for a code and read it from the mail."""
        response = self.ask_code(email, purpose, token)
        assert response.status_code == 200, response.text
        return self.smtp.code_for(email)

    def register(self, name: str, email: str, code: str | None, password="correct horse"):
        body = {"name": name, "password": password, "email": email}
        if code is not None:
            body["security_code"] = code
        return self.post("register", body)

    def login(self, email: str, code: str):
        return self.post("login", {"email": email, "security_code": code})

    def change_email(self, token: str, new_email: str, code: str):
        return self.post("change_email", {"new_email": new_email, "security_code": code}, token)

    def new_user(self, name: str = "alice", email: str = "alice@example.com") -> str:
        """Register `name` with `email` through a code; returns its token."""
        response = self.register(name, email, self.code(email, "register"))
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def me(self, token: str) -> dict:
        response = self.client.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
        return response.json()["user"]


@pytest.fixture
def api(client, smtp) -> Api:
    return Api(client, smtp)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- register -----------------------------------------------------------------------------


def test_register_with_the_code_from_the_mail(api, smtp):
    response = api.ask_code("alice@example.com", "register")
    assert response.status_code == 200
    assert response.json() == CODE_SENT
    assert [m["To"] for m in smtp.mails] == ["alice@example.com"]
    code = smtp.code_for("alice@example.com")
    assert code not in response.text

    response = api.register("alice", "alice@example.com", code)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == "alice@example.com"


def test_register_with_an_email_but_no_code_is_refused_naming_the_code(api):
    """RegisterRequest requires `security_code` with `email`: the body is refused (1001)
    before any code is looked at, saying which field is missing."""
    response = api.register("alice", "alice@example.com", None)
    assert response.status_code == 400
    assert error_body(response) == {
        "code": 1001,
        "info": "Invalid request: 'security_code' is a required property",
        "errors": [
            {"in": "body", "field": "/security_code", "rule": "required", "message": "is required"}
        ],
    }


def test_register_with_a_code_but_no_email_is_refused_naming_the_email(api):
    response = api.post(
        "register", {"name": "alice", "password": "correct horse", "security_code": "123456"}
    )
    assert response.status_code == 400
    assert error_body(response) == {
        "code": 1001,
        "info": "Invalid request: 'email' is a required property",
        "errors": [{"in": "body", "field": "/email", "rule": "required", "message": "is required"}],
    }


def test_register_code_for_a_taken_address_is_a_conflict_and_sends_nothing(api, smtp):
    api.new_user("alice", "alice@example.com")
    response = api.ask_code("Alice@Example.com", "register")
    assert response.status_code == 409
    assert error_body(response) == EMAIL_EXISTS
    assert len(smtp.mails) == 1  # the first registration's


def test_register_code_ignores_the_case_of_the_address(api):
    code = api.code("Alice@Example.COM", "register")
    response = api.register("alice", "alice@example.com", code)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "alice@example.com"


def test_register_code_survives_a_taken_name(api):
    api.new_user("alice", "alice@example.com")
    code = api.code("bob@example.com", "register")
    taken = api.register("alice", "bob@example.com", code)
    assert taken.status_code == 409
    assert error_body(taken) == {"code": 2001, "info": "Username duplicate"}
    assert api.register("bob", "bob@example.com", code).status_code == 200


# --- login --------------------------------------------------------------------------------


def test_login_with_the_code_from_the_mail(api, smtp):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    assert "sign in" in smtp.to("alice@example.com")[-1]["Subject"]
    response = api.login("ALICE@example.com", code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["name"] == "alice"
    assert api.me(body["token"])["email"] == "alice@example.com"


def test_login_code_for_unknown_address_sends_nothing(api, smtp):
    api.new_user("alice", "alice@example.com")
    known = api.ask_code("alice@example.com", "login")
    unknown = api.ask_code("nobody@example.com", "login")
    assert smtp.to("nobody@example.com") == []
    assert len(smtp.to("alice@example.com")) == 2  # register, then login
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert unknown.headers.get("Content-Type") == known.headers.get("Content-Type")

    # Asked again too soon, both answer alike as well.
    known, unknown = (
        api.ask_code("alice@example.com", "login"),
        api.ask_code("nobody@example.com", "login"),
    )
    assert known.status_code == unknown.status_code == 429
    assert error_body(unknown) == error_body(known)
    assert unknown.headers["Retry-After"] == known.headers["Retry-After"]


def test_login_code_for_unknown_address_is_a_wrong_code(api):
    api.ask_code("nobody@example.com", "login")
    for code in ("000000", "123456", "999999"):
        response = api.login("nobody@example.com", code)
        assert response.status_code == 400
        assert error_body(response) == WRONG_CODE


def test_login_without_any_code_sent_is_a_wrong_code(api):
    api.new_user("alice", "alice@example.com")
    response = api.login("alice@example.com", "123456")
    assert (response.status_code, error_body(response)) == (400, WRONG_CODE)


# --- change_email -------------------------------------------------------------------------


def test_change_email_with_the_code_sent_to_the_new_address(api, smtp, clock):
    token = api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.org", "change_email", token)
    assert smtp.to("alice@example.org"), "the code goes to the new address"
    response = api.change_email(token, "Alice@Example.org", code)
    assert response.status_code == 200, response.text
    assert response.json() == {"code": 0, "info": "Succeed"}
    assert api.me(token)["email"] == "alice@example.org"
    # The old address is free again; the new one signs in.
    clock.advance(seconds=61)
    assert api.new_user("bob", "alice@example.com")
    assert api.login("alice@example.org", api.code("alice@example.org", "login")).status_code == 200


def test_change_email_code_needs_a_token(api, smtp):
    response = api.ask_code("alice@example.org", "change_email")
    assert response.status_code == 401
    assert error_body(response) == {"code": 1003, "info": "Missing token"}
    assert smtp.mails == []


def test_change_email_code_with_an_ended_session_is_refused(api, smtp):
    token = api.new_user("alice", "alice@example.com")
    assert api.post("logout", {}, token).status_code == 200
    response = api.ask_code("alice@example.org", "change_email", token)
    assert response.status_code == 401
    assert error_body(response) == {"code": 1004, "info": "Invalid or expired token"}
    assert smtp.to("alice@example.org") == []


def test_change_email_code_for_another_accounts_address_is_a_conflict(api, smtp):
    api.new_user("bob", "bob@example.com")
    token = api.new_user("alice", "alice@example.com")
    response = api.ask_code("bob@example.com", "change_email", token)
    assert response.status_code == 409
    assert error_body(response) == EMAIL_EXISTS
    assert len(smtp.to("bob@example.com")) == 1  # bob's registration only


def test_change_email_to_an_address_taken_meanwhile_keeps_the_code(api):
    token = api.new_user("alice", "alice@example.com")
    code = api.code("shared@example.com", "change_email", token)
    bob = api.new_user("bob", "shared@example.com")
    taken = api.change_email(token, "shared@example.com", code)
    assert (taken.status_code, error_body(taken)) == (409, EMAIL_EXISTS)
    # Once bob moves away from the address, the same code still works.
    bobs_code = api.code("bob@example.com", "change_email", bob)
    assert api.change_email(bob, "bob@example.com", bobs_code).status_code == 200
    assert api.change_email(token, "shared@example.com", code).status_code == 200


# --- what makes a code fail -----------------------------------------------------------------


def test_wrong_code_is_refused_and_the_right_one_still_works(api):
    code = api.code("alice@example.com", "register")
    wrong = api.register("alice", "alice@example.com", other_code(code))
    assert (wrong.status_code, error_body(wrong)) == (400, WRONG_CODE)
    assert api.register("alice", "alice@example.com", code).status_code == 200


def test_code_works_only_once(api):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    assert api.login("alice@example.com", code).status_code == 200
    again = api.login("alice@example.com", code)
    assert (again.status_code, error_body(again)) == (400, CODE_USED)
    # Whoever does not hold the used code hears only that theirs is wrong.
    guess = api.login("alice@example.com", other_code(code))
    assert (guess.status_code, error_body(guess)) == (400, WRONG_CODE)


def test_sixth_try_finds_the_code_ended_after_five_wrong_ones(api):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    for _ in range(5):
        wrong = api.login("alice@example.com", other_code(code))
        assert (wrong.status_code, error_body(wrong)) == (400, WRONG_CODE)
    sixth = api.login("alice@example.com", code)
    assert (sixth.status_code, error_body(sixth)) == (400, CODE_TRIES_EXHAUSTED)


def test_guesses_at_one_address_are_bounded_across_new_codes(api, clock, settings):
    """A new code gives 5 new tries of that code, not of the address: at most
    `limit_code_guesses` (10 an hour) wrong codes per address and purpose, then 429 with
    `Retry-After`, even for the right code, until the window ends."""
    api.new_user("alice", "alice@example.com")
    for _ in range(2):
        clock.advance(seconds=61)
        code = api.code("alice@example.com", "login")
        for _ in range(5):
            wrong = api.login("alice@example.com", other_code(code))
            assert (wrong.status_code, error_body(wrong)) == (400, WRONG_CODE)
    clock.advance(seconds=61)
    code = api.code("alice@example.com", "login")

    refused = api.login("alice@example.com", code)

    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == 1009
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    clock.advance(seconds=int(refused.headers["Retry-After"]))
    fresh = api.code("alice@example.com", "login")  # the last one has expired by now
    assert api.login("alice@example.com", fresh).status_code == 200


def test_guesses_for_an_address_without_an_account_are_bounded_alike(api, clock):
    """The same bound holds for a login code asked for an address no account has, so the
    429 does not tell whether it has one."""
    for _ in range(2):
        clock.advance(seconds=61)
        api.ask_code("nobody@example.com", "login")
        for code in ("000001", "000002", "000003", "000004", "000005"):
            assert error_body(api.login("nobody@example.com", code)) == WRONG_CODE
    clock.advance(seconds=61)
    api.ask_code("nobody@example.com", "login")

    assert api.login("nobody@example.com", "123456").status_code == 429


def test_wrong_tries_count_even_though_each_ends_in_an_error(api, clock):
    # Four wrong tries, then the right code: it works, so each try was kept, not five.
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    for _ in range(4):
        api.login("alice@example.com", other_code(code))
    assert api.login("alice@example.com", code).status_code == 200
    # And a new code starts again from zero.
    clock.advance(seconds=61)
    code = api.code("alice@example.com", "login")
    for _ in range(5):
        api.login("alice@example.com", other_code(code))
    assert error_body(api.login("alice@example.com", code)) == CODE_TRIES_EXHAUSTED


def test_code_expires_after_ten_minutes(api, clock):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    clock.advance(minutes=11)
    expired = api.login("alice@example.com", code)
    assert (expired.status_code, error_body(expired)) == (400, CODE_EXPIRED)


def test_code_still_works_just_before_ten_minutes(api, clock):
    code = api.code("alice@example.com", "register")
    clock.advance(minutes=9, seconds=59)
    assert api.register("alice", "alice@example.com", code).status_code == 200


@pytest.mark.parametrize(
    "asked_for, used_for",
    [("register", "login"), ("login", "register"), ("login", "change_email"),
     ("change_email", "register")],
)  # fmt: skip
def test_code_for_another_purpose_is_a_wrong_code(api, asked_for, used_for):
    token = api.new_user("alice", "alice@example.com")
    address = "alice@example.com" if asked_for == "login" else "new@example.com"
    code = api.code(address, asked_for, token)
    if used_for == "login":
        response = api.login(address, code)
    elif used_for == "register":
        response = api.register("bob", address, code)
    else:
        response = api.change_email(token, address, code)
    assert (response.status_code, error_body(response)) == (400, WRONG_CODE)


def test_code_for_another_address_is_a_wrong_code(api):
    code = api.code("alice@example.com", "register")
    api.ask_code("bob@example.com", "register")
    response = api.register("bob", "bob@example.com", code)
    assert (response.status_code, error_body(response)) == (400, WRONG_CODE)


# --- asking again -------------------------------------------------------------------------


def test_second_code_within_a_minute_is_refused_with_retry_after(api, smtp, clock):
    first = api.code("alice@example.com", "register")
    clock.advance(seconds=20)
    again = api.ask_code("alice@example.com", "register")
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "40"
    assert error_body(again) == {
        "code": 1009,
        "info": "Too many attempts, retry in 40 s",
        "retry_after": 40,
    }
    assert len(smtp.mails) == 1
    # Other purposes and other addresses are not held back.
    assert api.ask_code("alice@example.com", "login").status_code == 200
    assert api.ask_code("bob@example.com", "register").status_code == 200

    clock.advance(seconds=40)
    second = api.code("alice@example.com", "register")
    # The new code replaces the first one.
    if second != first:
        stale = api.register("alice", "alice@example.com", first)
        assert (stale.status_code, error_body(stale)) == (400, WRONG_CODE)
    assert api.register("alice", "alice@example.com", second).status_code == 200


def test_no_response_ever_contains_the_code(api, smtp, clock):
    token = api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    api.ask_code("alice@example.com", "login")  # too soon: 429
    api.login("alice@example.com", other_code(code))
    api.login("alice@example.com", code)
    api.login("alice@example.com", code)  # used
    api.change_email(
        token, "alice@example.org", api.code("alice@example.org", "change_email", token)
    )
    clock.advance(minutes=11)
    api.ask_code("alice@example.org", "login")
    api.login("alice@example.org", smtp.code_for("alice@example.org"))

    codes = {read_code(message) for message in smtp.mails}
    assert len(smtp.mails) >= 4
    for response in api.responses:
        for sent in codes:
            assert sent not in response.text, (sent, response.text)


# --- the mail server fails ----------------------------------------------------------------


def test_mail_server_refusing_the_mail_is_503_and_the_code_is_not_usable(api, smtp):
    smtp.sink.reply = "554 5.7.1 Message rejected"
    response = api.ask_code("alice@example.com", "register")
    assert response.status_code == 503
    assert error_body(response) == {"code": 1012, "info": "The mail server refused the mail"}
    code = read_code(smtp.sink.refused[-1])
    refused = api.register("alice", "alice@example.com", code)
    assert (refused.status_code, error_body(refused)) == (400, WRONG_CODE)

    # Nothing was kept, so a new code can be asked at once.
    smtp.sink.reply = None
    assert api.ask_code("alice@example.com", "register").status_code == 200


def test_unreachable_mail_server_is_503(api, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        settings.mail_url = f"smtp://127.0.0.1:{probe.getsockname()[1]}"
    response = api.ask_code("alice@example.com", "register")
    assert response.status_code == 503
    assert error_body(response) == {"code": 1012, "info": "The mail server did not answer"}
    assert api.ask_code("alice@example.com", "register").status_code == 503  # not 429


def test_silent_mail_server_is_503_after_the_timeout_and_the_code_is_not_usable(
    api, settings, clock
):
    token = api.new_user("alice", "alice@example.com")
    first = api.code("alice@example.org", "change_email", token)
    clock.advance(seconds=61)
    settings.mail_timeout = 0.3
    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings.mail_url = f"smtp://127.0.0.1:{listener.getsockname()[1]}"
        response = api.ask_code("alice@example.org", "change_email", token)
    assert response.status_code == 503
    assert error_body(response) == {"code": 1012, "info": "The mail server did not answer"}
    # The code the new one was to replace is gone too: no code is left for the address.
    stale = api.change_email(token, "alice@example.org", first)
    assert (stale.status_code, error_body(stale)) == (400, WRONG_CODE)


def test_a_login_code_is_mailed_after_the_answer_and_forgotten_if_the_mail_fails(
    api, settings, smtp, clock
):
    """Login codes are mailed in the background (so the answer does not wait for the mail
    only when the address has an account): the answer is 200 either way, and a code whose
    mail failed is forgotten with the one it replaced, so that a new one can be asked."""
    api.new_user("alice", "alice@example.com")
    first = api.code("alice@example.com", "login")
    clock.advance(seconds=61)
    settings.mail_timeout = 0.3
    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings.mail_url = f"smtp://127.0.0.1:{listener.getsockname()[1]}"
        response = api.ask_code("alice@example.com", "login")
        mail.wait_for_deliveries()
    assert (response.status_code, response.json()) == (200, CODE_SENT)
    stale = api.login("alice@example.com", first)
    assert (stale.status_code, error_body(stale)) == (400, WRONG_CODE)

    settings.mail_url = smtp.url
    assert api.login("alice@example.com", api.code("alice@example.com", "login")).status_code == 200


# --- without a mail server ------------------------------------------------------------------


def test_without_mail_url_the_code_is_read_from_the_outbox(client, settings):
    assert settings.mail_url == ""
    response = client.post(
        "/api/user/email_code", json={"email": "alice@example.com", "purpose": "register"}
    )
    assert response.json() == CODE_SENT
    (eml,) = settings.outbox_dir.glob("*.eml")
    message = parse(eml.read_bytes())
    assert message["To"] == "alice@example.com"
    body = {
        "name": "alice",
        "password": "correct horse",
        "email": "alice@example.com",
        "security_code": read_code(message),
    }
    assert client.post("/api/user/register", json=body).status_code == 200


# --- at the same time -----------------------------------------------------------------------


def _at_once(app, count: int, body_for, path: str = "login") -> list:
    """`count` requests sent together from as many threads, each with its own client."""
    barrier = threading.Barrier(count)

    def attempt(index: int):
        with app.test_client() as own_client:
            barrier.wait()
            response = own_client.post(f"/api/user/{path}", json=body_for(index))
            body = error_body(response) if response.status_code >= 400 else response.json()
            return response.status_code, body

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(attempt, range(count)))


def test_code_used_at_the_same_time_signs_in_only_once(app, api):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    results = _at_once(app, 6, lambda _: {"email": "alice@example.com", "security_code": code})
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * 5, results
    assert all(body == CODE_USED for status, body in results if status == 400)


def test_wrong_codes_at_the_same_time_still_end_the_code_after_five(app, api):
    api.new_user("alice", "alice@example.com")
    code = api.code("alice@example.com", "login")
    wrong = other_code(code)
    results = _at_once(app, 12, lambda _: {"email": "alice@example.com", "security_code": wrong})
    bodies = [body for _, body in results]
    assert bodies.count(WRONG_CODE) == 5, results
    assert bodies.count(CODE_TRIES_EXHAUSTED) == 7, results
    assert error_body(api.login("alice@example.com", code)) == CODE_TRIES_EXHAUSTED


def test_codes_asked_at_the_same_time_send_one_mail(app, api, smtp):
    body = {"email": "alice@example.com", "purpose": "register"}
    results = _at_once(app, 6, lambda _: body, path="email_code")
    assert sorted(status for status, _ in results) == [200] + [429] * 5, results
    assert len(smtp.mails) == 1
    code = smtp.code_for("alice@example.com")
    assert api.register("alice", "alice@example.com", code).status_code == 200
