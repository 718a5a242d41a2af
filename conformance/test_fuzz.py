"""Every operation of the contract, fuzzed by schemathesis with all of its checks.

One test per operation (`test_operation_keeps_the_contract[POST /user/login]`), each running
the spec's examples, the coverage phase (boundary values, every way to break each constraint,
missing and unexpected parameters, other methods) and random generation, in both positive
and negative modes. How responses are judged: `conformance/checks.py`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from conformance import auth, checks
from conformance.settings import EXAMPLES
from conformance.target import contract_schema

schema = contract_schema()
auth.install(schema)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Requests are slow and some operations admit few distinct inputs; neither is a fault.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_operation_keeps_the_contract(case):
    """Each operation answers valid and invalid requests as the contract says."""
    checks.call_and_validate(case)
