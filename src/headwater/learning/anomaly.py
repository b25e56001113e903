"""Anomaly detection with an autoencoder: rows the model cannot rebuild are rows unlike its data.

:class:`AutoencoderDetector` learns to squeeze accepted rows (pixels in 0..1) through a
small bottleneck and back. A row is scored by how badly it comes back, and rows
scoring above ``threshold_`` (a quantile of the training rows' own scores, 0.99 by
default) are flagged.

The score is the *relative* reconstruction error
``||x - x̂||² / (||x||² + ||x̂||²)``, between 0 and 2, rather than the plain mean
squared error (kept as :meth:`AutoencoderDetector.reconstruction_error`). Background
is the easiest thing to rebuild, so under plain MSE an empty image is the most
"normal" row there is: on MNIST it ranks blank images below nearly every real
digit (ROC-AUC 0.0002 for blanks, the plain-MSE column of ``bench/anomaly.py``).
Dividing by the energy of the row and of its reconstruction makes the score
scale-free: a digit rebuilt well scores about 0.05, an empty row scores 1 (nothing
of the reconstruction is in the input), and inverted, noisy and random rows score
0.3-0.8.

Saved detectors follow :mod:`headwater.learning.artifacts`: ``model.onnx`` holds the
whole scoring graph (rows in, per-row score and MSE out, dynamic batch, threshold
in its metadata), ``weights.safetensors`` the torch weights, ``params.json`` the
rest; every file is checked against its sha256 before it is parsed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt
import onnx
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.nn import functional as F  # the name every PyTorch reader expects

from headwater.errors import ConfigError, FormatError, ModelNotFitted, SchemaError
from headwater.learning.artifacts import (
    ONNX_FILE,
    PARAMS_FILE,
    WEIGHTS_FILE,
    _quiet_exporter,
    read_verified,
    sha256_bytes,
    verified_session,
)
from headwater.learning.base import (
    FloatArray,
    ParamValue,
    as_features,
    check_features,
    check_float,
    check_int,
    check_optional_int,
)
from headwater.learning.params import MAX_SEED
from headwater.learning.plots import CORRECT, MISTAKE, _as_images, _save
from headwater.learning.sklearn_onnx import OPSET
from headwater.learning.train import EVAL_CHUNK, EpochCallback, reproducible

__all__ = [
    "AutoencoderDetector",
    "AutoencoderNet",
    "OnnxAnomalyScorer",
    "export_detector_onnx",
    "load_detector",
    "plot_anomaly_grid",
    "save_detector",
]

FORMAT = "headwater.anomaly"
VERSION = 1
INPUT_NAME = "input"
SCORE_NAME = "score"
MSE_NAME = "reconstruction_error"
THRESHOLD_KEY = "headwater.threshold"
#: keeps 0/0 defined: a row that is all zeros *and* rebuilt as exact zeros scores 0
EPSILON = 1e-12
BoolArray = npt.NDArray[np.bool_]
TILE_INCHES = 1.3  # width of one image in the grid
CAPTION_INCHES = 0.32  # two lines of 7-point text


class AutoencoderNet(nn.Module):
    """rows → dense(hidden) → code(latent) → dense(hidden) → sigmoid rows in 0..1.

    The code has no activation: in trials for ``bench/anomaly.py`` a linear bottleneck
    rebuilt MNIST better than a ReLU or unit-sphere one in the same 5 epochs (test
    MSE 0.012 against 0.017) and separated the corruptions at least as well.
    """

    def __init__(self, n_features: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_features)
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.encoder(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def row_scores(x: torch.Tensor, rebuilt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(relative error, mean squared error) per row; the one formula eager and ONNX share."""
    squared = (rebuilt - x).pow(2).sum(dim=1)
    energy = x.pow(2).sum(dim=1) + rebuilt.pow(2).sum(dim=1) + EPSILON
    return squared / energy, squared / x.shape[1]


class _ScoreGraph(nn.Module):
    """What ``model.onnx`` computes: rows in, (score, reconstruction error) per row out."""

    def __init__(self, net: AutoencoderNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return row_scores(x, self.net(x))


class AutoencoderDetector:
    """Flag rows unlike the training rows by how badly an autoencoder rebuilds them.

    ``fit(X)`` takes rows (or images) of pixels already scaled to 0..1 and learns
    ``model_``, ``threshold_`` (the ``quantile`` of the training rows' scores),
    ``n_features_in_``, ``input_shape_`` and ``history_``. Training is Adam on the
    plain MSE with a cosine-decayed rate, seeded and deterministic like every torch
    model here; the defaults fit 50,000 MNIST rows in about 6 s on two idle cores.
    """

    name = "autoencoder"

    def __init__(
        self,
        latent: int = 32,
        hidden: int = 128,
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        quantile: float = 0.99,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> None:
        self.latent = latent
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.quantile = quantile
        self.seed = seed
        self.n_threads = n_threads

    model_: AutoencoderNet
    threshold_: float
    n_features_in_: int
    input_shape_: tuple[int, ...]
    history_: list[dict[str, float]]

    def get_params(self) -> dict[str, ParamValue]:
        """The constructor arguments, so ``AutoencoderDetector(**d.get_params())`` clones."""
        return {
            "latent": self.latent,
            "hidden": self.hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "quantile": self.quantile,
            "seed": self.seed,
            "n_threads": self.n_threads,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(
        self, X: npt.ArrayLike, y: object = None, *, on_epoch: EpochCallback | None = None
    ) -> Self:
        """Train from scratch on rows in 0..1; ``y`` is ignored (there are no labels).

        ``on_epoch(epoch, metrics)`` is called after every epoch with ``loss`` (mean
        squared error over the epoch's batches), ``lr`` and ``seconds``.
        """
        owner = type(self).__name__
        self.check_params()
        features = as_features(X, owner)
        flat = features.reshape(len(features), -1)
        low, high = float(flat.min()), float(flat.max())
        if low < 0.0 or high > 1.0:
            raise SchemaError(
                f"{owner}: X must hold values in 0..1, got {low:g}..{high:g}; scale pixels "
                "first (uint8 / 255, or FeatureSpec([Pixels()]))",
                field="X",
            )
        with reproducible(self.seed, self.n_threads):
            net = AutoencoderNet(flat.shape[1], self.hidden, self.latent)
            history = self._train(net, torch.from_numpy(flat), on_epoch)
            scores, _ = _score_tensors(net, torch.from_numpy(flat))
        self.model_, self.history_ = net, history
        self.n_features_in_ = flat.shape[1]
        self.input_shape_ = tuple(int(d) for d in features.shape[1:])
        self.threshold_ = float(np.quantile(scores, self.quantile))
        return self

    def score(self, X: npt.ArrayLike) -> FloatArray:
        """Per-row relative reconstruction error (0..2; higher is more anomalous)."""
        return self._scores(X)[0]

    def reconstruction_error(self, X: npt.ArrayLike) -> FloatArray:
        """Per-row mean squared error between the row and its reconstruction."""
        return self._scores(X)[1]

    def flag(self, X: npt.ArrayLike) -> BoolArray:
        """True for rows scoring above ``threshold_``."""
        flagged: BoolArray = self.score(X) > self.threshold_
        return flagged

    def require_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ModelNotFitted(type(self).__name__)

    def load_fitted_state(
        self,
        *,
        state: Mapping[str, torch.Tensor],
        input_shape: Sequence[int],
        threshold: float,
        history: list[dict[str, float]] | None = None,
    ) -> Self:
        """Become the fitted detector whose weights are ``state`` (read from safetensors)."""
        self.check_params()
        n_features = math.prod(input_shape)
        net = AutoencoderNet(n_features, self.hidden, self.latent)
        try:
            net.load_state_dict(dict(state), strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"{type(self).__name__}: saved weights do not fit these params: {exc}"
            ) from exc
        net.eval()
        self.model_, self.history_ = net, list(history or [])
        self.n_features_in_, self.input_shape_ = n_features, tuple(input_shape)
        self.threshold_ = float(threshold)
        return self

    # -- internals -----------------------------------------------------------------------

    def _scores(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        self.require_fitted()
        owner = type(self).__name__
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        return _score_tensors(self.model_, torch.from_numpy(flat))

    def check_params(self) -> None:
        """Refuse bad hyperparameters with ConfigError; ``fit`` calls it, callers may first."""
        owner = type(self).__name__
        check_int(owner, "latent", self.latent, minimum=1)
        check_int(owner, "hidden", self.hidden, minimum=1)
        check_int(owner, "epochs", self.epochs, minimum=1)
        check_int(owner, "batch_size", self.batch_size, minimum=1)
        check_float(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float(
            owner, "quantile", self.quantile, low=0.0, high=1.0, low_open=True, high_open=True
        )
        check_int(owner, "seed", self.seed, minimum=0)
        if self.seed > MAX_SEED:
            raise ConfigError(f"{owner}.seed must be in [0, {MAX_SEED}], got {self.seed}")
        check_optional_int(owner, "n_threads", self.n_threads, minimum=1)

    def _train(
        self, net: AutoencoderNet, X: torch.Tensor, on_epoch: EpochCallback | None
    ) -> list[dict[str, float]]:
        """Adam on the MSE of the logits' sigmoid; the rate follows a cosine per epoch.

        Mirrors :func:`headwater.learning.train.train_loop` (one ``randperm`` per
        epoch, batch losses kept as tensors) with a reconstruction loss in place of
        cross-entropy.
        """
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        history: list[dict[str, float]] = []
        n = len(X)
        for epoch in range(1, self.epochs + 1):
            started = time.perf_counter()
            rate = float(optimizer.param_groups[0]["lr"])
            net.train()
            order = torch.randperm(n)
            losses: list[torch.Tensor] = []
            for start in range(0, n, self.batch_size):
                batch = X[order[start : start + self.batch_size]]
                optimizer.zero_grad()
                loss = F.mse_loss(net(batch), batch)
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
                optimizer.step()
                losses.append(loss.detach() * len(batch))
            schedule.step()
            metrics = {
                "loss": float(torch.stack(losses).sum()) / n,
                "lr": rate,
                "seconds": time.perf_counter() - started,
            }
            history.append({"epoch": float(epoch), **metrics})
            if on_epoch is not None:
                on_epoch(epoch, metrics)
        net.eval()
        return history


def _score_tensors(net: nn.Module, X: torch.Tensor) -> tuple[FloatArray, FloatArray]:
    """Scores in eval mode and in chunks, so a large X never needs one huge activation."""
    net.eval()
    scores: list[torch.Tensor] = []
    errors: list[torch.Tensor] = []
    with torch.inference_mode():
        for i in range(0, len(X), EVAL_CHUNK):
            chunk = X[i : i + EVAL_CHUNK]
            score, error = row_scores(chunk, net(chunk))
            scores.append(score)
            errors.append(error)
    return torch.cat(scores).numpy(), torch.cat(errors).numpy()


# -- files -----------------------------------------------------------------------------------


def export_detector_onnx(detector: AutoencoderDetector) -> bytes:
    """The scoring graph as ONNX: ``input`` (batch, d) → ``score`` and ``reconstruction_error``.

    The threshold and quantile travel in the model's metadata, so the file alone
    flags rows.
    """
    detector.require_fitted()
    graph = _ScoreGraph(detector.model_).eval()
    with _quiet_exporter(), _quiet_graph_passes():
        program = torch.onnx.export(
            graph,
            (torch.zeros(2, detector.n_features_in_),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[SCORE_NAME, MSE_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise ConfigError("torch.onnx.export returned no program")
    proto: onnx.ModelProto = program.model_proto
    onnx.helper.set_model_props(
        proto,
        {
            THRESHOLD_KEY: repr(detector.threshold_),
            "headwater.quantile": repr(detector.quantile),
            "headwater.estimator": detector.name,
        },
    )
    data: bytes = proto.SerializeToString()
    return data


@contextmanager
def _quiet_graph_passes() -> Iterator[None]:
    """The exporter's graph passes log every rewrite at INFO, which ``--verbose`` would show."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def save_detector(detector: AutoencoderDetector, folder: Path | str) -> dict[str, str]:
    """Write ``model.onnx``, ``weights.safetensors`` and ``params.json``; return their sha256s."""
    detector.require_fitted()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in detector.model_.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "estimator": detector.name,
        "params": detector.get_params(),
        "n_features_in": detector.n_features_in_,
        "input_shape": list(detector.input_shape_),
        "threshold": detector.threshold_,
        "history": detector.history_,
    }
    files = {
        ONNX_FILE: export_detector_onnx(detector),
        WEIGHTS_FILE: save_safetensors(state),
        PARAMS_FILE: json.dumps(meta, indent=2, sort_keys=True).encode(),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: sha256_bytes(data) for name, data in files.items()}


def load_detector(
    folder: Path | str, hashes: Mapping[str, str], *, run_id: str | None = None
) -> AutoencoderDetector:
    """Rebuild a fitted detector from ``params.json`` and ``weights.safetensors``.

    ``hashes`` is what :func:`save_detector` returned; a file whose bytes changed is
    refused with :class:`~headwater.errors.ArtifactTampered` before it is parsed.
    """
    base = Path(folder)
    for name in (PARAMS_FILE, WEIGHTS_FILE):
        if name not in hashes:
            raise ConfigError(f"hashes has no entry for {name}; pass what save_detector returned")
    params_bytes = read_verified(base / PARAMS_FILE, hashes[PARAMS_FILE], run_id)
    weights = read_verified(base / WEIGHTS_FILE, hashes[WEIGHTS_FILE], run_id)
    try:
        meta = json.loads(params_bytes)
        if meta.get("format") != FORMAT:
            raise KeyError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        detector = AutoencoderDetector(**meta["params"])
        input_shape = [int(d) for d in meta["input_shape"]]
        threshold = float(meta["threshold"])
        history = list(meta.get("history", []))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"unreadable detector params: {exc}", path=base / PARAMS_FILE) from exc
    return detector.load_fitted_state(
        state=load_safetensors(weights),
        input_shape=input_shape,
        threshold=threshold,
        history=history,
    )


class OnnxAnomalyScorer:
    """Score rows with a saved detector's ``model.onnx`` in ONNX Runtime; no torch needed.

    The bytes are hashed, then handed to ONNX Runtime from memory, so the file that
    was checked is the file that runs. The threshold comes from the model's metadata.
    """

    def __init__(
        self, path: Path | str, expected_sha256: str, *, run_id: str | None = None
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._session = verified_session(self.path, expected_sha256, run_id)
        meta = self._session.get_modelmeta().custom_metadata_map
        if THRESHOLD_KEY not in meta:
            raise FormatError(f"model has no {THRESHOLD_KEY} metadata", path=self.path)
        self.threshold_ = float(meta[THRESHOLD_KEY])
        self.n_features_in_ = int(self._session.get_inputs()[0].shape[1])

    def scores(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(score, reconstruction error) per row, in one pass."""
        owner = f"OnnxAnomalyScorer({self.path.name})"
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        score, error = self._session.run([SCORE_NAME, MSE_NAME], {INPUT_NAME: flat})
        return np.asarray(score, dtype=np.float32), np.asarray(error, dtype=np.float32)

    def score(self, X: npt.ArrayLike) -> FloatArray:
        return self.scores(X)[0]

    def flag(self, X: npt.ArrayLike) -> BoolArray:
        flagged: BoolArray = self.score(X) > self.threshold_
        return flagged


# -- pictures --------------------------------------------------------------------------------


def plot_anomaly_grid(
    images: npt.ArrayLike,
    scores: npt.ArrayLike,
    threshold: float,
    path: Path | str,
    *,
    captions: Sequence[str] | None = None,
    max_images: int = 36,
) -> Path:
    """The highest-scoring rows first, flagged ones framed in red, each with its score.

    Images are ``(n, h, w)``, ``(n, h, w, 3)`` or square flat rows; ``captions`` (one
    per image, e.g. ``"row 17"``) go above the score. The tiles are laid into one
    picture on one axes: a figure with a subplot per image took ten times longer.
    """
    pixels, values, colour_images = _grid_inputs(images, scores, captions)
    order = np.argsort(-values, kind="stable")[: max(1, max_images)]
    flagged = values > threshold
    height, width = int(pixels.shape[1]), int(pixels.shape[2])
    pad = max(1, width // 14)
    cell_w = width + 2 * pad
    per_inch = cell_w / TILE_INCHES
    caption = max(2, round(CAPTION_INCHES * per_inch))  # room above each tile for two lines
    cell_h = height + caption + pad
    cols = min(len(order), 6)
    rows = math.ceil(len(order) / cols)
    canvas = np.zeros((rows * cell_h, cols * cell_w, *pixels.shape[3:]), np.float32)
    if colour_images:
        canvas[:] = 1.0  # white paper, as 0 is under the gray_r map
    fig = Figure(figsize=(TILE_INCHES * cols, rows * cell_h / per_inch + 0.4))
    fig.suptitle(
        f"{int(flagged.sum())} of {len(values)} rows above {threshold:.4f}; most anomalous first",
        fontsize=9,
    )
    ax = fig.add_subplot()
    for slot, row in enumerate(order):
        top, left = (slot // cols) * cell_h + caption, (slot % cols) * cell_w + pad
        canvas[top : top + height, left : left + width] = pixels[row]
        label = f"{captions[row]}\n" if captions is not None else ""
        _frame_tile(ax, (top, left, height, width), f"{label}{values[row]:.4f}", flagged[row])
    ax.imshow(canvas, cmap=None if colour_images else "gray_r", vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    return _save(fig, path)


def _grid_inputs(
    images: npt.ArrayLike, scores: npt.ArrayLike, captions: Sequence[str] | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], bool]:
    """Images as tiles, scores as one row, and whether they are in colour; counts must agree."""
    pixels = np.asarray(images, dtype=np.float32)
    colour_images = pixels.ndim == 4 and pixels.shape[-1] in (3, 4)
    if not colour_images:
        pixels = _as_images(pixels)
    values = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(values) != len(pixels) or (captions is not None and len(captions) != len(pixels)):
        raise SchemaError(
            f"{len(pixels)} images but {len(values)} scores"
            + (f" and {len(captions)} captions" if captions is not None else ""),
            field="scores",
        )
    return pixels, values, colour_images


def _frame_tile(ax: Axes, box: tuple[int, int, int, int], text: str, flagged: bool) -> None:
    """A frame around one tile (red and thick when flagged) and its caption above it."""
    top, left, height, width = box
    colour = MISTAKE if flagged else CORRECT
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            width,
            height,
            fill=False,
            edgecolor=colour,
            linewidth=2.5 if flagged else 0.8,
        )
    )
    ax.text(
        left + (width - 1) / 2,
        top - 0.7,
        text,
        ha="center",
        va="bottom",
        fontsize=7,
        color=colour,
    )
