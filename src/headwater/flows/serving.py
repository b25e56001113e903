"""Models kept loaded for serving, and the dataset aliases (``best``, ``latest``) that pick them.

Loading verifies every artifact's sha256, which is too slow to do per request;
each run's model is loaded once and kept. Aliases are re-resolved after a short
time-to-live, or at once when this process finishes a run or moves an alias, so
a new best run is served without a restart.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows.runs import ServedModel
from headwater.flows.workspace import Workspace

__all__ = ["ModelCache", "Prediction"]

ALIASES = frozenset({"best", "latest"})


class Prediction:
    """Labels and per-class probabilities for a batch of rows, from one run."""

    def __init__(self, run_id: str, classes: list[str], proba: npt.NDArray[np.float32]) -> None:
        self.run_id, self.classes, self.proba = run_id, classes, proba

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in np.argmax(self.proba, axis=1)]


class ModelCache:
    def __init__(self, workspace: Workspace, *, alias_ttl_s: float = 2.0) -> None:
        self._workspace = workspace
        self._ttl = alias_ttl_s
        self._models: dict[str, ServedModel] = {}
        self._aliases: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def model(self, run_id: str) -> ServedModel:
        cached = self._models.get(run_id)
        if cached is not None:
            return cached
        with self._lock:
            if run_id not in self._models:
                self._models[run_id] = run_flows.load_model(self._workspace, run_id)
            return self._models[run_id]

    def resolve(self, reference: str, dataset: str | None = None) -> str:
        """A run id from a run id, or from ``best``/``latest`` of a dataset."""
        if reference not in ALIASES:
            return reference
        if dataset is None:
            raise ConfigError(f"alias {reference!r} needs a dataset, e.g. ?dataset=mnist")
        key = (dataset, reference)
        hit = self._aliases.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        run_id = run_flows.resolve_run(self._workspace, dataset, reference)
        self._aliases[key] = (run_id, now)
        return run_id

    def invalidate(self) -> None:
        """Forget alias answers (a run finished, or an alias moved); models stay loaded."""
        self._aliases.clear()

    def predict(
        self,
        reference: str,
        data: npt.NDArray[np.generic] | pa.Table,
        *,
        dataset: str | None = None,
    ) -> Prediction:
        run_id = self.resolve(reference, dataset)
        served = self.model(run_id)
        return Prediction(run_id, served.classes, served.predict_proba(data))
