"""What every Headwater estimator shares: parameters by name, input checks, the fitted check.

The conventions are scikit-learn's, without its mixins: ``__init__`` only stores
hyperparameters, :meth:`Estimator.fit` validates them and learns attributes ending
in ``_``, and predicting before fitting raises :class:`ModelNotFitted` naming the
class. Hyperparameters are plain scalars so they can be written to ``params.json``
and a model can be rebuilt from that file alone.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import ClassVar, Literal, Self, cast

import numpy as np
import numpy.typing as npt
from sklearn.utils import check_scalar

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning.params import PARAMS, Params, ParamValue, validate_params

__all__ = [
    "Estimator",
    "FloatArray",
    "LabelArray",
    "ParamValue",
    "SklearnEstimator",
    "as_features",
    "as_labels",
    "check_features",
    "check_float",
    "check_int",
    "check_optional_int",
    "clone",
    "encode_labels",
]

FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int64]


class Estimator:
    """Base class: hyperparameters from the constructor signature, predict via predict_proba.

    Subclasses implement ``fit`` (setting ``classes_`` and ``n_features_in_``) and
    ``predict_proba``; ``predict`` maps the most probable column back to a label.
    """

    #: the short name used by ``make_estimator`` and written to ``params.json``
    name: str = "estimator"
    #: what it predicts: a class (``classification``) or a number (``regression``)
    task: ClassVar[str] = "classification"

    def get_params(self) -> dict[str, ParamValue]:
        """The constructor arguments as stored, so ``type(est)(**est.get_params())`` clones."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def checked_params(self) -> Params:
        """The hyperparameters as its parameter model (`headwater.learning.params`) checks them.

        The one set of rules every face is generated from; ConfigError names each bad value.
        """
        kind = PARAMS[self.name]
        values = {k: v for k, v in self.get_params().items() if k in kind.model_fields}
        return validate_params(self.name, values, owner=type(self).__name__, strict=True)

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        raise NotImplementedError

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        raise NotImplementedError

    def predict(self, X: npt.ArrayLike) -> LabelArray:
        """The most probable class for each row, as the original label values."""
        proba = self.predict_proba(X)
        labels: LabelArray = np.take(self.classes_, np.argmax(proba, axis=1))
        return labels

    def require_fitted(self) -> None:
        """Raise :class:`ModelNotFitted` naming the class when ``fit`` has not run."""
        if not hasattr(self, "classes_"):
            raise ModelNotFitted(type(self).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    classes_: LabelArray
    n_features_in_: int


def clone(estimator: Estimator) -> Estimator:
    """A fresh, unfitted estimator with the same hyperparameters (for cross-validation)."""
    return type(estimator)(**estimator.get_params())


# -- input checks ----------------------------------------------------------------------------


def as_features(X: npt.ArrayLike, owner: str, *, allow_images: bool = True) -> FloatArray:
    """X as a C-contiguous float32 array; refuses NaN, infinities, empty and 1-D input.

    Integer input is cast, not rescaled: pixel scaling belongs to ``FeatureSpec``.
    """
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise SchemaError(f"{owner}: X must be numeric, got dtype {array.dtype}", field="X")
    max_dims = 4 if allow_images else 2
    if array.ndim < 2 or array.ndim > max_dims or len(array) == 0:
        raise SchemaError(
            f"{owner}: X must be a non-empty (n, features) array"
            + (" or (n, h, w) images" if allow_images else "")
            + f", got shape {array.shape}",
            field="X",
        )
    out = np.ascontiguousarray(array, dtype=np.float32)
    # NaN and inf survive a sum, so one cheap reduction clears the common case; only a
    # non-finite (or overflowing) sum pays for the element-wise check.
    if not np.isfinite(out.sum()) and not np.isfinite(out).all():
        raise SchemaError(f"{owner}: X holds NaN or infinite values; impute them first", field="X")
    return out


def as_labels(y: npt.ArrayLike, n_rows: int, owner: str) -> LabelArray:
    """y as int64 of length ``n_rows``; class labels must be integers."""
    array = np.asarray(y)
    if array.ndim != 1 or len(array) != n_rows:
        raise SchemaError(
            f"{owner}: y must be 1-D with one label per row of X ({n_rows}), got {array.shape}",
            field="y",
        )
    if array.dtype.kind not in "iub":
        if (
            array.dtype.kind == "f"
            and np.all(np.isfinite(array))
            and np.all(array == np.round(array))
        ):
            return array.astype(np.int64)
        raise SchemaError(
            f"{owner}: y must hold integer class labels, got {array.dtype}", field="y"
        )
    return array.astype(np.int64, copy=False)


def encode_labels(y: LabelArray, owner: str) -> tuple[LabelArray, LabelArray]:
    """The sorted classes and y as indices 0..k-1 into them; at least two classes."""
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise SchemaError(
            f"{owner}: y has a single class {classes.tolist()}; a classifier needs two or more",
            field="y",
        )
    return classes.astype(np.int64), codes.astype(np.int64)


def check_features(X: FloatArray, n_features: int, owner: str) -> FloatArray:
    """Flattened rows, refusing a width different from the one seen in fit."""
    flat = X.reshape(len(X), -1)
    if flat.shape[1] != n_features:
        raise SchemaError(
            f"{owner}: X has {flat.shape[1]} features per row, the model was fitted on "
            f"{n_features}",
            field="X",
        )
    return flat


# -- hyperparameter checks -------------------------------------------------------------------


def check_int(owner: str, name: str, value: object, *, minimum: int) -> int:
    """An int >= minimum, else ConfigError naming the parameter and the allowed range.

    `sklearn.utils.check_scalar` does the check; its TypeError/ValueError becomes the
    project's message (``MLPClassifier.density must be an integer >= 1, got 0``).
    """
    try:
        if isinstance(value, bool):  # an Integral to Python, never a count to a user
            raise TypeError(f"{name} must be an int, not bool")
        check_scalar(value, f"{owner}.{name}", numbers.Integral, min_val=minimum)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}") from exc
    return int(cast(numbers.Integral, value))


def check_optional_int(owner: str, name: str, value: object, *, minimum: int) -> int | None:
    return None if value is None else check_int(owner, name, value, minimum=minimum)


class SklearnEstimator(Estimator):
    """What the scikit-learn wrappers (classifiers and regressors) share before a fit."""

    seed: int
    n_jobs: int | None = None

    def _fit_rows(self, X: npt.ArrayLike) -> FloatArray:
        """Check the parameters, then ``X`` as flat float32 rows to fit on."""
        owner = type(self).__name__
        self.checked_params()
        check_optional_int(owner, "n_jobs", self.n_jobs, minimum=1)
        features = as_features(X, owner)
        flat: FloatArray = features.reshape(len(features), -1)
        return flat

    def _rows(self, X: npt.ArrayLike) -> FloatArray:
        """``X`` as flat float32 rows of the fitted width, to predict."""
        self.require_fitted()
        owner = type(self).__name__
        return check_features(as_features(X, owner), self.n_features_in_, owner)


def check_float(
    owner: str,
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite number within the interval, else ConfigError spelling out the interval.

    `sklearn.utils.check_scalar` checks type and bounds; finiteness is checked here, as
    it lets NaN through (every comparison with NaN is false).
    """
    try:
        if isinstance(value, bool):
            raise TypeError(f"{name} must be a number, not bool")
        check_scalar(
            value,
            f"{owner}.{name}",
            numbers.Real,
            min_val=low,
            max_val=None if math.isinf(high) else high,
            include_boundaries=_BOUNDARIES[(low_open, high_open or math.isinf(high))],
        )
        number = float(cast(numbers.Real, value))
        if not math.isfinite(number):
            raise ValueError(f"{name} must be finite")
    except (TypeError, ValueError) as exc:
        left = "(" if low_open else "["
        right = ")" if high_open or math.isinf(high) else "]"
        upper = "inf" if math.isinf(high) else f"{high:g}"
        raise ConfigError(
            f"{owner}.{name} must be in {left}{low:g}, {upper}{right}, got {value!r}"
        ) from exc
    return number


# check_scalar's names for which ends of [low, high] belong to the interval
_BOUNDARIES: dict[tuple[bool, bool], Literal["both", "left", "right", "neither"]] = {
    (False, False): "both",
    (False, True): "left",
    (True, False): "right",
    (True, True): "neither",
}
