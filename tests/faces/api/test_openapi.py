"""The OpenAPI document is honest: every schemathesis check passes against a live server.

Schemathesis reads /openapi.json from a live server (with a small MNIST dataset
and one trained run, so the documented examples hit real rows and a real
leaderboard) and runs all its checks (the CLI's ``--checks all``: server errors,
response schemas, status codes, headers, auth that is declared but not enforced,
negative data accepted, Allow headers, ...) through its engine, every phase
(examples, coverage, fuzzing, stateful), on a server that asks for the token on
reads too, so every operation's auth is tried. Left out: fetching from a URL
(generated URLs would reach the network): ``/datasets/{name}/sources`` and ``/sequences/...``.

A few answers depend on content no schema can state, so `positive_data_acceptance`
may see 422 there: a file whose bytes are not the format it is named as, rows for an
image model, a run that exists but cannot be served (failed, or another dataset's), a
synthesis asking for more than 10x the source's rows without ``force``.
``POST /runs`` is held to the check in full: each model's body schema is its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import ChecksConfig, SchemathesisConfig
from schemathesis.engine import events, from_schema

from tests.builders import write_mnist_pickle
from tests.faces.api.conftest import AUTH, LiveApi, Serve, train_run

EXAMPLES_PER_OPERATION = 10
CONTENT_DEPENDENT = (
    r"^/(datasets/[^/]+/files|models/[^/]+/(predict|score)|datasets/[^/]+/aliases/[^/]+|syntheses)$"
)
"""Where a schema-valid request may still be 422: see the module docstring."""


def _failures(schema: schemathesis.BaseSchema) -> list[str]:
    found: list[str] = []
    calls = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.recorder is not None:
            calls += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(
                            f"{event.recorder.label}: {check.name}: {failure.title}\n"
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.append(f"error: {event.info.message}")
    assert calls >= 100, f"only {calls} requests were made"
    return sorted(set(found))


@pytest.fixture
def guarded(serve: Serve, tmp_path: Path) -> LiveApi:
    api = serve(read_requires_token=True)
    api.client.headers.update(AUTH)
    data = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (20, 5, 5)).read_bytes()
    assert api.upload("mnist", "mnist.pkl.gz", data).status_code == 201
    train_run(api.client, dataset="mnist", model="logistic")
    return api


def test_every_check_passes(guarded: LiveApi) -> None:
    config = SchemathesisConfig.from_dict(
        {
            "headers": AUTH,
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
            },
            "operations": [
                {
                    "include-path-regex": CONTENT_DEPENDENT,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                "2xx",
                                "401",
                                "403",
                                "404",
                                "409",
                                "413",
                                "422",
                                "429",
                            ]
                        }
                    },
                }
            ],
        }
    )
    config.projects.override.checks.update(included_check_names=["all"])
    schema = schemathesis.openapi.from_url(f"{guarded.url}/openapi.json", config=config).exclude(
        path_regex=r"/sources$|^/sequences/"
    )
    assert isinstance(schema.config.checks, ChecksConfig)
    failures = _failures(schema)
    assert not failures, "\n\n".join(failures)


NOT_JSON = {
    "/runs/{run_id}/plots/{plot}.png": "image/png",
    "/sequences/predictions.csv": "text/csv",
    "/models/{ref}/score": "text/csv",
    "/syntheses/{run_id}/files/{name}": "text/html",
}


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
    accepted = upload["requestBody"]["content"]["multipart/form-data"]["encoding"]["file"]
    assert "text/csv" in accepted["contentType"]
    score = document["paths"]["/models/{ref}/score"]["post"]
    assert "multipart/form-data" in score["requestBody"]["content"]
    predict = document["paths"]["/models/{ref}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "image/png"}
    assert "202" in document["paths"]["/runs"]["post"]["responses"]
