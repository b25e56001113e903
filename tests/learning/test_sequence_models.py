"""The LSTM over sequences: packed training, the same numbers from its ONNX file, hashes checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ArtifactTampered, ConfigError, ModelNotFitted
from headwater.learning.sequence_models import (
    LSTMClassifier,
    SequencePredictor,
    save_sequence_model,
)


def _sequences(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two classes told apart by rhythm: class 7 slow then fast, class 9 the other way round."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 7, n).astype(np.int64)
    y = np.where(np.arange(n) % 2 == 0, 7, 9).astype(np.int64)
    inputs = np.zeros((n, 6, 2), dtype=np.float32)
    for i, length in enumerate(lengths):
        ramp = np.linspace(-1, 1, length) * (1 if y[i] == 7 else -1)
        inputs[i, :length, 0] = ramp + rng.normal(0, 0.1, length)
        inputs[i, :length, 1] = rng.integers(1, 5, length)
    return inputs, lengths, y


def test_the_lstm_learns_rhythm_and_its_onnx_file_answers_the_same(tmp_path: Path) -> None:
    inputs, lengths, y = _sequences()
    with pytest.raises(ModelNotFitted):
        LSTMClassifier().predict_proba(inputs, lengths)
    model = LSTMClassifier(hidden=8, embedding=2, epochs=25, batch_size=8, learning_rate=0.05)
    model.fit(inputs, lengths, y, n_symbols=4)
    assert (model.predict(inputs, lengths) == y).mean() >= 0.9
    hashes = save_sequence_model(model, tmp_path)
    served = SequencePredictor(tmp_path / "model.onnx", hashes["model.onnx"])
    assert served.classes_.tolist() == [7, 9]
    longer = np.concatenate([inputs, np.zeros((len(inputs), 5, 2), np.float32)], axis=1)
    packed = model.predict_proba(inputs, lengths)
    np.testing.assert_allclose(served.predict_proba(longer, lengths), packed, atol=1e-5)
    np.testing.assert_allclose(served.predict_proba(inputs[:1], lengths[:1]), packed[:1], atol=1e-5)
    (tmp_path / "model.onnx").write_bytes((tmp_path / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ArtifactTampered):
        SequencePredictor(tmp_path / "model.onnx", hashes["model.onnx"])


def test_bad_parameters_are_refused_by_name() -> None:
    inputs, lengths, y = _sequences(4)
    with pytest.raises(ConfigError, match="hidden"):
        LSTMClassifier(hidden=0).fit(inputs, lengths, y, n_symbols=4)
