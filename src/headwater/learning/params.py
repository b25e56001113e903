"""Every trainable model's hyperparameters: one pydantic model each, the one source of truth.

Each estimator in :data:`headwater.learning.ESTIMATORS` has its parameter model here,
registered under the same name in :data:`PARAMS`. A field says the parameter's type,
default, allowed range and what it does; everything else is generated from it:

* the estimator's own check in ``fit`` (:func:`validate_params`, strict types),
* the CLI's ``headwater train`` options, the API's train-request schema and the web
  train form (lax types: "35" from a form is 35),
* the search space a tuner samples from (:func:`search_space`; each numeric field's
  ``x-search`` range, narrower than what is allowed, where good values usually lie).

This module imports neither torch nor scikit-learn, so a face can build its options
without loading the learning stack. ``n_threads`` and ``n_jobs`` are not here: they
say how many cores to use, not what to learn, and the server sets them itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from headwater.errors import ConfigError

__all__ = [
    "COMMON_FIELDS",
    "COMMON_PARAMS",
    "MAX_SEED",
    "PARAMS",
    "REGRESSORS",
    "SEQUENCE_PARAMS",
    "AdaBoostParams",
    "CNNParams",
    "ForestParams",
    "ForestRegressorParams",
    "HistBoostingParams",
    "HistBoostingRegressorParams",
    "LSTMParams",
    "LogisticParams",
    "MLPParams",
    "MLPRegressorParams",
    "ParamRange",
    "ParamValue",
    "Params",
    "RidgeParams",
    "Schedule",
    "Seed",
    "allowed",
    "model_params",
    "model_task",
    "models_for",
    "param_kind",
    "search_space",
    "trainable",
    "validate_params",
]

MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A random seed as every face and config takes it: NumPy and PyTorch seeds are 32-bit."""
ParamValue = int | float | str | bool | None
"""A hyperparameter's value as stored in ``params.json`` (the same as ``learning.base``'s)."""
Schedule = Literal["cosine", "constant"]


def _search(low: float, high: float, *, log: bool = False, slider: bool = False) -> dict[str, Any]:
    """The ``json_schema_extra`` of a field: where a tuner (and a slider) should look."""
    extra: dict[str, Any] = {"x-search": {"low": low, "high": high, "log": log}}
    if slider:
        extra["x-slider"] = True
    return extra


class Params(BaseModel):
    """Base of every parameter model: unknown names refused, the seed shared by all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="Random seed: the same seed and data give the same model and metrics.",
    )


COMMON_FIELDS: dict[str, FieldInfo] = dict(Params.model_fields)
"""Parameters every model takes (the seed); faces show them once, outside the model's own."""
COMMON_PARAMS = frozenset(COMMON_FIELDS)


# -- neural networks -------------------------------------------------------------------------


def _dropout(default: float) -> Any:
    return Field(
        default=default,
        ge=0.0,
        lt=1.0,
        description="Fraction of inputs dropped at random while training, against overfitting.",
        json_schema_extra=_search(0.0, 0.5),
    )


def _epochs(default: int) -> Any:
    return Field(
        default=default,
        ge=1,
        le=10_000,
        description="Passes over the training rows.",
        json_schema_extra=_search(2, 60),
    )


def _learning_rate(default: float, description: str, high: float) -> Any:
    return Field(
        default=default,
        gt=0.0,
        le=10.0,
        description=description,
        json_schema_extra=_search(high / 100, high, log=True),
    )


_ADAM_RATE = "Adam's step size."


def _batch_size() -> Any:
    return Field(
        default=128,
        ge=1,
        le=1_000_000,
        description="Rows per gradient step.",
        json_schema_extra=_search(32, 512, log=True),
    )


def _schedule() -> Any:
    return Field(
        default="cosine",
        description="Learning-rate schedule: cosine decays it to zero over the epochs.",
    )


def _patience() -> Any:
    return Field(
        default=None,
        ge=1,
        le=10_000,
        description="Stop after this many epochs without a better validation loss "
        "(needs a holdout); none trains every epoch.",
    )


class MLPParams(Params):
    """Multi-layer perceptron (MLP): two dense layers; L2 on the second, dropout on the input."""

    model_config = ConfigDict(title="Multi-layer perceptron (MLP)")

    density: int = Field(
        default=35,
        ge=1,
        le=100_000,
        description="Units in the first hidden layer.",
        json_schema_extra=_search(10, 100, slider=True),
    )
    second_width: int = Field(
        default=21,
        ge=1,
        le=100_000,
        description="Units in the second hidden layer.",
        json_schema_extra=_search(8, 128, log=True),
    )
    l2: float = Field(
        default=0.01,
        ge=0.0,
        le=10.0,
        description="L2 penalty on the second hidden layer's weights.",
        json_schema_extra=_search(1e-4, 0.1, log=True),
    )
    dropout: float = _dropout(0.3)
    epochs: int = _epochs(30)
    batch_size: int = _batch_size()
    learning_rate: float = _learning_rate(3e-3, _ADAM_RATE, 1e-2)
    schedule: Schedule = _schedule()
    patience: int | None = _patience()


class CNNParams(Params):
    """Convolutional network (CNN): two 3x3 conv + pool blocks, then a dense layer."""

    model_config = ConfigDict(title="Convolutional network (CNN, images)")

    channels: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Filters in the first convolution (the second has twice as many).",
        json_schema_extra=_search(4, 32, log=True),
    )
    hidden: int = Field(
        default=128,
        ge=1,
        le=100_000,
        description="Units in the dense layer after the convolutions.",
        json_schema_extra=_search(32, 256, log=True),
    )
    dropout: float = _dropout(0.25)
    epochs: int = _epochs(6)
    batch_size: int = _batch_size()
    learning_rate: float = _learning_rate(2e-3, _ADAM_RATE, 1e-2)
    schedule: Schedule = _schedule()
    patience: int | None = _patience()


# -- scikit-learn models ---------------------------------------------------------------------


def _n_estimators(default: int, low: int, high: int) -> Any:
    return Field(
        default=default,
        ge=1,
        le=1000,
        description="Trees in the ensemble (at most 1,000: more makes an ONNX export of minutes).",
        json_schema_extra=_search(low, high, log=True),
    )


class LogisticParams(Params):
    """Multinomial logistic regression (lbfgs)."""

    model_config = ConfigDict(title="Logistic regression")

    c: float = Field(
        default=1.0,
        gt=0.0,
        le=1e6,
        description="Inverse L2 strength: smaller is stronger regularisation.",
        json_schema_extra=_search(1e-3, 1e3, log=True),
    )
    max_iter: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most lbfgs iterations before it stops.",
        json_schema_extra=_search(100, 2000, log=True),
    )


class ForestParams(Params):
    """A random forest."""

    model_config = ConfigDict(title="Random forest")

    n_estimators: int = _n_estimators(100, 50, 500)
    max_depth: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Deepest a tree may grow; none grows each until its leaves are pure.",
        json_schema_extra=_search(2, 40, log=True),
    )
    min_samples_leaf: int = Field(
        default=1,
        ge=1,
        le=100_000,
        description="Fewest training rows a leaf may hold.",
        json_schema_extra=_search(1, 20, log=True),
    )


class AdaBoostParams(Params):
    """AdaBoost (SAMME) over shallow decision trees."""

    model_config = ConfigDict(title="AdaBoost")

    n_estimators: int = _n_estimators(100, 25, 400)
    learning_rate: float = _learning_rate(
        0.5, "Weight of each tree's vote; smaller needs more trees.", 2.0
    )
    max_depth: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Depth of each tree.",
        json_schema_extra=_search(1, 8),
    )


class HistBoostingParams(Params):
    """Histogram gradient boosting; every round runs (no early stopping)."""

    model_config = ConfigDict(title="Histogram gradient boosting")

    max_iter: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Boosting rounds (one tree per class each).",
        json_schema_extra=_search(50, 500, log=True),
    )
    learning_rate: float = _learning_rate(0.1, "Shrinkage of each round's trees.", 0.5)
    max_leaf_nodes: int = Field(
        default=31,
        ge=2,
        le=65_536,
        description="Most leaves a tree may have.",
        json_schema_extra=_search(8, 255, log=True),
    )
    l2_regularization: float = Field(
        default=0.0,
        ge=0.0,
        le=1e6,
        description="L2 penalty on the leaf values.",
        json_schema_extra=_search(1e-6, 10.0, log=True),
    )


# -- regressors: a number out; the target is standardised inside the model ---------------------


class RidgeParams(Params):
    """Linear least squares with an L2 penalty (ridge), on standardised features and target."""

    model_config = ConfigDict(title="Ridge regression (linear)")

    alpha: float = Field(
        default=1.0,
        ge=0.0,
        le=1e6,
        description="L2 strength on the coefficients: larger shrinks them more.",
        json_schema_extra=_search(1e-3, 1e2, log=True),
    )


class MLPRegressorParams(MLPParams):
    """The MLP with one linear output: the same layers, dropout and L2, squared error."""

    model_config = ConfigDict(title="Multi-layer perceptron regressor (MLP)")

    # Dropping 30% of a table's few inputs shrinks a regression's slopes by about a third;
    # a number needs all of them, and more passes over a table of thousands of rows.
    l2: float = Field(
        default=0.001,
        ge=0.0,
        le=10.0,
        description="L2 penalty on the second hidden layer's weights.",
        json_schema_extra=_search(1e-5, 0.1, log=True),
    )
    dropout: float = _dropout(0.0)
    epochs: int = _epochs(100)


class ForestRegressorParams(ForestParams):
    """A random forest of regression trees; its spread gives prediction intervals.

    The defaults are Breiman's for regression (R's randomForest): a third of the features
    tried per split, leaves of at least 5 rows; fully grown trees on all features fit the
    noise of a small table (scikit-learn's diabetes: R² 0.33 against 0.41, 8 splits).
    """

    model_config = ConfigDict(title="Random forest regressor")

    min_samples_leaf: int = Field(
        default=5,
        ge=1,
        le=100_000,
        description="Fewest training rows a leaf may hold.",
        json_schema_extra=_search(1, 20, log=True),
    )
    max_features: float = Field(
        default=1 / 3,
        gt=0.0,
        le=1.0,
        description="Fraction of the features each split may choose from.",
        json_schema_extra=_search(0.1, 1.0),
    )


class HistBoostingRegressorParams(HistBoostingParams):
    """Histogram gradient boosting on squared error, stopped early on a held-back fraction.

    Small trees and early stopping, for small tables: the classifier's 31-leaf trees, or
    even 8-leaf ones at 0.05 with every round run, fit the noise of scikit-learn's
    diabetes data (297 training rows: test R² 0.372 on the acceptance split, 0.388 mean
    over ten); 4-leaf trees stopped when 10% of the training rows stop improving for 10
    rounds give 0.429 and 0.417, and on 4000 rows boost on to within 3% of the noise floor
    where a fixed 100 rounds of 4-leaf trees stays 12% above it.
    """

    model_config = ConfigDict(title="Histogram gradient boosting regressor")

    max_iter: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most boosting rounds; early stopping usually ends sooner.",
        json_schema_extra=_search(50, 1000, log=True),
    )
    learning_rate: float = _learning_rate(0.05, "Shrinkage of each round's trees.", 0.5)
    max_leaf_nodes: int = Field(
        default=4,
        ge=2,
        le=65_536,
        description="Most leaves a tree may have.",
        json_schema_extra=_search(2, 32, log=True),
    )
    validation_fraction: float | None = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        description="Fraction of the training rows held back to stop boosting once 10 rounds "
        "bring no improvement on them; none runs every round.",
        json_schema_extra=_search(0.05, 0.3),
    )


PARAMS: dict[str, type[Params]] = {
    "mlp": MLPParams,
    "cnn": CNNParams,
    "logistic": LogisticParams,
    "random_forest": ForestParams,
    "adaboost": AdaBoostParams,
    "hist_gradient_boosting": HistBoostingParams,
    "ridge": RidgeParams,
    "mlp_regressor": MLPRegressorParams,
    "random_forest_regressor": ForestRegressorParams,
    "hist_gradient_boosting_regressor": HistBoostingRegressorParams,
}
"""Model name to its parameter model; the same names, in the same order, as ``ESTIMATORS``."""


class LSTMParams(Params):
    """LSTM over each sequence's events (interval and symbol), variable length, packed."""

    model_config = ConfigDict(title="LSTM (sequences)")

    hidden: int = Field(
        default=64,
        ge=2,
        le=2048,
        description="Units of the LSTM's hidden state.",
        json_schema_extra=_search(16, 256, log=True),
    )
    embedding: int = Field(
        default=8,
        ge=1,
        le=512,
        description="Width of each symbol's learned embedding.",
        json_schema_extra=_search(2, 32, log=True),
    )
    epochs: int = _epochs(60)
    batch_size: int = Field(
        default=32,
        ge=1,
        le=100_000,
        description="Sequences per gradient step.",
        json_schema_extra=_search(8, 128, log=True),
    )
    learning_rate: float = _learning_rate(0.01, _ADAM_RATE, 0.05)
    dropout: float = _dropout(0.1)


SEQUENCE_PARAMS: dict[str, type[Params]] = {"lstm": LSTMParams}
"""Models that read whole sequences (`headwater.learning.sequence_models`); they train on
sequence datasets only, so they stay out of :data:`PARAMS`, which every table model shares."""

REGRESSORS = (
    "ridge",
    "mlp_regressor",
    "random_forest_regressor",
    "hist_gradient_boosting_regressor",
)
"""The models that predict a number; every other model in :data:`PARAMS` predicts a class."""


def model_task(model: str) -> Literal["classification", "regression"]:
    """What a model predicts: ``regression`` (a number) or ``classification`` (a class)."""
    model_params(model)
    return "regression" if model in REGRESSORS else "classification"


def models_for(task: str) -> list[str]:
    """The model names of a task, in registry order."""
    return [name for name in PARAMS if model_task(name) == task]


# -- reading the models ----------------------------------------------------------------------


def model_params(model: str) -> type[Params]:
    """The parameter model of a model name, or ConfigError listing the known names."""
    found = PARAMS.get(model) or SEQUENCE_PARAMS.get(model)
    if found is None:
        raise ConfigError(f"unknown model {model!r}; known models: {', '.join(sorted(PARAMS))}")
    return found


def trainable(model: str) -> dict[str, FieldInfo]:
    """The model's own parameters (the seed left out: it is common to all), in order."""
    fields = model_params(model).model_fields
    return {name: field for name, field in fields.items() if name not in COMMON_PARAMS}


def _bounds(field: FieldInfo) -> tuple[float | None, bool, float | None, bool]:
    """(low, low inclusive, high, high inclusive) from the field's ge/gt/le/lt."""
    low = high = None
    low_in = high_in = True
    for item in field.metadata:
        for attr, is_low, inclusive in (("ge", 1, 1), ("gt", 1, 0), ("le", 0, 1), ("lt", 0, 0)):
            value = getattr(item, attr, None)
            if value is None:
                continue
            if is_low:
                low, low_in = value, bool(inclusive)
            else:
                high, high_in = value, bool(inclusive)
    return low, low_in, high, high_in


Kind = Literal["int", "float", "choice"]


def param_kind(field: FieldInfo) -> tuple[Kind, tuple[str, ...], bool]:
    """``("int" | "float" | "choice", choices, optional)``: what a face should ask for."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    optional = type(None) in get_args(annotation)
    base = args[0] if optional and len(args) == 1 else annotation
    if get_args(base) and all(isinstance(a, str) for a in get_args(base)):
        return "choice", tuple(get_args(base)), optional
    if base is int:
        return "int", (), optional
    if base is float:
        return "float", (), optional
    raise TypeError(f"parameter type {annotation!r} is not int, float or a Literal of strings")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def allowed(field: FieldInfo) -> str:
    """What a value must be, in words: ``an integer in [1, 100000]``, ``one of a, b``."""
    kind, choices, optional = param_kind(field)
    if kind == "choice":
        text = "one of " + ", ".join(choices)
    else:
        low, low_in, high, high_in = _bounds(field)
        noun = "an integer" if kind == "int" else "a number"
        left = ("[" if low_in else "(") + (_number(low) if low is not None else "-inf")
        right = (_number(high) if high is not None else "inf") + ("]" if high_in else ")")
        text = f"{noun} in {left}, {right}"
    return text + (", or none" if optional else "")


def validate_params(
    model: str, values: Mapping[str, object], *, owner: str | None = None, strict: bool = False
) -> Params:
    """``values`` checked against the model's parameters; ConfigError names each bad one.

    ``strict`` refuses text for numbers and booleans for integers (what an estimator
    is given in Python); faces pass text from forms and leave it off.
    """
    kind = model_params(model)
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}
    try:
        return kind.model_validate(plain, strict=strict)
    except ValidationError as error:
        raise ConfigError(_explain(kind, error, owner or model)) from error


def _explain(kind: type[Params], error: ValidationError, owner: str) -> str:
    problems = []
    for issue in error.errors():
        name = ".".join(str(p) for p in issue["loc"])
        field = kind.model_fields.get(name)
        if issue["type"] == "extra_forbidden":
            known = ", ".join(kind.model_fields)
            problems.append(f"{owner} has no parameter {name}; its parameters are: {known}")
        elif field is not None:
            problems.append(f"{owner}.{name} must be {allowed(field)}, got {issue['input']!r}")
        else:
            problems.append(f"{owner}: {issue['msg']}")
    return "; ".join(problems)


@dataclass(frozen=True)
class ParamRange:
    """Where a tuner samples one parameter: a numeric interval or a list of choices."""

    kind: Kind
    default: object
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()


def search_space(model: str) -> dict[str, ParamRange]:
    """Each tunable parameter's range (``x-search`` of its field), for a tuner such as Optuna.

    Fields without a search range (``patience``: an option, not a knob) are left out.
    """
    space: dict[str, ParamRange] = {}
    for name, field in trainable(model).items():
        kind, choices, _ = param_kind(field)
        if kind == "choice":
            space[name] = ParamRange("choice", field.default, choices=choices)
            continue
        extra = field.json_schema_extra
        search = extra.get("x-search") if isinstance(extra, dict) else None
        if not isinstance(search, dict):
            continue
        low, high = float(str(search["low"])), float(str(search["high"]))
        if kind == "int":
            low, high = math.ceil(low), math.floor(high)
        space[name] = ParamRange(kind, field.default, low, high, bool(search["log"]))
    return space
