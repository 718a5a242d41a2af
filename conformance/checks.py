"""How every response the fuzzer gets is judged: all of schemathesis' checks, with the
contract's error table in mind in two places.

* A documented 501 with code 1011 ("Not implemented yet") is the contract's own answer for an
  operation not built yet: it is held to the contract (status documented, JSON, the `Error`
  schema) and nothing more, since such an operation cannot authenticate, validate or act.
  Once the operation's 501 leaves the spec, a 501 fails `status_code_conformance` and
  `not_a_server_error` like any other.
* `positive_data_acceptance`: a request that matches the schema may still break a rule the
  schema cannot express: a wrong password, a name that does not exist, a wrong email code,
  file bytes of the wrong kind. The contract answers those with a documented status and a
  rule code (2000 and above in the `ErrorCode` table); and any valid request may meet a
  limit (a documented 429, code 1009). Any other refusal with a protocol code (1xxx:
  "Invalid request", "Malformed request body", ...) is a finding: it means the server
  refused data its own contract allows.
* `ensure_resource_availability` (stateful): after `POST /groups`, a 404 on
  `DELETE /groups/{group_id}/members/{user_id}` is taken for the new group being gone, but
  a user who is not a member is 404 "Member not found" (3005) there, the contract's answer;
  likewise on the role operations (a member who is no admin, 3008; a join request no longer
  pending, 3010). A 404 with a code naming another resource than the group is not a
  finding. Nor is "Group not found" (3001) once the scenario has removed a member of that
  group or disbanded it: a group goes with its last member (the spec's `RemoveOwner` link
  makes the owner of a new group leave), which schemathesis cannot know from a DELETE on
  `/members/{user_id}`. Any other 404 is.

Every other check runs exactly as schemathesis ships it.
"""

from __future__ import annotations

import json

from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conformance import auth
from conformance.target import client_address

NOT_IMPLEMENTED = 1011
TOO_MANY_ATTEMPTS = 1009
FIRST_RULE_CODE = 2000
GROUP_NOT_FOUND = 3001
# operationId -> codes of a 404 about a path or body parameter other than the resource a link
# created: a user who is not a member (3005), a member who is not an admin (3008), a join
# request that is not pending (3010).
OTHER_RESOURCE_NOT_FOUND = {
    "removeMember": {3005},
    "appointAdmin": {3005},
    "dismissAdmin": {3005, 3008},
    "transferGroup": {3005},
    "approveJoinRequest": {3010},
    "declineJoinRequest": {3010},
    "cancelJoinRequest": {3010},
}
# Operations after whose success a group may be gone: its last member left, or it was
# disbanded.
GROUP_ENDING = {"removeMember", "disbandGroup"}


def documents(case, status: int) -> bool:
    """Whether the contract lists `status` among the operation's responses."""
    return str(status) in case.operation.definition.raw.get("responses", {})


def error_code(response) -> int | None:
    """The envelope's `code`, or None when the body is not one."""
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def not_implemented_yet(case, response) -> bool:
    return (
        response.status_code == 501
        and documents(case, 501)
        and error_code(response) == NOT_IMPLEMENTED
    )


def positive_data_acceptance_but_rules(ctx, response, case):
    """`positive_data_acceptance`, except a documented refusal with a rule code (>= 2000),
    or a documented 429 "Too many attempts" (a limit refuses valid requests too)."""
    if 400 <= response.status_code < 500 and documents(case, response.status_code):
        code = error_code(response)
        if code is not None and code >= FIRST_RULE_CODE:
            return None
        if response.status_code == 429 and code == TOO_MANY_ATTEMPTS:
            return None
    return positive_data_acceptance(ctx, response, case)


def ensure_resource_availability_but_other_ids(ctx, response, case):
    """`ensure_resource_availability`, except a 404 about another parameter of the path, or
    about a group the scenario may have emptied."""
    operation_id = case.operation.definition.raw.get("operationId")
    code = error_code(response) if response.status_code == 404 else None
    if code in OTHER_RESOURCE_NOT_FOUND.get(operation_id, ()):
        return None
    if code == GROUP_NOT_FOUND and member_removed_from(
        ctx, (case.path_parameters or {}).get("group_id")
    ):
        return None
    return ensure_resource_availability(ctx, response, case)


def member_removed_from(ctx, group_id) -> bool:
    """Whether the scenario so far removed a member of the group, or disbanded it
    (successfully)."""
    recorder = ctx.internals.recorder
    if recorder is None or group_id is None:
        return False
    for prior in recorder.find_all_cases():
        if (
            prior.operation.definition.raw.get("operationId") in GROUP_ENDING
            and (prior.path_parameters or {}).get("group_id") == group_id
        ):
            answer = recorder.find_response(case_id=prior.id)
            if answer is not None and 200 <= answer.status_code < 300:
                return True
    return False


EXCLUDED = [positive_data_acceptance, ensure_resource_availability]
ADDITIONAL = [positive_data_acceptance_but_rules, ensure_resource_availability_but_other_ids]
CONFORMANCE_ONLY = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def validate(case, response, **kwargs) -> None:
    """Run every check on `response` to `case`; raises schemathesis' FailureGroup on failure."""
    if not_implemented_yet(case, response):
        case.validate_response(response, checks=CONFORMANCE_ONLY, **kwargs)
    else:
        case.validate_response(
            response, excluded_checks=EXCLUDED, additional_checks=ADDITIONAL, **kwargs
        )


def from_address(case) -> None:
    """Send `case` from a client address of its own (see `target.client_address`)."""
    headers = dict(case.headers or {})
    if not any(name.lower() == "x-forwarded-for" for name in headers):
        case.headers = {**headers, "X-Forwarded-For": client_address()}


def call_and_validate(case, **kwargs):
    """Send `case` from a client address of its own, with a real token for the suite's mark
    (a new shared account and once more if that one's session has ended or it reached a
    limit per account) and validate the response."""
    mark = auth.mark_of(case)
    auth.resolve(case, mark)
    from_address(case)
    response = case.call(**kwargs)
    if response.status_code in (401, 429) and mark is not None and mark[1] == auth.SHARED:
        auth.resolve(case, mark, renew=True)
        response = case.call(**kwargs)
    validate(case, response, transport_kwargs=kwargs or None)
    return response
