"""One scorer for every face, and one cache of models and aliases."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import FormatError, UnsafeInput
from headwater.flows import scoring
from headwater.flows.serving import ModelCache
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from tests.builders import write_csv, write_small_digits


@pytest.fixture
def orders(workspace: Workspace, tmp_path: Path) -> tuple[Workspace, str]:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 90), label="label")
    run = train(workspace, TrainRequest("orders", "logistic"))
    return workspace, run.run_id


def test_a_file_scores_the_same_written_streamed_and_previewed(
    orders: tuple[Workspace, str], tmp_path: Path
) -> None:
    workspace, run_id = orders
    new = write_csv(tmp_path / "new.csv", 40, start=500)
    out = tmp_path / "scores.csv"
    assert scoring.predict_file(workspace, run_id, new, out) == 40
    written = out.read_bytes()
    model = ModelCache(workspace).load(run_id)
    streamed = b"".join(
        scoring.csv_chunks(workspace, model, scoring.stage([new.read_bytes()], "new.csv"))
    )
    staged = scoring.stage(iter([new.read_bytes()[:100], new.read_bytes()[100:]]), "new.csv")
    preview = scoring.score_preview(workspace, model, staged, rows=5)
    assert not staged.path.exists()  # the staged upload is gone once scored
    as_rows = list(csv.reader(io.StringIO(written.decode())))
    assert list(csv.reader(io.StringIO(streamed.decode()))) == as_rows
    assert preview.csv == streamed and preview.total == 40
    assert [preview.header, *preview.rows] == as_rows[:6]


@pytest.mark.parametrize(
    ("name", "content", "error", "says"),
    [
        ("x.csv", b"\x80\x04K\x01.", UnsafeInput, "pickle"),
        ("x.npz", b"PK\x03\x04", FormatError, "CSV, TSV, JSON"),
        ("../x.csv", b"a\n1\n", UnsafeInput, ""),
    ],
)
def test_uploads_are_judged_by_the_ingest_readers(
    orders: tuple[Workspace, str], name: str, content: bytes, error: type[Exception], says: str
) -> None:
    workspace, run_id = orders
    model = ModelCache(workspace).load(run_id)
    with pytest.raises(error, match=says):
        staged = scoring.stage([content], name)
        list(scoring.csv_chunks(workspace, model, staged))


def test_one_cache_answers_hot_only_what_it_loaded(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    run = train(workspace, TrainRequest("digits", "logistic"))
    cache = ModelCache(workspace, alias_ttl_s=60)
    assert cache.hot(run.run_id, None) is None and cache.hot("best", "digits") is None
    served = cache.load("best", "digits")
    assert cache.hot("best", "digits") is served and cache.hot(run.run_id, None) is served
    assert cache.hot("best", "other") is None
    cache.invalidate()  # a run finished: the alias is looked up again, the model stays loaded
    assert cache.hot("best", "digits") is None and cache.hot(run.run_id, None) is served
    prediction = cache.predict("best", np.zeros((3, 8, 8), dtype=np.uint8), dataset="digits")
    assert prediction.run_id == run.run_id and len(prediction.labels) == 3
