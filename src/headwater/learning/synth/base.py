"""What every synthesizer shares: settings by name, fit a table, sample rows, safe files.

The conventions are the estimators': ``__init__`` only stores settings, ``fit``
checks them and learns attributes ending in ``_``, sampling before fitting raises
:class:`ModelNotFitted`. Every synthesizer learns on the same matrix
(:class:`~headwater.learning.synth.codec.TableCodec`), so they differ only in how
they model it. Saved as ``synth.safetensors`` (arrays) and ``synth.json`` (settings,
column types): no file that can run code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from safetensors.numpy import load_file, save_file

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning.synth.codec import Block, TableCodec

__all__ = [
    "SETTINGS_FILE",
    "STATE_FILE",
    "EpochFn",
    "Synthesizer",
    "read_files",
    "sha256_of",
]

FloatMatrix = npt.NDArray[np.float64]
Tensors = dict[str, npt.NDArray[np.float64]]
Meta = dict[str, object]
EpochFn = Callable[[int, dict[str, float]], None]
"""Called as (epoch, metrics) after each epoch of a synthesizer that learns in epochs."""

STATE_FILE = "synth.safetensors"
SETTINGS_FILE = "synth.json"


class Synthesizer:
    """Base class: subclasses model the codec's matrix in ``_fit_matrix``/``_sample_matrix``."""

    method: ClassVar[str] = "synthesizer"
    draw_categories: ClassVar[bool] = True
    """Categories are drawn from the decoded weights (True) or taken as the largest."""

    seed: int

    def get_params(self) -> dict[str, object]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def check_params(self) -> None:
        """Refuse settings out of range with a ConfigError naming the setting."""
        if self.seed < 0:
            raise ConfigError(f"{type(self).__name__}.seed must be 0 or more, got {self.seed}")

    def fit(
        self, table: pa.Table, *, label: str | None = None, on_epoch: EpochFn | None = None
    ) -> Self:
        """Learn ``table``'s columns and how they go together; condition on ``label`` if given."""
        self.check_params()
        if table.num_rows < 2:
            raise SchemaError(
                f"synthesis needs at least 2 rows to learn from, got {table.num_rows}"
            )
        if label is not None and label not in table.column_names:
            raise SchemaError(f"the label column {label!r} is not in the table", field=label)
        rng = np.random.default_rng(self.seed)
        self.codec_ = TableCodec().fit(table, rng)
        if not self.codec_.blocks:
            raise SchemaError("every column holds one value: there is nothing to synthesize")
        self.label_ = label if label in {b.column for b in self.codec_.blocks} else None
        self._fit_matrix(self.codec_.encode(table, rng), rng, on_epoch)
        return self

    def sample(self, n: int, seed: int = 0) -> pa.Table:
        """``n`` new rows, the same for the same ``seed``, in the table's own column types."""
        self.require_fitted()
        if n < 1:
            raise ConfigError(f"the number of rows to sample must be 1 or more, got {n}")
        rng = np.random.default_rng(seed)
        matrix = self._sample_matrix(n, rng)
        return self.codec_.decode(matrix, rng, draw=self.draw_categories)

    def require_fitted(self) -> None:
        if not hasattr(self, "codec_"):
            raise ModelNotFitted(type(self).__name__)

    @property
    def label_block(self) -> Block | None:
        return next((b for b in self.codec_.blocks if b.column == self.label_), None)

    # ---- what subclasses write ----------------------------------------------------------
    def _fit_matrix(
        self, matrix: FloatMatrix, rng: np.random.Generator, on_epoch: EpochFn | None
    ) -> None:
        raise NotImplementedError

    def _sample_matrix(self, n: int, rng: np.random.Generator) -> FloatMatrix:
        raise NotImplementedError

    def _state(self) -> tuple[Meta, Tensors]:
        raise NotImplementedError

    def _restore(self, meta: Meta, tensors: Tensors) -> None:
        raise NotImplementedError

    # ---- files -------------------------------------------------------------------------
    def save(self, folder: Path) -> dict[str, str]:
        """Write the two files into ``folder``; return each file's sha256 by name."""
        self.require_fitted()
        folder.mkdir(parents=True, exist_ok=True)
        codec_meta, codec_tensors = self.codec_.state()
        meta, tensors = self._state()
        settings = {
            "method": self.method,
            "params": self.get_params(),
            "label": self.label_,
            "codec": codec_meta,
            "model": meta,
        }
        arrays = {k: np.ascontiguousarray(v) for k, v in {**codec_tensors, **tensors}.items()}
        save_file(arrays, str(folder / STATE_FILE))
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str))
        return {name: sha256_of(folder / name) for name in (STATE_FILE, SETTINGS_FILE)}

    @classmethod
    def restore(cls, settings: Meta, tensors: Tensors) -> Self:
        params = settings["params"]
        codec, model = settings["codec"], settings["model"]
        assert isinstance(params, dict)
        assert isinstance(codec, dict)
        assert isinstance(model, dict)
        made = cls(**params)
        made.codec_ = TableCodec.from_state(codec, tensors)
        label = settings.get("label")
        made.label_ = None if label is None else str(label)
        made._restore(model, {k: v for k, v in tensors.items() if not k.startswith("codec.")})
        return made

    codec_: TableCodec
    label_: str | None


def read_files(folder: Path) -> tuple[Meta, Tensors]:
    """The settings and arrays a synthesizer saved into ``folder``."""
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    if not isinstance(settings, dict):
        raise SchemaError(f"{folder / SETTINGS_FILE} is not a synthesizer's settings")
    return settings, dict(load_file(str(folder / STATE_FILE)))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
