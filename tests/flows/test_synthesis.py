"""Synthesis as a flow, on both warehouse backends: the rows, the report, the lineage, refusals."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from headwater.errors import ConfigError, DataError, DatasetNotFound, NotFound
from headwater.flows.synthesis import SynthesisRequest, synthesis_report_of, synthesize
from headwater.flows.workspace import Workspace
from headwater.learning.synth.example import mixed_table
from headwater.storage.warehouse import runs as registry


def _write(path: Path, table: pa.Table) -> Path:
    pacsv.write_csv(table, path)
    return path


@pytest.fixture
def people(workspace: Workspace, tmp_path: Path) -> Workspace:
    table = mixed_table(1500, seed=2)
    ids = pa.array([f"c-{i:06d}-{(i * 7919) % 10007}" for i in range(table.num_rows)])
    table = table.append_column("customer_id", ids)
    table = table.append_column("country", pa.array(["NL"] * table.num_rows))
    workspace.ingest(_write(tmp_path / "people.csv", table), dataset="people", label="segment")
    return workspace


def test_synthetic_rows_become_a_dataset_traced_to_the_run_and_the_source_batches(
    people: Workspace,
) -> None:
    report = synthesize(people, SynthesisRequest("people", "pca", 1200, "people_synth", seed=3))
    fidelity = report["fidelity"]
    assert isinstance(fidelity, dict)
    assert 85 <= float(fidelity["overall"]) <= 100
    assert report["privacy"]["exact_copies"] == 0  # type: ignore[index]
    assert report["left_out"] == {"customer_id": "identifier: a different value in every row"}

    made = people.dataset("people_synth")
    assert made.rows == 1200
    assert made.label_column == "segment"
    assert "customer_id" not in made.columns  # an identifier is never copied
    assert made.columns["signup"].startswith("date")
    assert {r["country"] for r in people.rows("people_synth", limit=50)} == {"NL"}
    (batch,) = made.batches
    assert batch.source == f"synthesis:{report['run_id']}"

    again = synthesis_report_of(people, "people_synth")
    assert again["fidelity"] == report["fidelity"]
    lineage = again["lineage"]
    assert isinstance(lineage, dict)
    source_batches = [b.batch_id for b in people.dataset("people").batches]
    assert lineage["source"] == "people"
    assert lineage["seed"] == 3
    assert lineage["batches"] == {"holdout": source_batches, "train": source_batches}
    run = registry.get_run(people.warehouse, str(report["run_id"]))
    assert run.status == "succeeded"
    assert run.model == "synth-pca"
    assert run.params["method"] == "pca"
    assert Path(str(again["html"])).read_text().startswith("<!doctype html>")
    assert Path(str(again["plot"])).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("request_", "error", "match"),
    [
        (SynthesisRequest("people", "gan", 10, "x"), ConfigError, "unknown synthesis method 'gan'"),
        (SynthesisRequest("people", "pca", 0, "x"), ConfigError, "--rows must be 1 or more"),
        (SynthesisRequest("people", "pca", 15001, "x"), ConfigError, "pass --force"),
        (SynthesisRequest("people", "pca", 10, "people"), ConfigError, "already exists"),
        (SynthesisRequest("nobody", "pca", 10, "x"), DatasetNotFound, "nobody"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_registered(
    people: Workspace, request_: SynthesisRequest, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        synthesize(people, request_)
    assert registry.list_runs(people.warehouse) == []
    assert [d.name for d in people.datasets()] == ["people"]


def test_a_dataset_of_one_row_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(_write(tmp_path / "one.csv", mixed_table(1)), dataset="one")
    with pytest.raises(DataError, match="1 rows: nothing to learn"):
        synthesize(workspace, SynthesisRequest("one", "pca", 10, "x"))
    assert registry.list_runs(workspace.warehouse) == []


def test_a_dataset_not_made_by_synthesis_has_no_report(people: Workspace) -> None:
    with pytest.raises(NotFound, match="was not made by synthesis"):
        synthesis_report_of(people, "people")


def test_a_real_world_csv_leaves_out_its_id_and_free_text_and_keeps_its_dates(
    workspace: Workspace, tmp_path: Path
) -> None:
    from tests.builders import write_customers_csv

    workspace.ingest(write_customers_csv(tmp_path / "c.csv", 300), dataset="c", label="churned")
    report = synthesize(workspace, SynthesisRequest("c", "copula", 200, "c_fake", seed=1))
    left_out = report["left_out"]
    assert isinstance(left_out, dict)
    assert left_out["customer_id"] == "identifier: a different value in every row"
    assert left_out["Notes (free text)"].startswith("free text")
    made = workspace.dataset("c_fake")
    assert "customer_id" not in made.columns and "Notes (free text)" not in made.columns
    assert made.columns["signup date"].startswith("date")
    assert made.rows == 200


def test_an_image_dataset_is_synthesized_per_class_and_ingested_as_images(
    workspace: Workspace, tmp_path: Path
) -> None:
    from tests.builders import write_small_digits

    workspace.ingest(write_small_digits(tmp_path / "digits.npz"), dataset="digits")
    report = synthesize(workspace, SynthesisRequest("digits", "pca", 500, "digits_fake", seed=1))
    assert report["privacy"]["exact_copies"] == 0  # type: ignore[index]
    utility = report["utility"]
    assert isinstance(utility, dict)
    assert utility["tstr_accuracy"] > 0.6  # a forest learns digits from synthetic ones
    made = workspace.dataset("digits_fake")
    assert made.kind == "image" and made.rows == 500
    assert made.splits == {"train": 500}
    assert set(made.labels["train"]) <= {str(d) for d in range(10)}
    again = synthesis_report_of(workspace, "digits_fake")
    assert str(again["plot"]).endswith("samples.png")
    with pytest.raises(ConfigError, match="for images choose pca or vae"):
        synthesize(workspace, SynthesisRequest("digits", "copula", 10, "nope"))
    runs = len(registry.list_runs(workspace.warehouse))
    with pytest.raises(ConfigError, match="more than 10x the"):
        synthesize(workspace, SynthesisRequest("digits", "pca", 10_000_000, "nope"))
    assert len(registry.list_runs(workspace.warehouse)) == runs  # refused before a run
