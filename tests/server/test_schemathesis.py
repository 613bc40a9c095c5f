"""schemathesis against the app's own OpenAPI spec: every operation answers generated requests,
valid and invalid, without a server error, with a documented status and a body that fits its
schema. The app serves the tiny real model and a real index (tests/server/conftest.py).

Cases come from each operation's Hypothesis strategy (``APIOperation.as_strategy``):
schemathesis' pytest loader ``from_fixture`` reads ``request.node._nodeid``, which pytest 9 no
longer has."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

EXAMPLES = 20
"""Generated requests per operation and mode: bounded, so the whole module takes seconds."""
OPERATIONS = [
    ("POST", "/predict"),
    ("GET", "/search"),
    ("GET", "/faces/{face_id}/image"),
    ("GET", "/faces/{face_id}/thumbnail"),
    ("GET", "/health"),
]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
RUNS = [(*operation, GenerationMode.POSITIVE) for operation in OPERATIONS] + [
    (*operation, GenerationMode.NEGATIVE) for operation in OPERATIONS if operation[1] != "/health"
]
"""Valid requests to every operation; invalid ones to those that take parameters."""


@pytest.fixture(scope="session")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's OpenAPI spec, called in-process through ASGI."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_spec_lists_exactly_the_tested_operations(api_schema: schemathesis.BaseSchema) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_generated_requests_get_documented_answers(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_within_the_spec(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    answers_within_the_spec()
