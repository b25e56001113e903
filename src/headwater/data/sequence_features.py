"""Features of sequences (typing): what identifies a typist, declared, fitted, saved with a model.

Calendar parts alone cannot tell typists apart on new data: in keystroke services every
attempt of one person often starts at the same clock second, so the parts identify a
*session* inside one set of pages and nothing after. What carries over is rhythm. So
`SequenceFeatures`, fitted on the training sequences only and stored as JSON beside the
model (``sequence_features.json``), makes three views of the same events, all with
whole-column pandas/numpy operations (groupby, pivot), never a Python loop per event:

* `event_table`: one row per event: its position, the symbol encoded as a category
  (codes 1..k learned in training, 0 for one never seen), the interval to the previous
  event (the flight time: an API that sends one time per key has no dwell time), and
  the timestamp's parts, year to microsecond;
* `attempt_table`: one row per sequence, the per-attempt features the scikit-learn
  models learn from: total time, speed, the interval statistics (mean, spread,
  quantiles, pauses, the drift from first to second half), the mean flight time to each
  of the commonest keys and of each of the commonest digraphs (the pair typed) over
  the attempt's own median interval: rhythm apart from pace. Pace itself (milliseconds,
  speed) only with ``absolute=True``: it drifts from session to session (warm-up,
  fatigue), so a model that learns it scores well on a random holdout of the same
  session and worse on a new one (demo, 20 typists, random forest on unseen pages:
  86.1% with pace, 98.4% without); calendar parts of the start only with
  ``calendar=True`` (off by default, see above);
* `sequence_arrays`: each sequence as (standardised log interval, symbol code) per
  event, padded, with its length: the LSTM's input.

Input events are a frame with ``sequence_key``, ``position``, ``occurred_at``,
``interval_us`` and ``symbol`` (`headwater.data.sequences.events_frame`, or the
warehouse's ``fact_event``), sorted by sequence and position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from headwater.errors import ModelNotFitted, SchemaError

__all__ = ["EVENT_COLUMNS", "TIME_PARTS", "SequenceFeatures"]

EVENT_COLUMNS = ("sequence_key", "position", "occurred_at", "interval_us", "symbol")
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second", "microsecond")
FORMAT = "headwater.sequence_features"
VERSION = 1
_PAIR = "\x1f"
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass
class SequenceFeatures:
    """The declared sequence transform; ``fit`` learns the vocabularies and the scale."""

    max_keys: int = 24
    max_digraphs: int = 48
    calendar: bool = False
    absolute: bool = False
    max_length: int = 128
    symbols_: list[str] = field(default_factory=list)
    keys_: list[str] = field(default_factory=list)
    digraphs_: list[str] = field(default_factory=list)
    log_interval_: tuple[float, float] | None = None

    def fit(self, events: pd.DataFrame) -> SequenceFeatures:
        """Learn the symbols, the commonest keys and digraphs, the interval scale: training only."""
        frame = _checked(events)
        counts = frame["symbol"].value_counts()
        self.symbols_ = sorted(str(s) for s in counts.index)
        self.keys_ = [str(s) for s in counts.index[: self.max_keys]]
        pairs = _digraphs(frame)
        pairs = pairs[pairs != ""].value_counts()
        self.digraphs_ = [str(p) for p in pairs.index[: self.max_digraphs]]
        logs = np.log1p(frame["interval_us"].dropna().to_numpy(np.float64) / 1000.0)
        self.log_interval_ = (
            (float(logs.mean()), float(logs.std()) or 1.0) if len(logs) else (0.0, 1.0)
        )
        return self

    def require_fitted(self) -> tuple[float, float]:
        if self.log_interval_ is None:
            raise ModelNotFitted("SequenceFeatures is not fitted; call .fit(events) first")
        return self.log_interval_

    # -- the three views ---------------------------------------------------------------------

    def symbol_codes(self, symbols: pd.Series) -> npt.NDArray[np.int64]:
        """Each symbol's category code: 1..k in training's order, 0 for one never seen."""
        self.require_fitted()
        codes = pd.Index(self.symbols_).get_indexer(pd.Index(symbols.astype(str)))
        return np.asarray(codes, dtype=np.int64) + 1  # -1 (never seen) becomes 0

    def event_table(self, events: pd.DataFrame) -> pd.DataFrame:
        """One row per event: position, symbol code, interval (ms) and the time's parts."""
        frame = _checked(events)
        stamps = pd.to_datetime(frame["occurred_at"], utc=True)
        out = pd.DataFrame(
            {
                "sequence_key": frame["sequence_key"].to_numpy(),
                "position": frame["position"].to_numpy(),
                "symbol": frame["symbol"].to_numpy(),
                "symbol_code": self.symbol_codes(frame["symbol"]),
                "interval_ms": frame["interval_us"].to_numpy(np.float64) / 1000.0,
            }
        )
        for part in TIME_PARTS:
            out[part] = getattr(stamps.dt, part).to_numpy()
        return out

    def feature_names(self) -> list[str]:
        """The columns of `attempt_table`, in order."""
        self.require_fitted()
        names = ["events", "backspaces", "interval_cv", "log_interval_std", "pauses", "drift"]
        names += [f"key_{i:02d}_rel" for i in range(len(self.keys_))]
        names += [f"digraph_{i:02d}_rel" for i in range(len(self.digraphs_))]
        if self.absolute:
            names += ["total_ms", "keys_per_s", "interval_mean_ms", "interval_std_ms"]
            names += [
                "log_interval_mean",
                *(f"interval_q{round(q * 100):02d}_ms" for q in _QUANTILES),
            ]
            names += [f"key_{i:02d}_ms" for i in range(len(self.keys_))]
            names += [f"digraph_{i:02d}_ms" for i in range(len(self.digraphs_))]
        if self.calendar:
            names += [f"start_{p}" for p in TIME_PARTS]
        return names

    def attempt_table(self, events: pd.DataFrame) -> pd.DataFrame:
        """One row per sequence (index: sequence key, in first-seen order); see the module doc."""
        self.require_fitted()
        frame = _checked(events)
        seq = frame["sequence_key"]
        ms = frame["interval_us"].astype("float64") / 1000.0
        by = ms.groupby(seq, sort=False)
        median = by.median()
        out = pd.DataFrame(index=pd.Index(seq.unique(), name="sequence_key"))
        out["events"] = seq.value_counts(sort=False).reindex(out.index)
        out["backspaces"] = (frame["symbol"] == "[backspace]").groupby(seq, sort=False).sum()
        out["total_ms"] = by.sum()
        out["keys_per_s"] = (out["events"] - 1) / (out["total_ms"] / 1000.0).where(
            out["total_ms"] > 0
        )
        out["interval_mean_ms"] = by.mean()
        out["interval_std_ms"] = by.std()
        out["interval_cv"] = out["interval_std_ms"] / out["interval_mean_ms"]
        logs = pd.Series(np.log1p(ms.to_numpy()), index=ms.index)
        out["log_interval_mean"] = logs.groupby(seq, sort=False).mean()
        out["log_interval_std"] = logs.groupby(seq, sort=False).std()
        for q in _QUANTILES:
            out[f"interval_q{round(q * 100):02d}_ms"] = by.quantile(q)
        out["pauses"] = (ms > 2.5 * seq.map(median)).groupby(seq, sort=False).sum()
        out["drift"] = _drift(frame, ms)
        keys = _mean_by(seq, ms, frame["symbol"].astype(str), self.keys_, "key", out.index)
        pairs = _mean_by(seq, ms, _digraphs(frame), self.digraphs_, "digraph", out.index)
        out = pd.concat([out, *_absolute_and_relative(keys, median), *_absolute_and_relative(
            pairs, median)], axis="columns")  # fmt: skip
        if self.calendar:
            start = pd.to_datetime(frame["occurred_at"], utc=True).groupby(seq, sort=False).min()
            for part in TIME_PARTS:
                out[f"start_{part}"] = getattr(start.dt, part)
        return out[self.feature_names()].astype("float64")

    def sequence_arrays(
        self, events: pd.DataFrame
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(inputs (n, T, 2), lengths (n,), sequence keys (n,)), padded with zeros to T.

        Channel 0: the standardised log interval (0 for a sequence's first event), about
        the sequence's own mean unless ``absolute`` (see the module docstring);
        channel 1: the symbol's code. A sequence longer than ``max_length`` keeps its first.
        """
        mean, std = self.require_fitted()
        frame = _checked(events)
        seq = frame["sequence_key"]
        row = seq.ne(seq.shift()).cumsum().to_numpy() - 1  # 0.. per sequence, in order
        step = frame.groupby(seq, sort=False).cumcount().to_numpy()
        keys = seq.unique()
        lengths = np.minimum(np.bincount(row, minlength=len(keys)), self.max_length)
        width = int(lengths.max()) if len(lengths) else 1
        ms = frame["interval_us"].to_numpy(np.float64) / 1000.0
        logs = pd.Series(np.log1p(ms), index=frame.index)
        if not self.absolute:  # each sequence's rhythm about its own pace
            logs = logs - logs.groupby(seq, sort=False).transform("mean") + mean
        logs = (logs - mean) / std
        inputs = np.zeros((len(keys), width, 2), dtype=np.float32)
        keep = step < self.max_length
        inputs[row[keep], step[keep], 0] = np.nan_to_num(logs.to_numpy()[keep], nan=0.0)
        inputs[row[keep], step[keep], 1] = self.symbol_codes(frame["symbol"])[keep]
        return inputs, lengths.astype(np.int64), np.asarray(keys, dtype=np.int64)

    # -- saved with the model ------------------------------------------------------------------

    def to_json(self) -> str:
        self.require_fitted()
        return json.dumps(
            {"format": FORMAT, "version": VERSION, **self.__dict__}, sort_keys=True, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> SequenceFeatures:
        raw = json.loads(text)
        if raw.pop("format", None) != FORMAT or raw.pop("version", None) != VERSION:
            raise SchemaError(f"not a {FORMAT} v{VERSION} file", field="format")
        raw["log_interval_"] = tuple(raw["log_interval_"])
        return cls(**raw)


def _checked(events: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise SchemaError(f"events lack the columns {missing}", field=missing[0])
    return events.reset_index(drop=True)


def _digraphs(frame: pd.DataFrame) -> pd.Series:
    """Each event's pair with the symbol before it in its sequence ('' for the first)."""
    symbols = frame["symbol"].astype(str)
    previous = symbols.groupby(frame["sequence_key"], sort=False).shift()
    return (previous + _PAIR + symbols).fillna("")


def _drift(frame: pd.DataFrame, ms: pd.Series) -> pd.Series:
    """Mean interval of a sequence's second half over its first: slowing down or warming up."""
    seq = frame["sequence_key"]
    step = frame.groupby(seq, sort=False).cumcount()
    size = seq.map(seq.value_counts())
    late = step >= size / 2
    halves = ms.groupby([seq, late], sort=False).mean().unstack()
    return halves.get(True, pd.Series(dtype="float64")) / halves.get(
        False, pd.Series(dtype="float64")
    )


def _mean_by(
    seq: pd.Series, ms: pd.Series, what: pd.Series, vocabulary: list[str], prefix: str,
    index: pd.Index,
) -> pd.DataFrame:  # fmt: skip
    """Mean interval per sequence and per vocabulary entry, one column each (NaN: not typed)."""
    wanted = what.isin(vocabulary) & ms.notna()
    means = ms[wanted].groupby([seq[wanted], what[wanted]]).mean().unstack()
    means = means.reindex(index=index, columns=vocabulary)
    means.columns = [f"{prefix}_{i:02d}" for i in range(len(vocabulary))]
    return means


def _absolute_and_relative(means: pd.DataFrame, median: pd.Series) -> list[pd.DataFrame]:
    """The means in ms (missing: the attempt's median) and over the attempt's median."""
    filled = means.apply(lambda column: column.fillna(median))
    relative = filled.div(median, axis="index")
    return [filled.add_suffix("_ms"), relative.add_suffix("_rel")]
