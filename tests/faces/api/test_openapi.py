"""The OpenAPI document is honest: generated requests never get a 5xx or an off-schema answer.

Schemathesis reads /openapi.json from a live server (with a small MNIST dataset
loaded, so the documented examples hit real rows) and sends up to 30 generated
requests per operation, with the write token. Fetching from a URL is left out:
generated URLs would reach the network, and its refusals are tested by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.builders import write_mnist_pickle
from tests.faces.api.conftest import AUTH, LiveApi

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def api_schema(api: LiveApi, tmp_path: Path) -> schemathesis.BaseSchema:
    data = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (20, 5, 5)).read_bytes()
    assert api.upload("mnist", "mnist.pkl.gz", data).status_code == 201
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json").exclude(path_regex=r"/sources$")


def test_generated_requests(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand, not by `schemathesis.pytest.from_fixture`: its lazy loader reads
    # `request.node._nodeid`, which pytest 9 no longer has.
    results = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert len(operations) >= 6
    statuses: list[int] = []
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            *api_schema.get_strategies_from_examples(operation),
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)
            statuses.append(response.status_code)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
    assert len(statuses) >= 10 * len(operations)
    assert {200, 404, 422} <= set(statuses), sorted(set(statuses))


def test_every_error_is_documented_as_a_problem(api: LiveApi) -> None:
    document = api.client.get("/openapi.json").json()
    assert "ProblemDetails" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"].get("200") or operation["responses"].get("201"), path
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        code,
                    )
                else:
                    assert "application/json" in response.get("content", {}), (method, path)
    upload = document["paths"]["/datasets/{name}/files"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
