"""The stratified sample keeps every class; trustworthiness reads a good map as good."""

from __future__ import annotations

import numpy as np

from headwater.learning.tsne import FLOOR, stratified_sample, trust


def test_the_sample_keeps_a_tiny_class_whole_and_shares_the_rest() -> None:
    labels = np.array(["big"] * 9000 + ["mid"] * 990 + ["tiny"] * 10, dtype=object)
    rows = stratified_sample(labels, 1000, seed=3)
    kept = dict(zip(*np.unique(labels[rows], return_counts=True), strict=True))
    assert len(rows) == 1000 and len(set(rows.tolist())) == 1000
    assert kept["tiny"] == 10  # all of it
    assert kept["mid"] >= FLOOR and kept["big"] > kept["mid"]
    assert (stratified_sample(labels, 1000, seed=3) == rows).all()
    assert len(stratified_sample(labels, 20_000)) == 10_000  # asked for more than there is


def test_trustworthiness_of_a_faithful_and_of_a_shuffled_map() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 5)).astype(np.float32) * [1, 1, 0.05, 0.05, 0.05]
    good, used = trust(features, features[:, :2] * 10)
    bad, _ = trust(features, rng.permutation(features[:, :2]))
    assert used == 300 and good > 0.85 > 0.6 > bad
