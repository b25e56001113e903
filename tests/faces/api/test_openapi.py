"""The OpenAPI document is honest: generated requests never get a 5xx or an off-schema answer.

Schemathesis reads /openapi.json from a live server (with a small MNIST dataset
and one trained run, so the documented examples hit real rows and a real
leaderboard) and sends up to 30 generated requests per operation, with the
write token. Left out: fetching from a URL (generated URLs would reach the
network), and submitting runs, predicting and scoring (generated bodies would
queue training runs or send megabytes of pixels); those are tested by hand in
test_runs, test_models and test_score.
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
from tests.faces.api.conftest import AUTH, LiveApi, train_run

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
    train_run(api.client, dataset="mnist", model="logistic")
    return (
        schemathesis.openapi.from_url(f"{api.url}/openapi.json")
        .exclude(path_regex=r"/sources$")
        .exclude(method="POST", path_regex=r"^/(runs|models/)")
    )


def test_generated_requests(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand, not by `schemathesis.pytest.from_fixture`: its lazy loader reads
    # `request.node._nodeid`, which pytest 9 no longer has.
    results = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert len(operations) >= 11
    assert {"/runs", "/runs/{run_id}", "/datasets/{name}/leaderboard"} <= {
        op.path for op in operations
    }
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


NOT_JSON = {"/runs/{run_id}/plots/{plot}.png": "image/png", "/models/{ref}/score": "text/csv"}


def test_every_error_is_documented_as_a_problem(api: LiveApi) -> None:
    document = api.client.get("/openapi.json").json()
    assert "ProblemDetails" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"200", "201", "202"} & set(operation["responses"]), path
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        code,
                    )
                else:
                    media = NOT_JSON.get(path, "application/json")
                    assert media in response.get("content", {}), (method, path)
    upload = document["paths"]["/datasets/{name}/files"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    score = document["paths"]["/models/{ref}/score"]["post"]
    assert "multipart/form-data" in score["requestBody"]["content"]
    predict = document["paths"]["/models/{ref}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "image/png"}
    assert "202" in document["paths"]["/runs"]["post"]["responses"]
