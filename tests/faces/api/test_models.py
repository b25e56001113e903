"""``POST /models/{ref}/predict``: JSON rows, pixel rows, base64 or raw PNG; hostile bodies."""

from __future__ import annotations

import base64
import io
import pickle

import numpy as np
import pytest
from PIL import Image

from tests.builders import digits
from tests.faces.api.conftest import Trained

IMAGES, _ = digits(3, seed=7)


def png(image: np.ndarray, *, fmt: str = "PNG") -> bytes:
    sink = io.BytesIO()
    Image.fromarray(image).save(sink, format=fmt)
    return sink.getvalue()


def test_pixels_give_labels_and_probabilities(trained: Trained) -> None:
    client = trained.api.client
    answer = client.post(
        f"/models/{trained.image_run}/predict", json={"pixels": IMAGES.reshape(3, -1).tolist()}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["run_id"] == trained.image_run
    assert body["classes"] == [str(c) for c in range(10)]
    assert len(body["predictions"]) == 3
    for prediction in body["predictions"]:
        probabilities = prediction["probabilities"]
        assert list(probabilities) == body["classes"]
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-4)
        assert prediction["label"] == max(probabilities, key=probabilities.__getitem__)
    scaled = client.post(
        f"/models/{trained.image_run}/predict",
        json={"pixels": (IMAGES.reshape(3, -1) / 255).tolist()},
    )
    for ours, theirs in zip(scaled.json()["predictions"], body["predictions"], strict=True):
        assert ours["label"] == theirs["label"]
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)


def test_a_png_raw_or_base64_is_the_same_image(trained: Trained) -> None:
    client = trained.api.client
    url = f"/models/{trained.image_run}/predict"
    pixels = client.post(url, json={"pixels": [IMAGES[0].reshape(-1).tolist()]}).json()
    raw = client.post(url, content=png(IMAGES[0]), headers={"Content-Type": "image/png"})
    assert raw.status_code == 200, raw.text
    encoded = client.post(url, json={"image_base64": base64.b64encode(png(IMAGES[0])).decode()})
    assert raw.json() == encoded.json() == pixels


def test_aliases_need_a_dataset_and_serve_its_runs(trained: Trained) -> None:
    client = trained.api.client
    image = {"pixels": [[0] * 784]}
    for alias in ("best", "latest"):
        served = client.post(f"/models/{alias}/predict", params={"dataset": "mnist"}, json=image)
        assert served.status_code == 200, served.text
    no_dataset = client.post("/models/best/predict", json=image)
    assert no_dataset.status_code == 422
    assert "needs a dataset" in no_dataset.json()["detail"]
    nothing = client.post("/models/best/predict", params={"dataset": "nothing_here"}, json=image)
    assert nothing.status_code == 404


def test_table_rows_are_cast_to_what_the_model_was_trained_on(trained: Trained) -> None:
    client = trained.api.client
    rows = [
        {"id": 3, "name": "item 3", "price": 4.5, "when": "2024-01-04 10:00:00"},
        {"id": 4, "name": "never seen", "price": None, "when": None},
    ]
    answer = client.post(f"/models/{trained.table_run}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] != []
    assert answer.json()["classes"] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"rows": [{"id": 1, "name": "a", "price": 1.0}]}, "when", "has no when"),
        (
            {"rows": [{"id": 1, "name": "a", "price": "x", "when": None}]},
            "price",
            "expected a number",
        ),
        (
            {"rows": [{"id": 1, "name": "a", "price": True, "when": None}]},
            "price",
            "got true",
        ),
        (
            {"rows": [{"id": 1, "name": "a", "price": 1.0, "when": None, "colour": "red"}]},
            "colour",
            "takes no 'colour'",
        ),
        (
            {"rows": [{"id": 1, "name": "a", "price": 1.0, "when": "not a time"}]},
            "when",
            "cannot read",
        ),
        ({"pixels": [[1.0, 2.0]]}, "pixels", "takes table rows"),
        ({"rows": []}, "rows", "at least one row"),
    ],
)
def test_bad_rows_are_422_naming_the_field(
    trained: Trained, body: dict[str, object], field: str, says: str
) -> None:
    refused = trained.api.client.post(f"/models/{trained.table_run}/predict", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert says in refused.json()["detail"]


def _garbage_pngs() -> list[tuple[str, bytes, str]]:
    image = IMAGES[0]
    whole = png(image)
    return [
        ("random bytes", bytes(range(256)) * 4, "not a PNG"),
        ("empty", b"", "not a PNG"),
        ("jpeg", png(np.stack([image] * 3, axis=-1), fmt="JPEG"), "not a PNG"),
        ("truncated", whole[: len(whole) // 2], "truncated or corrupt"),
        ("wrong size", png(np.zeros((10, 12), dtype=np.uint8)), "12x10 pixels; this model"),
        ("too big", png(np.zeros((280, 280), dtype=np.uint8)), "takes 28x28 images"),
        (
            "pickle",
            pickle.dumps({"x": 1}),
            "not a PNG",
        ),
    ]


@pytest.mark.parametrize(("kind", "content", "says"), _garbage_pngs(), ids=lambda v: str(v)[:12])
def test_anything_but_a_png_of_the_right_size_is_422(
    trained: Trained, kind: str, content: bytes, says: str
) -> None:
    client = trained.api.client
    url = f"/models/{trained.image_run}/predict"
    raw = client.post(url, content=content, headers={"Content-Type": "image/png"})
    assert raw.status_code == 422, (kind, raw.text)
    assert says in raw.json()["detail"], raw.json()
    encoded = client.post(url, json={"image_base64": base64.b64encode(content).decode()})
    assert encoded.status_code == 422, (kind, encoded.text)
    assert encoded.json()["field"] == "image_base64"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"pixels": [[0] * 783]}, "needs 784 numbers"),
        ({"pixels": [[0] * 784, [0] * 785]}, "row 1"),
        ({"pixels": [[300] * 784]}, "0..255"),
        ({"pixels": [[-1] * 784]}, "0..1"),
        ({"pixels": [[1.5] * 784]}, "whole numbers"),
        ({"pixels": []}, "at least one image"),
        ({"pixels": [[0] * 784], "rows": [{}]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"rows": [{"a": 1}]}, "takes 28x28 images"),
        ({"image_base64": "***not base64***"}, "base64"),
        ({"pixels": [["a"] * 784]}, "number"),
        ({"pixels": [[0] * 784], "extra": 1}, "extra"),
        ({"pixels": [[0] * 783 + [True]]}, "pixels.0.783"),
    ],
)
def test_bad_pixel_bodies_are_422(trained: Trained, body: dict[str, object], says: str) -> None:
    refused = trained.api.client.post(f"/models/{trained.image_run}/predict", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert says in refused.json()["detail"], refused.json()


def test_too_many_rows_is_413_naming_the_limit(trained: Trained) -> None:
    client = trained.api.client
    limit = trained.api.config.max_predict_rows
    refused = client.post(
        f"/models/{trained.image_run}/predict", json={"pixels": [[0] * 784] * (limit + 1)}
    )
    assert refused.status_code == 413, refused.text
    problem = refused.json()
    assert problem["limit"] == limit and problem["setting"] == "HEADWATER_API_MAX_PREDICT_ROWS"
    rows = [{"id": 1, "name": "a", "price": 1.0, "when": None}] * (limit + 1)
    assert (
        client.post(f"/models/{trained.table_run}/predict", json={"rows": rows}).status_code == 413
    )
    at_limit = client.post(
        f"/models/{trained.image_run}/predict", json={"pixels": [[0] * 784] * limit}
    )
    assert at_limit.status_code == 200 and len(at_limit.json()["predictions"]) == limit


def test_a_body_over_the_request_limit_is_413(trained: Trained) -> None:
    huge = b'{"pixels": [[' + b"0," * (trained.api.config.max_request_bytes // 2) + b"0]]}"
    refused = trained.api.client.post(
        f"/models/{trained.image_run}/predict",
        content=huge,
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 413
    assert refused.json()["setting"] == "HEADWATER_API_MAX_REQUEST_BYTES"


@pytest.mark.parametrize(
    ("content", "media", "status"),
    [
        (b"{not json", "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b"pixels=1", "application/x-www-form-urlencoded", 415),
        (b"", "", 415),
    ],
)
def test_malformed_bodies(trained: Trained, content: bytes, media: str, status: int) -> None:
    refused = trained.api.client.post(
        f"/models/{trained.image_run}/predict", content=content, headers={"Content-Type": media}
    )
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("ref", ["000000000000", "nope", "best-not"])
def test_unknown_runs_are_404(trained: Trained, ref: str) -> None:
    client = trained.api.client
    answer = client.post(f"/models/{ref}/predict", json={"pixels": [[0] * 784]})
    assert answer.status_code == 404, answer.text
    score = client.post(f"/models/{ref}/score", files={"file": ("a.csv", b"a\n1\n", "text/csv")})
    assert score.status_code == 404, score.text


def test_bad_references_are_422(trained: Trained) -> None:
    answer = trained.api.client.post("/models/a%20b/predict", json={"pixels": [[0] * 784]})
    assert answer.status_code == 422
