"""Synthesizers: one interface, types restored, reproducible, saved without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from headwater.errors import ConfigError, DataError, ModelNotFitted, SchemaError
from headwater.learning.synth import METHODS, Synthesizer, load_synthesizer, make_synthesizer
from headwater.learning.synth.example import mixed_table
from headwater.learning.synth.guard import guarded_sample

FAST = {"pca": {}, "copula": {}, "vae": {"epochs": 3}}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return mixed_table(800, seed=5)


@pytest.mark.parametrize("method", list(METHODS))
def test_sample_keeps_types_ranges_and_missing_rate(method: str, table: pa.Table) -> None:
    made = make_synthesizer(method, **FAST[method]).fit(table, label="segment").sample(2000, seed=1)
    assert made.schema == table.schema  # integers stay integers, dates stay dates
    for name in ("age", "visits", "income", "signup"):
        low, high = pc.min_max(table.column(name)).values()
        got_low, got_high = pc.min_max(made.column(name)).values()
        assert got_low.as_py() >= low.as_py() and got_high.as_py() <= high.as_py()
    assert set(made.column("region").to_pylist()) <= set(table.column("region").to_pylist())
    missing = made.column("income").null_count / made.num_rows
    assert 0.01 < missing < 0.06  # 3% missing in the source


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_rows_and_saved_files_reload(
    method: str, table: pa.Table, tmp_path: Path
) -> None:
    synth = make_synthesizer(method, **FAST[method]).fit(table, label="segment")
    first = synth.sample(300, seed=7)
    assert first.equals(synth.sample(300, seed=7))
    assert not first.equals(synth.sample(300, seed=8))
    hashes = synth.save(tmp_path)
    assert sorted(hashes) == ["synth.json", "synth.safetensors"]
    assert load_synthesizer(tmp_path).sample(300, seed=7).equals(first)


def test_a_constant_column_is_kept_constant(table: pa.Table) -> None:
    with_constant = table.append_column("country", pa.array(["NL"] * table.num_rows))
    made = make_synthesizer("pca").fit(with_constant).sample(50, seed=0)
    assert made.column("country").to_pylist() == ["NL"] * 50


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="unknown synthesis method 'gan'; choose one of: pca"):
        make_synthesizer("gan")
    with pytest.raises(ModelNotFitted):
        make_synthesizer("pca").sample(5)
    with pytest.raises(SchemaError, match="at least 2 rows"):
        make_synthesizer("pca").fit(mixed_table(1))
    constant = pa.table({"a": [1, 1, 1], "b": ["x", "x", "x"]})
    with pytest.raises(SchemaError, match="nothing to synthesize"):
        make_synthesizer("copula").fit(constant)
    with pytest.raises(ConfigError, match="variance"):
        make_synthesizer("pca", variance=1.5).fit(mixed_table(20))


def test_vae_reports_each_epoch(table: pa.Table) -> None:
    seen: list[int] = []
    make_synthesizer("vae", epochs=2).fit(
        table, label="segment", on_epoch=lambda e, m: seen.append(e)
    )
    assert seen == [1, 2]


def test_vae_keeps_the_label_shares(table: pa.Table) -> None:
    made = make_synthesizer("vae", epochs=2).fit(table, label="segment").sample(3000, seed=0)
    real = np.unique(table.column("segment").to_numpy(zero_copy_only=False), return_counts=True)
    got = np.unique(made.column("segment").to_numpy(zero_copy_only=False), return_counts=True)
    assert list(real[0]) == list(got[0])
    assert np.allclose(real[1] / table.num_rows, got[1] / 3000, atol=0.03)


class _Copier(Synthesizer):
    """Hands back training rows: what the privacy guard must catch."""

    method = "copier"

    def __init__(self, rows: pa.Table) -> None:
        self.rows, self.seed = rows, 0

    def sample(self, n: int, seed: int = 0) -> pa.Table:
        return self.rows.take(np.random.default_rng(seed).integers(0, self.rows.num_rows, n))


def test_privacy_guard_refuses_a_synthesizer_that_copies(table: pa.Table) -> None:
    with pytest.raises(DataError, match="privacy guard dropped"):
        guarded_sample(_Copier(table), table, 100, seed=0, columns=table.column_names)


def test_privacy_guard_keeps_rows_apart_from_training_rows(table: pa.Table) -> None:
    synth = make_synthesizer("pca").fit(table, label="segment")
    rows, said = guarded_sample(synth, table, 500, seed=0, columns=table.column_names)
    assert rows.num_rows == 500
    assert said["drawn"] >= 500
