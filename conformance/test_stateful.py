"""Sequences of calls that follow the contract's OpenAPI links, checked at every step.

Three runs, one per area, so that each area's chains come up often:

* accounts: register / login -> me / change_name / change_password / logout /
  cancel_account, change_password -> its fresh token;
* groups and media: register / login -> group creation -> add member / upload -> message
  list / media fetch;
* contacts: register / login -> search -> contact request -> cancel; contact -> direct chat
  -> messages; block -> unblock.

The links carry ids, never the token (OpenAPI ignores an `Authorization` header
parameter): as the spec's `bearerAuth` description says, the tool fills the security
scheme. Here a chain acts as the account it signed in: each step sends the token of the
account its previous step acted as, or the one that step's response issued (register,
login, change_password), and the password a link's description names (`old_password`,
`password`: the one that account signed in with). A chain that has signed no one in uses
the suite's own accounts (conformance/auth.py).

Stateful checks (`use_after_free`, `ensure_resource_availability`, ...) run on top of the
others. Links schemathesis infers from the schemas (e.g. `user.id` -> a member's `user_id`)
are followed too.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from conformance import auth, checks
from conformance.settings import EXAMPLES
from conformance.target import contract_schema

schema = contract_schema()
auth.install(schema)

# The body field of an operation that asks again for the password of the account acting.
PASSWORD_FIELDS = {"changePassword": "old_password", "cancelAccount": "password"}


@dataclass(frozen=True)
class Account:
    """Whom a step acted as: its token, and its password when the chain saw it."""

    token: str
    password: str | None = None


def signed_in(case, response, acted_as: Account | None) -> Account | None:
    """The account a step's response signed in (register, login, change_password), or the
    one the step acted as."""
    if 200 <= response.status_code < 300:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("token"), str):
            body = case.body if isinstance(case.body, dict) else {}
            password = body.get("new_password", body.get("password"))
            if not isinstance(password, str):
                password = acted_as.password if acted_as else None
            return Account(answer["token"], password)
    return acted_as


class LinkFollower:
    """Mixed into schemathesis' state machine: a chain acts as the account it signed in,
    our checks, failures kept."""

    failures: list[FailureGroup]

    def __init__(self):
        super().__init__()
        self.accounts: dict[str, Account] = {}  # case id -> whom the step acted as, after it

    def step(self, input):
        parent = self.accounts.get(input.transition.parent_id) if input.transition else None
        mark = auth.mark_of(input.case)
        acted_as = None
        if parent is not None and mark is not None:
            # The operation takes the token (the providers marked it): the chain's account.
            input.case.headers["Authorization"] = f"Bearer {parent.token}"
            field = PASSWORD_FIELDS.get(input.case.operation.definition.raw.get("operationId"))
            # The chain's real password, so the step can succeed; never into a body generated
            # to break the schema: a valid password there turns it into a valid request, which
            # the server rightly accepts and schemathesis would report as invalid data let in.
            negative_body = input.case.meta is not None and input.case.meta.is_negative_at(
                ParameterLocation.BODY
            )
            body = input.case.body
            if field and parent.password and isinstance(body, dict) and not negative_body:
                body[field] = parent.password
            acted_as = parent
        else:
            auth.resolve(input.case, mark)
        checks.from_address(input.case)
        output = super().step(input)
        account = signed_in(input.case, output.response, acted_as)
        if account is not None:
            self.accounts[input.case.id] = account
        return output

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        try:
            checks.validate(case, response, transport_kwargs=kwargs or None, recorder=self.recorder)
        except FailureGroup as failure:
            self.failures.append(failure)
            raise


def _diverged(exc: BaseException) -> bool:
    """A replay went another way: the server's state moved on (names taken, tokens ended)."""
    if isinstance(exc, Flaky):
        return True
    # Hypothesis asserts inside its data tree when a replay draws past an earlier rejection.
    traceback = exc.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return (
        isinstance(exc, AssertionError)
        and traceback is not None
        and traceback.tb_frame.f_globals.get("__name__", "").startswith("hypothesis.internal")
    )


def machine_for(tags: set[str], entries: set[str] = frozenset()):
    """A state machine over the operations of `tags`, and the operations `entries` named."""

    def chosen(context) -> bool:
        definition = context.operation.definition.raw
        return bool(tags & set(definition.get("tags", []))) or definition["operationId"] in entries

    base = schema.include(chosen).as_state_machine()
    name = f"{'_'.join(sorted(tags)).title()}StateMachine"
    return type(name, (LinkFollower, base), {"failures": []})


AccountStateMachine = machine_for({"account", "service"})
# Register and login start the chains that reach the groups and media operations.
GroupsStateMachine = machine_for({"groups", "media"}, entries={"register", "login"})
# From signing in through search, requests and contacts to a direct chat and its messages.
ContactsStateMachine = machine_for(
    {"contacts"}, entries={"register", "login", "openDirectChat", "postMessage", "listMessages"}
)


def test_account_links_keep_the_contract():
    """Account operations chained by the spec's links (register, login, me, ...) keep it."""
    run(AccountStateMachine)


def test_group_and_media_links_keep_the_contract():
    """Group and media operations chained by the spec's links (create, upload, ...) keep it."""
    run(GroupsStateMachine)


def test_contact_links_keep_the_contract():
    """Search, contact requests, contacts, blocks and direct chats chained by the links."""
    run(ContactsStateMachine)


def run(machine) -> None:
    machine.failures.clear()
    try:
        machine.run(
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=8,
                deadline=None,
                database=None,
                # A live server's state moves on between runs, so a scenario cannot be
                # replayed to shrink it: each failure is reported as it was first seen.
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )
    except BaseException as exc:
        if not _diverged(exc):
            raise
        if machine.failures:
            raise machine.failures[0] from None
