"""A bounded API fuzzer, schemathesis against the app's own openapi.json on the local host.

For every operation, requests generated from the document (valid ones, then invalid ones):
- no answer is a 5xx, and each answer's status, content type, headers and body are documented;
- a request the document calls valid is accepted, or refused only by a rule the document states
  it cannot express (`x-registry-rules`), which the 400 then names.

Derandomized and bounded (a few hundred requests in all): the same cases on every run, in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from registry.blueprints.openapi import RULES_BEYOND_THE_SCHEMA
from tests.e2e.conftest import LocalHost

pytestmark = pytest.mark.e2e
PRINCIPAL = {"X-MS-CLIENT-PRINCIPAL-ID": "fuzzer", "X-MS-CLIENT-PRINCIPAL-NAME": "fuzzer"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The worker functions stay off: a fuzzed registration is only recorded, never copied.
QUIET = {
    "AzureWebJobs.copy_worker.Disabled": "true",
    "AzureWebJobs.copy_poisoned.Disabled": "true",
    "AzureWebJobs.requeue_quiet_registrations.Disabled": "true",
}


@pytest.fixture(scope="module")
def fuzz_host(host_env: dict[str, str]) -> Iterator[LocalHost]:
    with LocalHost(host_env | QUIET) as host:
        yield host


def _operations(host: LocalHost) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{host.url}/api/v1.0/openapi.json")
    # The security scheme is Easy Auth's bearer token, which the local host stands in for with the
    # principal headers: no Authorization header is generated.
    loaded.config.generation.update(with_security_parameters=False)
    operations = []
    for result in loaded.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document holds an operation schemathesis cannot read
        operations.append(result.ok())
    return operations


REQUESTS_PER_MODE = 200  # valid and invalid: a few hundred requests in all, whatever the operations

BOUNDED = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _refused_only_by_rules_beyond_the_schema(response: Any) -> None:
    if response.status_code != 400:
        return
    errors = json.loads(response.content)["errors"]
    unexplained = [
        e for e in errors if not any(rule in f"{e['field']} {e['rule']}" for rule in RULES_BEYOND_THE_SCHEMA)
    ]
    assert not unexplained, f"a request the document calls valid was refused: {unexplained}"


def _fuzz(operation: Any, mode: GenerationMode, examples: int) -> int:
    """Run the operation's bounded cases of this mode; returns how many were sent."""
    definition = operation.definition.raw
    if (
        mode is GenerationMode.NEGATIVE
        and not definition.get("parameters")
        and "requestBody" not in definition
    ):
        return 0  # it takes nothing that could be invalid (the document, the signing keys)
    sent = 0

    @hypothesis.settings(BOUNDED, max_examples=examples)
    @hypothesis.given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        nonlocal sent
        response = case.call(headers=PRINCIPAL, timeout=30)
        sent += 1
        case.validate_response(response, checks=CHECKS)
        if mode is GenerationMode.POSITIVE:
            _refused_only_by_rules_beyond_the_schema(response)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # An operation that takes no parameter and no body (GET /webhooks) has no invalid form.
        if (
            mode is not GenerationMode.NEGATIVE
            or operation.body
            or operation.query
            or operation.path_parameters
        ):
            raise
    return sent


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_gets_a_5xx_every_answer_is_documented_and_valid_ones_are_accepted(
    fuzz_host: LocalHost, mode: GenerationMode
) -> None:
    operations = _operations(fuzz_host)
    assert len(operations) >= 9
    examples = max(5, REQUESTS_PER_MODE // len(operations))
    sent = {f"{op.method.upper()} {op.path}": _fuzz(op, mode, examples) for op in operations}
    assert 50 <= sum(sent.values()) <= REQUESTS_PER_MODE, sent  # it reached the API, within bounds
