"""Sequences of calls that follow the contract's OpenAPI links, checked at every step.

Two runs, one per area, so that each area's chains come up often:

* accounts: register -> login -> me / change_name / change_password / logout /
  cancel_account (the token travels in `header.Authorization`), change_password -> its
  fresh token;
* groups and media: group creation -> add member / upload -> message list / media fetch.

Stateful checks (`use_after_free`, `ensure_resource_availability`, ...) run on top of the
others. Links schemathesis infers from the schemas (e.g. `user.id` -> a member's `user_id`)
are followed too.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok

from conformance import auth, checks
from conformance.settings import EXAMPLES
from conformance.target import contract_schema

schema = contract_schema()
auth.install(schema)

AUTHORIZATION = (ParameterLocation.HEADER, "Authorization")


class LinkFollower:
    """Mixed into schemathesis' state machine: link-carried tokens, our checks, failures kept."""

    failures: list[FailureGroup]

    def step(self, input):
        # The suite's auth providers marked every case for one of its own accounts; a token the
        # link carried (the user the previous step registered or signed in) is the one to
        # send, else the mark becomes a real token.
        if input.transition is not None and AUTHORIZATION in input.applied_parameters:
            carried = input.transition.parameters.get("headers", {}).get("Authorization")
            if carried is not None and isinstance(carried.value, Ok):
                input.case.headers["Authorization"] = carried.value.ok()
        auth.resolve(input.case, auth.mark_of(input.case))
        return super().step(input)

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


def machine_for(*tags: str):
    base = schema.include(tag=list(tags)).as_state_machine()
    return type(f"{'_'.join(tags).title()}StateMachine", (LinkFollower, base), {"failures": []})


AccountStateMachine = machine_for("account", "service")
GroupsStateMachine = machine_for("groups", "media")


def test_account_links_keep_the_contract():
    """Account operations chained by the spec's links (register, login, me, ...) keep it."""
    run(AccountStateMachine)


def test_group_and_media_links_keep_the_contract():
    """Group and media operations chained by the spec's links (create, upload, ...) keep it."""
    run(GroupsStateMachine)


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
