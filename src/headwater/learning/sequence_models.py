"""An LSTM over sequences of events (who typed this?), trained packed, served as ONNX.

Input: each sequence as ``(T, 2)`` float32 rows (channel 0 a standardised interval,
channel 1 the event's symbol code, 0 for one never seen in training), padded to the
longest of a batch, with its true length (`headwater.data.sequence_features`). The
symbol goes through an embedding, is joined to the interval, and one LSTM layer reads
the sequence; the hidden state after the last *real* event gives the class.

Training packs the batch (``pack_padded_sequence``), so padding costs nothing and never
enters the state. The exported graph reads the padded batch and takes the output at
``length - 1`` instead: for a one-way LSTM that output has seen exactly the real events,
so both give the same numbers (a test checks it), and ONNX gets a plain ``LSTM`` node
with dynamic batch and time axes. Files as every model's: ``model.onnx``,
``weights.safetensors`` and ``params.json`` (`save_sequence_model`), hashes checked on load.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt
import onnx
import torch
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from headwater.errors import FormatError, ModelNotFitted, SchemaError
from headwater.learning.artifacts import (
    CLASSES_KEY,
    OPSET,
    PARAMS_FILE,
    TASK_KEY,
    WEIGHTS_FILE,
    _quiet_exporter,
    sha256_bytes,
    verified_session,
)
from headwater.learning.base import FloatArray, LabelArray, encode_labels
from headwater.learning.params import validate_params
from headwater.learning.train import reproducible

__all__ = [
    "LENGTHS_NAME",
    "SEQUENCE_ESTIMATORS",
    "LSTMClassifier",
    "SequencePredictor",
    "save_sequence_model",
]

INPUT_NAME = "input"
LENGTHS_NAME = "lengths"
OUTPUT_NAME = "probabilities"
ONNX_FILE = "model.onnx"

EpochFn = Callable[[int, dict[str, float]], None]


class LSTMNet(nn.Module):
    """Embedding of the symbol, joined to the interval, one LSTM layer, a linear head."""

    def __init__(
        self, n_symbols: int, embedding: int, hidden: int, n_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_symbols + 1, embedding)  # code 0: never seen in training
        self.lstm = nn.LSTM(1 + embedding, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def _steps(self, x: torch.Tensor) -> torch.Tensor:
        codes = x[:, :, 1].long().clamp(0, self.embed.num_embeddings - 1)
        return torch.cat([x[:, :, :1], self.embed(codes)], dim=2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from the packed batch (training and the fitted model's own predictions)."""
        packed = pack_padded_sequence(
            self._steps(x), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (state, _) = self.lstm(packed)
        logits: torch.Tensor = self.head(self.drop(state[-1]))
        return logits

    def padded_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from the padded batch: the output at each sequence's last real event."""
        out, _ = self.lstm(self._steps(x))
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
        logits: torch.Tensor = self.head(out.gather(1, last).squeeze(1))
        return logits


class _Probabilities(nn.Module):
    def __init__(self, net: LSTMNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net.padded_logits(x, lengths), dim=1)


class LSTMClassifier:
    """Classify whole sequences; ``__init__`` only stores (the parameters are `LSTMParams`)."""

    name = "lstm"
    task = "classification"

    def __init__(
        self,
        hidden: int = 64,
        embedding: int = 8,
        epochs: int = 60,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        dropout: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.hidden, self.embedding, self.epochs = hidden, embedding, epochs
        self.batch_size, self.learning_rate, self.dropout = batch_size, learning_rate, dropout
        self.seed = seed

    def get_params(self) -> dict[str, int | float]:
        return {
            "hidden": self.hidden, "embedding": self.embedding, "epochs": self.epochs,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate,
            "dropout": self.dropout, "seed": self.seed,
        }  # fmt: skip

    def require_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ModelNotFitted(type(self).__name__)

    def fit(
        self,
        inputs: FloatArray,
        lengths: npt.NDArray[np.int64],
        y: LabelArray,
        *,
        n_symbols: int,
        on_epoch: EpochFn | None = None,
    ) -> Self:
        """Adam on cross-entropy, shuffled mini-batches, learning rate decayed (cosine)."""
        validate_params(self.name, self.get_params(), owner=type(self).__name__, strict=True)
        _check(inputs, lengths)
        classes, codes = encode_labels(np.asarray(y, dtype=np.int64), type(self).__name__)
        # one thread: a small recurrent net gains nothing from two, and busy-waiting
        # threads on a loaded machine made each step 20 times slower
        with reproducible(self.seed, 1):
            net = LSTMNet(n_symbols, self.embedding, self.hidden, len(classes), self.dropout)
            self.history_ = _train(net, inputs, lengths, codes, self, on_epoch)
        self.model_, self.classes_, self.n_symbols_ = net.eval(), classes, n_symbols
        return self

    def predict_proba(self, inputs: FloatArray, lengths: npt.NDArray[np.int64]) -> FloatArray:
        self.require_fitted()
        _check(inputs, lengths)
        with torch.no_grad():
            logits = self.model_(torch.from_numpy(inputs), torch.from_numpy(lengths))
        return torch.softmax(logits, dim=1).numpy().astype(np.float32)

    def predict(self, inputs: FloatArray, lengths: npt.NDArray[np.int64]) -> LabelArray:
        labels: LabelArray = self.classes_[np.argmax(self.predict_proba(inputs, lengths), axis=1)]
        return labels

    def export_onnx(self) -> bytes:
        """The padded-batch graph with softmax, batch and time axes dynamic (module docstring).

        Through the TorchScript exporter: the ``torch.export`` one (``dynamo=True``, what
        the table models use) took 45 s for this small LSTM on two loaded cores against
        2.3 s here, and both write the same single ``LSTM`` node.
        """
        self.require_fitted()
        with tempfile.TemporaryDirectory() as folder, _quiet_exporter(), torch.no_grad():
            # its warning about batch sizes concerns initial states, which this graph never takes
            warnings.filterwarnings("ignore", "Exporting a model to ONNX", UserWarning)
            warnings.filterwarnings("ignore", "Converting a tensor to a Python", Warning)
            sink = Path(folder) / ONNX_FILE
            torch.onnx.export(
                _Probabilities(self.model_).eval(),
                (torch.zeros(2, 3, 2), torch.tensor([3, 2])),
                sink,
                dynamo=False,
                input_names=[INPUT_NAME, LENGTHS_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 1: "time"}, LENGTHS_NAME: {0: "batch"}},
                opset_version=OPSET,
            )
            proto = onnx.load_from_string(sink.read_bytes())
        classes = json.dumps(self.classes_.tolist())
        meta = {CLASSES_KEY: classes, TASK_KEY: self.task, "headwater.estimator": self.name}
        onnx.helper.set_model_props(proto, meta)
        data: bytes = proto.SerializeToString()
        return data


SEQUENCE_ESTIMATORS: dict[str, type[LSTMClassifier]] = {"lstm": LSTMClassifier}
"""Models that read whole sequences (beside `ESTIMATORS`, which read one row of features)."""


def _check(inputs: FloatArray, lengths: npt.NDArray[np.int64]) -> None:
    if inputs.ndim != 3 or inputs.shape[2] != 2 or len(lengths) != len(inputs):
        raise SchemaError(
            f"sequences must be (n, T, 2) with n lengths, got {inputs.shape} and {lengths.shape}",
            field="inputs",
        )
    if len(lengths) and (lengths.min() < 1 or lengths.max() > inputs.shape[1]):
        raise SchemaError("every length must be between 1 and T", field="lengths")


def _train(
    net: LSTMNet,
    inputs: FloatArray,
    lengths: npt.NDArray[np.int64],
    codes: LabelArray,
    params: LSTMClassifier,
    on_epoch: EpochFn | None,
) -> list[dict[str, float]]:
    x, n = torch.from_numpy(inputs), torch.from_numpy(lengths)
    target = torch.from_numpy(codes)
    optimiser = torch.optim.Adam(net.parameters(), lr=params.learning_rate)
    history: list[dict[str, float]] = []
    for epoch in range(1, params.epochs + 1):
        for group in optimiser.param_groups:
            decay = 0.5 * (1 + math.cos(math.pi * (epoch - 1) / params.epochs))
            group["lr"] = params.learning_rate * decay
        net.train()
        order = torch.randperm(len(x))
        total = correct = 0.0
        for start in range(0, len(x), params.batch_size):
            rows = order[start : start + params.batch_size]
            logits = net(x[rows], n[rows])
            loss = nn.functional.cross_entropy(logits, target[rows])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave it bare
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            total += float(loss.detach()) * len(rows)
            correct += float((logits.argmax(1) == target[rows]).sum())
        history.append({"loss": total / len(x), "accuracy": correct / len(x)})
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


def save_sequence_model(model: LSTMClassifier, folder: Path) -> dict[str, str]:
    """``model.onnx``, ``weights.safetensors`` and ``params.json``; returns their sha256s."""
    model.require_fitted()
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.model_.state_dict().items()}
    meta = {
        "format": "headwater.model", "version": 1, "estimator": model.name, "task": model.task,
        "params": model.get_params(), "classes": model.classes_.tolist(),
        "n_symbols": model.n_symbols_, "history": model.history_,
    }  # fmt: skip
    files = {
        ONNX_FILE: model.export_onnx(),
        WEIGHTS_FILE: save_safetensors(state),
        PARAMS_FILE: json.dumps(meta, indent=2, sort_keys=True).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: sha256_bytes(data) for name, data in files.items()}


class SequencePredictor:
    """A saved sequence model served by ONNX Runtime, its bytes checked against their sha256."""

    def __init__(
        self, path: Path | str, expected_sha256: str, *, run_id: str | None = None
    ) -> None:
        self.path = Path(path)
        self._session = verified_session(self.path, expected_sha256, run_id)
        meta = self._session.get_modelmeta().custom_metadata_map
        if CLASSES_KEY not in meta:
            raise FormatError(f"model has no {CLASSES_KEY} metadata", path=self.path)
        self.classes_: LabelArray = np.asarray(json.loads(meta[CLASSES_KEY]), dtype=np.int64)

    def predict_proba(self, inputs: FloatArray, lengths: npt.NDArray[np.int64]) -> FloatArray:
        _check(inputs, lengths)
        if not len(inputs):
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        feeds = {INPUT_NAME: inputs.astype(np.float32), LENGTHS_NAME: lengths.astype(np.int64)}
        (probabilities,) = self._session.run([OUTPUT_NAME], feeds)
        return np.asarray(probabilities, dtype=np.float32)
