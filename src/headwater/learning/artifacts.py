"""Model files that cannot run code: ONNX for inference, safetensors for weights, JSON for the rest.

A pickle (or joblib) file executes whatever it names when loaded, so a model folder
that anyone could write to would be a way into every machine that serves it. Here a
saved model is:

* ``model.onnx``: the whole inference graph, probabilities out, run by ONNX Runtime;
* ``weights.safetensors``: torch weights only (tensors, no code), to rebuild the model;
* ``params.json``: estimator name, hyperparameters, classes, input shape, history;
* ``features.json``: the fitted :class:`~headwater.data.features.FeatureSpec`, if given.

:func:`save_model` returns each file's sha256. :class:`OnnxPredictor` and
:func:`load_torch_estimator` hash the bytes they are about to parse and refuse them
with :class:`~headwater.errors.ArtifactTampered` when the hash differs, so a file
swapped after training never reaches a parser.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from headwater.data.features import FeatureSpec
from headwater.errors import ArtifactTampered, ConfigError, FormatError
from headwater.learning.base import (
    Estimator,
    FloatArray,
    LabelArray,
    as_features,
    check_features,
)
from headwater.learning.estimators import ESTIMATORS, SklearnClassifier
from headwater.learning.regressors import (
    COVERAGE,
    MLPRegressor,
    Regressor,
    SklearnRegressor,
    TargetArray,
)
from headwater.learning.sklearn_onnx import (
    INPUT_NAME,
    INTERVAL_NAMES,
    OPSET,
    PREDICTION_NAME,
    convert,
    regressor_graph,
)
from headwater.learning.torch_models import TorchClassifier

__all__ = [
    "FEATURES_FILE",
    "INPUT_NAME",
    "ONNX_FILE",
    "OPSET",
    "PARAMS_FILE",
    "PREDICTION_NAME",
    "WEIGHTS_FILE",
    "OnnxPredictor",
    "export_onnx",
    "load_torch_estimator",
    "read_verified",
    "save_model",
    "sha256_bytes",
    "verified_session",
]

ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.safetensors"
PARAMS_FILE = "params.json"
FEATURES_FILE = "features.json"
OUTPUT_NAME = "probabilities"
CLASSES_KEY = "headwater.classes"
TASK_KEY = "headwater.task"
INTERVAL_KEY = "headwater.interval"
"""A regressor graph's interval coverage (``0.9``), present when it outputs ``lower``/``upper``."""
FORMAT = "headwater.model"
VERSION = 1


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(
    estimator: Estimator, folder: Path | str, *, features: FeatureSpec | None = None
) -> dict[str, str]:
    """Write the model's files into ``folder`` and return ``{file name: sha256}``.

    Record the hashes (the registry does); loading checks them.
    """
    estimator.require_fitted()
    if estimator.name not in ESTIMATORS:
        raise ConfigError(f"{type(estimator).__name__} is not in the estimator registry")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {ONNX_FILE: export_onnx(estimator)}
    meta: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "estimator": estimator.name,
        "task": estimator.task,
        "params": estimator.get_params(),
        "classes": _classes(estimator),
        "n_features_in": estimator.n_features_in_,
    }
    if isinstance(estimator, Regressor):
        meta["target"] = {"mean": estimator.target_mean_, "std": estimator.target_std_}
    if isinstance(estimator, TorchClassifier | MLPRegressor):
        state = {k: v.detach().contiguous() for k, v in estimator.model_.state_dict().items()}
        files[WEIGHTS_FILE] = save_safetensors(state)
        meta["input_shape"] = list(estimator.input_shape_)
        meta["history"] = estimator.history_
    files[PARAMS_FILE] = json.dumps(meta, indent=2, sort_keys=True).encode()
    if features is not None:
        files[FEATURES_FILE] = features.to_json().encode()
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: sha256_bytes(data) for name, data in files.items()}


def export_onnx(estimator: Estimator) -> bytes:
    """The fitted model as ONNX bytes: input ``(batch, n_features)`` float32, output probabilities.

    Torch models go through the ``torch.export``-based exporter (``dynamo=True``; the
    TorchScript one is deprecated in torch 2.13), with the batch dimension dynamic.
    """
    estimator.require_fitted()
    if isinstance(estimator, TorchClassifier):
        proto = _export_torch(_Probabilities(estimator.model_), estimator.n_features_in_)
    elif isinstance(estimator, MLPRegressor):
        restored = _Restored(estimator.model_, estimator.target_mean_, estimator.target_std_)
        proto = _export_torch(restored, estimator.n_features_in_, PREDICTION_NAME)
    elif isinstance(estimator, SklearnClassifier):
        proto = convert(estimator.model_, estimator.n_features_in_, probabilities=True)
    elif isinstance(estimator, SklearnRegressor):
        proto = regressor_graph(estimator)
    else:
        raise ConfigError(f"no ONNX export for {type(estimator).__name__}")
    props = {
        CLASSES_KEY: json.dumps(_classes(estimator)),
        TASK_KEY: estimator.task,
        "headwater.estimator": estimator.name,
    }
    if INTERVAL_NAMES[0] in {o.name for o in proto.graph.output}:
        props[INTERVAL_KEY] = str(COVERAGE)
    onnx.helper.set_model_props(proto, props)
    data: bytes = proto.SerializeToString()
    return data


class _Probabilities(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes on optional packages (torchvision) and its deprecations."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


class _Restored(nn.Module):
    """A regression net's standardised output back in the target's units."""

    def __init__(self, net: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.net = net
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x) * self.std + self.mean
        return out


def _classes(estimator: Estimator) -> list[int]:
    """The class labels of a classifier; a regressor has none."""
    return [] if isinstance(estimator, Regressor) else estimator.classes_.tolist()


def _export_torch(module: nn.Module, n_features: int, output: str = OUTPUT_NAME) -> onnx.ModelProto:
    wrapper = module.eval()
    example = torch.zeros(2, n_features)
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[output],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise ConfigError("torch.onnx.export returned no program")
    proto: onnx.ModelProto = program.model_proto
    return proto


# -- loading ---------------------------------------------------------------------------------


def read_verified(path: Path, expected_sha256: str, run_id: str | None = None) -> bytes:
    """The file's bytes, after checking they hash to ``expected_sha256``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise FormatError("model artifact is missing", path=path) from exc
    actual = sha256_bytes(data)
    if actual != expected_sha256.lower():
        raise ArtifactTampered(path, expected=expected_sha256, actual=actual, run_id=run_id)
    return data


def verified_session(
    path: Path, expected_sha256: str, run_id: str | None = None
) -> ort.InferenceSession:
    """An ONNX Runtime session over the very bytes whose sha256 was just checked."""
    return session_from_bytes(read_verified(path, expected_sha256, run_id), path)


def session_from_bytes(data: bytes, path: Path) -> ort.InferenceSession:
    """An ONNX Runtime session over checked bytes (``path`` names them in errors)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph
        raise FormatError(f"ONNX Runtime cannot load the model: {exc}", path=path) from exc


class OnnxPredictor:
    """Serve a saved model with ONNX Runtime, refusing a file whose sha256 changed.

    The bytes are hashed and then handed to ONNX Runtime from memory, so the file that
    was checked is the file that runs. Construction loads the model; it is a loader,
    not an estimator.
    """

    def __init__(
        self, path: Path | str, expected_sha256: str, *, run_id: str | None = None
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._session = verified_session(self.path, expected_sha256, run_id)
        self._read_metadata()

    @classmethod
    def from_bytes(
        cls, data: bytes, expected_sha256: str, *, name: str, run_id: str | None = None
    ) -> OnnxPredictor:
        """A predictor over a model's bytes sent elsewhere (a Spark executor), checked again."""
        actual = sha256_bytes(data)
        if actual != expected_sha256.lower():
            raise ArtifactTampered(
                Path(name), expected=expected_sha256, actual=actual, run_id=run_id
            )
        predictor = cls.__new__(cls)
        predictor.path, predictor.run_id = Path(name), run_id
        predictor._session = session_from_bytes(data, Path(name))
        predictor._read_metadata()
        return predictor

    def _read_metadata(self) -> None:
        meta = self._session.get_modelmeta().custom_metadata_map
        if CLASSES_KEY not in meta:
            raise FormatError(f"model has no {CLASSES_KEY} metadata", path=self.path)
        self.classes_: LabelArray = np.asarray(json.loads(meta[CLASSES_KEY]), dtype=np.int64)
        self.task = str(meta.get(TASK_KEY, "classification"))
        self.n_features_in_ = int(self._session.get_inputs()[0].shape[1])
        outputs = {o.name for o in self._session.get_outputs()}
        self.coverage: float | None = None
        if INTERVAL_KEY in meta and set(INTERVAL_NAMES) <= outputs:
            self.coverage = float(meta[INTERVAL_KEY])

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Probabilities for rows or images shaped like the training data."""
        if self.task == "regression":
            raise ConfigError(f"{self.path.name} is a regressor: it predicts numbers (predict)")
        owner = f"OnnxPredictor({self.path.name})"
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        (probabilities,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: flat})
        return np.asarray(probabilities, dtype=np.float32)

    def predict_values(self, X: npt.ArrayLike) -> TargetArray:
        """A regressor's number per row, in the target's units."""
        if self.task != "regression":
            raise ConfigError(f"{self.path.name} is a classifier: it predicts classes")
        owner = f"OnnxPredictor({self.path.name})"
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        (values,) = self._session.run([PREDICTION_NAME], {INPUT_NAME: flat})
        return np.asarray(values, dtype=np.float64).reshape(len(flat))

    def predict_interval(
        self, X: npt.ArrayLike
    ) -> tuple[TargetArray, tuple[TargetArray, TargetArray] | None]:
        """A regressor's number per row and, if its model gives one, the ``coverage``
        interval's low and high ends (one ONNX Runtime call for all three)."""
        if self.task != "regression":
            raise ConfigError(f"{self.path.name} is a classifier: it predicts classes")
        owner = f"OnnxPredictor({self.path.name})"
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        names = [PREDICTION_NAME, *(INTERVAL_NAMES if self.coverage is not None else ())]
        out = [
            np.asarray(a, np.float64).reshape(len(flat))
            for a in self._session.run(names, {INPUT_NAME: flat})
        ]
        return out[0], (out[1], out[2]) if len(out) == 3 else None

    def predict(self, X: npt.ArrayLike) -> LabelArray:
        """Classes of a classifier (see `predict_values` for a regressor's numbers)."""
        labels: LabelArray = np.take(self.classes_, np.argmax(self.predict_proba(X), axis=1))
        return labels


def load_torch_estimator(
    folder: Path | str, hashes: Mapping[str, str], *, run_id: str | None = None
) -> TorchClassifier | MLPRegressor:
    """Rebuild a fitted torch estimator from ``params.json`` and ``weights.safetensors``.

    ``hashes`` is what :func:`save_model` returned; both files are checked against it.
    """
    base = Path(folder)
    for name in (PARAMS_FILE, WEIGHTS_FILE):
        if name not in hashes:
            raise ConfigError(f"hashes has no entry for {name}; pass what save_model returned")
    params_bytes = read_verified(base / PARAMS_FILE, hashes[PARAMS_FILE], run_id)
    weights = read_verified(base / WEIGHTS_FILE, hashes[WEIGHTS_FILE], run_id)
    try:
        meta = json.loads(params_bytes)
        cls = ESTIMATORS[meta["estimator"]]
        estimator = cls(**meta["params"])
        classes = np.asarray(meta["classes"], dtype=np.int64)
        input_shape = tuple(int(d) for d in meta["input_shape"])
        history = list(meta.get("history", []))
        target = meta.get("target")
        if isinstance(estimator, MLPRegressor):
            return estimator.load_fitted_state(
                n_features=input_shape[0],
                target=(float(target["mean"]), float(target["std"])),
                state=load_safetensors(weights),
                history=history,
            )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"unreadable model params: {exc}", path=base / PARAMS_FILE) from exc
    if not isinstance(estimator, TorchClassifier):
        raise ConfigError(
            f"{meta['estimator']!r} is not a torch model; serve it with OnnxPredictor"
        )
    return estimator.load_fitted_state(
        classes=classes, input_shape=input_shape, state=load_safetensors(weights), history=history
    )
