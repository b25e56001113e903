"""The error tree: every class has an exit code and an HTTP status, and one way to say where."""

from __future__ import annotations

import pytest

import headwater.errors as errors
from headwater.faces.api.problems import status_of
from headwater.faces.cli.app import exit_code

ERROR_CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type)
    and getattr(errors, name) is not errors.HeadwaterError
]


def _example(kind: type[errors.HeadwaterError]) -> errors.HeadwaterError:
    examples: dict[type[errors.HeadwaterError], errors.HeadwaterError] = {
        errors.AccessDenied: errors.AccessDenied("s3://bucket/key", "read the file"),
        errors.ArtifactTampered: errors.ArtifactTampered("m.onnx", expected="a", actual="b"),
        errors.DatasetNotFound: errors.DatasetNotFound("x"),
        errors.LocationNotFound: errors.LocationNotFound("s3://b/k", "the key"),
        errors.ModelNotFitted: errors.ModelNotFitted("MLPClassifier"),
        errors.QueueFull: errors.QueueFull(4),
        errors.RunNotFound: errors.RunNotFound("r1"),
        errors.StorageError: errors.StorageError("s3://b", "timed out"),
        errors.UploadTooLarge: errors.UploadTooLarge(10, "a.csv"),
    }
    return examples.get(kind) or kind("x")


@pytest.mark.parametrize("kind", ERROR_CLASSES, ids=lambda k: k.__name__)
def test_every_error_has_an_exit_code_from_the_readme_table(
    kind: type[errors.HeadwaterError],
) -> None:
    assert exit_code(_example(kind)) in {2, 3, 4, 5, 6}


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        (errors.ConfigError, 2, 422),
        (errors.ModelNotFitted, 2, 409),
        (errors.DatasetNotFound, 3, 404),
        (errors.LocationNotFound, 3, 404),
        (errors.FormatError, 4, 422),
        (errors.UploadTooLarge, 4, 413),
        (errors.WarehouseError, 5, 503),
        (errors.StorageError, 5, 503),
        (errors.IntegrityError, 5, 409),
        (errors.ArtifactTampered, 5, 409),
        (errors.QueueFull, 5, 429),
        (errors.AccessDenied, 6, 403),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_exit_code_and_status(kind: type[errors.HeadwaterError], code: int, status: int) -> None:
    error = _example(kind)
    assert (exit_code(error), status_of(error)[0]) == (code, status)


def test_access_denied_is_not_a_bad_argument() -> None:
    assert not issubclass(errors.AccessDenied, errors.ConfigError)


def test_locate_builds_file_row_field() -> None:
    assert errors.locate("orders.csv", 17, "amount") == "orders.csv:17 field 'amount': "
    assert errors.locate(None, 3, "x") == "row 3 field 'x': "
    assert errors.locate("a.csv") == "a.csv: "
    assert errors.locate(None) == ""
    error = errors.SchemaError("expected a number", path="orders.csv", row=2, field="price")
    assert str(error) == "orders.csv:2 field 'price': expected a number"
