"""Models kept loaded for serving, and the dataset aliases (``best``, ``latest``) that pick them.

Loading verifies every artifact's sha256, which is too slow to do per request;
each run's model is loaded once and kept. An alias is looked up in the registry
at most once per time-to-live (one cache, here), or again at once when this
process finishes a run or moves an alias, so a new best run is served without a
restart.

A prediction for one row costs about 50 µs in ONNX Runtime, less than a hop to a
worker thread, so `ModelCache.hot` answers a loaded model (by run id, or by an
alias looked up less than its time-to-live ago) without touching the warehouse
or the disk: a face may call it on its event loop. Anything that may need them
goes through `ModelCache.load`, in a worker thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows.inputs import ModelInput
from headwater.flows.runs import ServedModel
from headwater.flows.workspace import Workspace

__all__ = ["ALIASES", "ModelCache", "Prediction", "predict"]

ALIASES = frozenset({"best", "latest"})
"""References resolved per dataset; anything else is a run id."""


@dataclass(frozen=True)
class Prediction:
    """Labels and per-class probabilities for a batch of rows, from one run; a regressor's
    numbers in ``values`` (no classes, no probabilities), with ``lower``/``upper`` ends of
    a ``coverage`` (0.9) interval when its model gives one (forest, boosting)."""

    run_id: str
    classes: list[str]
    proba: npt.NDArray[np.float32]
    values: npt.NDArray[np.float64] | None = None
    lower: npt.NDArray[np.float64] | None = None
    upper: npt.NDArray[np.float64] | None = None
    coverage: float | None = None

    @property
    def labels(self) -> list[str]:
        if self.values is not None:
            return [f"{v:.6g}" for v in self.values.tolist()]
        return [self.classes[i] for i in np.argmax(self.proba, axis=1)]


def predict(served: ServedModel, data: ModelInput) -> Prediction:
    if served.regression:
        numbers = served.predict_interval(data)
        empty = np.zeros((len(numbers.values), 0), dtype=np.float32)
        coverage = served.coverage if numbers.lower is not None else None
        return Prediction(
            served.run_id, [], empty, numbers.values, numbers.lower, numbers.upper, coverage
        )
    return Prediction(served.run_id, served.classes, served.predict_proba(data))


class ModelCache:
    """Loaded models by run id, and alias answers by (dataset, alias) for ``alias_ttl_s``."""

    def __init__(self, workspace: Workspace, *, alias_ttl_s: float = 2.0) -> None:
        self._workspace = workspace
        self._ttl = alias_ttl_s
        self._models: dict[str, ServedModel] = {}
        self._aliases: dict[tuple[str, str], tuple[str, float]] = {}
        self._loading = threading.Lock()
        self._resolving = threading.Lock()

    def _fresh(self, dataset: str, alias: str) -> str | None:
        found = self._aliases.get((dataset, alias))
        if found is None or time.monotonic() - found[1] >= self._ttl:
            return None
        return found[0]

    def hot(self, reference: str, dataset: str | None) -> ServedModel | None:
        """A loaded model, or None; never blocks, so it may run on an event loop."""
        if reference in ALIASES:
            run_id = self._fresh(dataset, reference) if dataset is not None else None
            if run_id is None:
                return None
            reference = run_id
        return self._models.get(reference)

    def resolve(self, reference: str, dataset: str | None = None) -> str:
        """A run id from a run id, or from ``best``/``latest`` of a dataset.

        Look-ups take turns: when a burst arrives with the alias due, one thread asks
        the registry and the others reuse its answer.
        """
        if reference not in ALIASES:
            return reference
        if dataset is None:
            raise ConfigError(f"alias {reference!r} needs a dataset, e.g. ?dataset=mnist")
        with self._resolving:
            run_id = self._fresh(dataset, reference)
            if run_id is None:
                now = time.monotonic()
                run_id = run_flows.resolve_run(self._workspace, dataset, reference)
                self._aliases[(dataset, reference)] = (run_id, now)
            return run_id

    def model(self, run_id: str) -> ServedModel:
        """The run's model, loaded (and its files verified) the first time it is asked for."""
        cached = self._models.get(run_id)
        if cached is not None:
            return cached
        with self._loading:
            if run_id not in self._models:
                self._models[run_id] = run_flows.load_model(self._workspace, run_id)
            return self._models[run_id]

    def load(self, reference: str, dataset: str | None = None) -> ServedModel:
        """Resolve an alias and load the model if needed; may read the registry and the disk."""
        return self.model(self.resolve(reference, dataset))

    def invalidate(self) -> None:
        """Forget alias answers (a run finished, or an alias moved); models stay loaded."""
        self._aliases.clear()

    def predict(
        self, reference: str, data: ModelInput, *, dataset: str | None = None
    ) -> Prediction:
        return predict(self.load(reference, dataset), data)
