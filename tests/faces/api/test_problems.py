"""Every Headwater error has one HTTP status, and no message leaks a server path."""

from __future__ import annotations

import pytest

import headwater.errors as errors
from headwater.faces.api.problems import STATUS_BY_ERROR, file_name, scrub, status_of

ERROR_CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type)
    and getattr(errors, name) is not errors.HeadwaterError
]


@pytest.mark.parametrize("kind", ERROR_CLASSES, ids=lambda k: k.__name__)
def test_every_error_in_the_tree_has_a_status(kind: type[errors.HeadwaterError]) -> None:
    assert any(issubclass(kind, mapped) for mapped, _, _ in STATUS_BY_ERROR), kind


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.UploadTooLarge(10, "a.csv"), 413),
        (errors.UnsafeInput("x"), 422),
        (errors.SchemaError("x"), 422),
        (errors.QualityCheckFailed("x"), 422),
        (errors.DatasetNotFound("x"), 404),
        (errors.RunNotFound("r1"), 404),
        (errors.ConfigError("x"), 422),
        (errors.QueueFull(4), 429),
        (errors.AccessDenied("s3://b/k", "read the file"), 403),
        (errors.WarehouseError("x"), 503),
        (errors.IntegrityError("x"), 409),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_statuses(error: errors.HeadwaterError, status: int) -> None:
    assert status_of(error)[0] == status


def test_paths_are_cut_to_their_name() -> None:
    text = "cannot open /srv/hw/home/warehouse.duckdb: locked; see http://host/docs/x.html"
    assert scrub(text) == "cannot open warehouse.duckdb: locked; see http://host/docs/x.html"
    assert file_name("/tmp/stage/upload-1/orders.csv") == "orders.csv"
    assert file_name("https://example.com/data/mnist.pkl.gz?x=1") == "mnist.pkl.gz"
    assert file_name(None) is None
