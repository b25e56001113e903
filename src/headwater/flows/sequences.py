"""Sequences, URL first: analyze a source, train on its sequences, predict who typed each one.

What the keystroke app did, for any paginated JSON API of sequences (and every face):

* `analyze_source`: a URL (ingested once: a URL already analyzed is read back from the
  warehouse, nothing fetched again; ``refresh`` fetches and loads only what changed) or a
  dataset; answers the first N events, the per-attempt features a model will learn from
  (and the ones left out, and why), and the quarantined sequences with their reasons;
* `train_sequences`: one run on a sequence dataset's valid sequences: the LSTM on the
  (interval, symbol) events, any table classifier (AdaBoost, ...) on the per-attempt
  features. Every model on one dataset with one seed and holdout gets the *same*
  held-out sequences, so the leaderboard compares them on equal terms; the run's name
  is kept as an alias (never a file name);
* `predict_sequences`: a run (id or name) over the sequences of a URL or a JSON file,
  one prediction per sequence with its probabilities, written as CSV whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from headwater.data.features import ColumnChoice, FeatureSpec, Numeric
from headwater.data.sequence_features import SequenceFeatures
from headwater.data.sequences import Sequences, SequenceSpec, find_spec, sequences_of
from headwater.errors import ConfigError, NotFound, RunNotFound, SchemaError, TaskMismatch
from headwater.flows.lifecycle import (
    EpochFn,
    Run,
    RunSpec,
    check_run_name,
    check_seed,
    run_lifecycle,
)
from headwater.flows.runs import load_model
from headwater.flows.workspace import Workspace
from headwater.learning import classification_metrics, holdout_split, make_estimator, save_model
from headwater.learning.artifacts import read_verified
from headwater.learning.base import ParamValue
from headwater.learning.params import SEQUENCE_PARAMS, model_params
from headwater.learning.sequence_models import (
    ONNX_FILE,
    LSTMClassifier,
    SequencePredictor,
    save_sequence_model,
)
from headwater.storage.fetch import is_url
from headwater.storage.lake import sha256_file
from headwater.storage.pages import Page, fetch_pages, pages_source
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry
from headwater.storage.warehouse import sequences as seq_store

__all__ = [
    "MAX_FIRST",
    "SEQUENCE_MODELS",
    "Analysis",
    "PredictionTable",
    "SequenceTrainRequest",
    "analyze_source",
    "learns_sequences",
    "predict_sequences",
    "resolve_sequence_run",
    "sequence_run_spec",
    "train_sequences",
]

MAX_FIRST = 1000
"""The most events (or predictions) a face shows at once."""
SEQUENCE_MODELS = ("lstm", "adaboost", "random_forest", "hist_gradient_boosting", "logistic", "mlp")
"""What trains on a sequence dataset: the LSTM on the events, classifiers on the per-attempt
features (no regressor: the label names who; no CNN: the features are no image)."""
SEQUENCE_FILE = "sequence_features.json"
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class Analysis:
    """What a source holds, as sequences, and what a model would learn from it."""

    dataset: str
    source: str
    fetched: bool
    expected: str | None
    counts: dict[str, int]
    records: list[dict[str, object]]
    features: list[dict[str, str | None]]
    feature_rows: list[dict[str, object]]
    invalid: list[dict[str, object]]

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _dataset_for_url(ws: Workspace, url: str) -> str | None:
    """The dataset a batch of this URL was loaded into (the newest), if any."""
    found = [
        b for b in cat.list_batches(ws.warehouse) if b.source == url and b.status == "succeeded"
    ]
    return found[-1].dataset if found else None


def analyze_source(
    ws: Workspace,
    source: str,
    *,
    records: str | None = None,
    label: str | None = None,
    paginate: str | None = None,
    max_pages: int | None = None,
    dataset: str | None = None,
    expect: str | None = None,
    first: int = 100,
    refresh: bool = False,
) -> Analysis:
    """Analyze a URL (ingested once; see the module docstring) or a dataset by name."""
    if not 1 <= first <= MAX_FIRST:
        raise ConfigError(f"--first must be between 1 and {MAX_FIRST}, got {first}")
    fetched = False
    name = source
    if is_url(source):
        known = None if refresh else _dataset_for_url(ws, source)
        if known is None:
            report = ws.ingest_pages(
                source, paginate=paginate, records=records, label=label,
                max_pages=max_pages, dataset=dataset, expect=expect,
            )  # fmt: skip
            known, fetched = report.dataset, True
        name = known
    found, spec = _sequence_dataset(ws, name)
    events = seq_store.sequence_events(ws.warehouse, found.key, status=None).to_pandas()
    valid = events[events["status"] == "valid"]
    shown = events.head(first)
    transform = SequenceFeatures().fit(valid if len(valid) else events)
    table = transform.attempt_table(valid.head(first * 64)).head(first)
    bad = seq_store.sequence_rows(ws.warehouse, found.key, status="quarantined", limit=first)
    return Analysis(
        dataset=name,
        source=source,
        fetched=fetched,
        expected=spec.expected,
        counts=seq_store.sequence_counts(ws.warehouse, found.key),
        records=_records(transform, shown),
        features=[c.to_dict() for c in _feature_choices(transform)],
        feature_rows=[
            {str(k): _plain(v) for k, v in row.items()}
            for row in table.reset_index().round(4).to_dict("records")
        ],
        invalid=[{k: _plain(v) for k, v in r.items()} for r in bad.to_pylist()],
    )


def _sequence_dataset(ws: Workspace, name: str) -> tuple[cat.DatasetRow, SequenceSpec]:
    found = cat.get_dataset(ws.warehouse, name)
    spec = find_spec(ws.warehouse, found)
    if spec is None:
        raise SchemaError(
            f"dataset {name!r} holds no sequences: ingest pages whose records are lists of "
            "events (e.g. --records user_data --label user_label)",
            field="records",
        )
    return found, spec


def _records(transform: SequenceFeatures, events: pd.DataFrame) -> list[dict[str, object]]:
    """The first events as a face shows them: the sequence, the symbol and its features."""
    table = transform.event_table(events)
    table.insert(1, "label", events["label"].to_numpy())
    table.insert(2, "status", events["status"].to_numpy())
    return [{str(k): _plain(v) for k, v in row.items()} for row in table.to_dict("records")]


def _plain(value: object) -> object:
    """A JSON-ready value: numbers as numbers, missing as None, times as ISO text."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return value


def _feature_choices(transform: SequenceFeatures) -> list[ColumnChoice]:
    """Each per-attempt feature, and the time parts left out of it, with the reason."""
    used = [ColumnChoice(n, "number", _why(n), Numeric(n)) for n in transform.feature_names()]
    if not transform.absolute:
        used.append(
            ColumnChoice(
                "pace in milliseconds (total time, speed, mean intervals)", None,
                "left out: pace drifts from session to session (warm-up, fatigue); the "
                "intervals over each attempt's own median carry over to new sessions",
            )
        )  # fmt: skip
    if not transform.calendar:
        used.append(
            ColumnChoice(
                "start time parts (year … microsecond)", None,
                "left out: in keystroke data every attempt of a person starts at one clock "
                "second, so these name a session, not a typist, and fail on new data",
            )
        )  # fmt: skip
    return used


def _why(name: str) -> str:
    if name.startswith("digraph_"):
        return "mean interval to the second key of a common pair of keys"
    if name.startswith("key_"):
        return "mean interval to a common key (flight time)"
    return "rhythm of the whole attempt"


# -- training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceTrainRequest:
    dataset: str
    model: str = "adaboost"
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    seed: int = 0
    holdout: float = 0.2
    name: str | None = None
    """Kept as an alias of the run on its dataset (``headwater predict NAME ...``)."""

    def check(self) -> None:
        model_params(self.model)  # ConfigError listing the models for an unknown one
        if not 0 < self.holdout < 1:
            raise ConfigError(f"holdout must be strictly between 0 and 1, got {self.holdout}")
        check_run_name(self.name)
        check_seed(self.seed)


@dataclass(frozen=True)
class _Split:
    events: pd.DataFrame
    keys: npt.NDArray[np.int64]
    y: npt.NDArray[np.int64]
    batches: npt.NDArray[np.int64]
    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]
    names: list[str]


def _split(ws: Workspace, dataset: cat.DatasetRow, request: SequenceTrainRequest) -> _Split:
    """The valid sequences and one seeded, stratified holdout of them (the same for every model)."""
    events = seq_store.sequence_events(ws.warehouse, dataset.key, status="valid").to_pandas()
    per = events.groupby("sequence_key", sort=True).agg(
        label=("label", "first"), batch=("batch_key", "first")
    )
    if per["label"].isna().any() or per.empty:
        raise SchemaError(
            f"dataset {dataset.name!r} has no labelled valid sequences", field="label"
        )
    names = sorted(per["label"].astype(str).unique())
    y = pd.Categorical(per["label"].astype(str), categories=names).codes.astype(np.int64)
    split = holdout_split(y, fraction=request.holdout, seed=request.seed)
    keys = per.index.to_numpy(np.int64)
    return _Split(events, keys, y, per["batch"].to_numpy(np.int64), split.train, split.test, names)


def sequence_run_spec(ws: Workspace, request: SequenceTrainRequest) -> RunSpec:
    """Check a request against the dataset and the model's parameters; nothing is read yet."""
    request.check()
    dataset, _ = _sequence_dataset(ws, request.dataset)
    if request.model not in SEQUENCE_MODELS:
        raise TaskMismatch(
            f"model {request.model!r} does not learn who made a sequence of {dataset.name!r}; "
            f"choose one of {', '.join(SEQUENCE_MODELS)}"
        )
    params = {**request.params, "seed": request.seed}
    if request.model in SEQUENCE_PARAMS:
        chosen: Mapping[str, ParamValue] = _lstm(params).get_params()
    else:
        chosen = make_estimator(request.model, **params).get_params()
    stored = {k: v for k, v in chosen.items() if k != "seed"}
    return RunSpec(dataset, request.model, dict(stored), request.seed, "holdout")


def train_sequences(
    ws: Workspace,
    request: SequenceTrainRequest,
    *,
    run_id: str | None = None,
    on_epoch: EpochFn | None = None,
    stop: threading.Event | None = None,
) -> registry.RunRow:
    """Train, score on the holdout, save and register one run; see the module docstring.

    ``run_id``, ``on_epoch`` and ``stop`` as for `flows.training.train` (a queued run is
    taken over; the LSTM reports each epoch; a set ``stop`` interrupts it).
    """
    spec = sequence_run_spec(ws, request)
    dataset, params = spec.dataset, {**request.params, "seed": request.seed}
    queued = run_id is not None and registry.run_exists(ws.warehouse, run_id)
    with run_lifecycle(
        ws, None if queued else spec, run_id=run_id, on_epoch=on_epoch, stop=stop
    ) as run:
        data = _split(ws, dataset, request)
        train_events = data.events[data.events["sequence_key"].isin(data.keys[data.train])]
        transform = SequenceFeatures().fit(train_events)
        began = time.perf_counter()
        if request.model in SEQUENCE_PARAMS:
            proba, hashes = _fit_lstm(run, params, transform, data)
        else:
            proba, hashes = _fit_table(run, request.model, params, transform, data)
        seconds = time.perf_counter() - began
        hashes.update(_save_transform(run.folder, transform, data.names))
        metrics = _metrics(proba, data, transform)
        run.succeed(
            rows={
                role: (data.keys[rows], sorted({int(b) for b in data.batches[rows]}))
                for role, rows in (("train", data.train), ("test", data.test))
            },
            hashes=hashes,
            metrics=metrics,
            seconds=seconds,
        )
    if request.name:
        now = datetime.now(UTC)
        registry.set_alias(ws.warehouse, dataset.key, request.name, run.run_id, now=now)
    return registry.get_run(ws.warehouse, run.run_id)


def _fit_lstm(
    run: Run, params: Mapping[str, ParamValue], transform: SequenceFeatures, data: _Split
) -> tuple[npt.NDArray[np.float32], dict[str, str]]:
    inputs, lengths, keys = transform.sequence_arrays(data.events)
    order = pd.Index(keys).get_indexer(pd.Index(data.keys))
    inputs, lengths = inputs[order], lengths[order]
    model = _lstm(params)
    model.fit(
        inputs[data.train], lengths[data.train], data.y[data.train],
        n_symbols=len(transform.symbols_), on_epoch=run.epoch_fn(model.epochs),
    )  # fmt: skip
    proba = model.predict_proba(inputs[data.test], lengths[data.test])
    return _full(proba, model.classes_, len(data.names)), save_sequence_model(model, run.folder)


def _lstm(params: Mapping[str, ParamValue]) -> LSTMClassifier:
    """The LSTM with the request's parameters, checked against `LSTMParams` first."""
    checked = model_params("lstm").model_validate(dict(params))
    return LSTMClassifier(**checked.model_dump())


def _fit_table(
    run: Run, name: str, params: Mapping[str, ParamValue], transform: SequenceFeatures,
    data: _Split,
) -> tuple[npt.NDArray[np.float32], dict[str, str]]:  # fmt: skip
    table = transform.attempt_table(data.events).reindex(data.keys)
    spec = FeatureSpec([Numeric(n) for n in table.columns])
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    X = spec.fit(arrow.take(data.train)).transform(arrow)
    estimator = make_estimator(name, **params)
    estimator.fit(X[data.train], data.y[data.train])
    run.start()
    proba = estimator.predict_proba(X[data.test])
    hashes = save_model(estimator, run.folder, features=spec)
    return _full(proba, estimator.classes_, len(data.names)), hashes


def _full(
    proba: npt.NDArray[np.float32], classes: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.float32]:
    """Probabilities over every class of the dataset (a class missing from train gets 0)."""
    out = np.zeros((len(proba), n), dtype=np.float32)
    out[:, classes] = proba
    return out


def _save_transform(folder: Path, transform: SequenceFeatures, names: list[str]) -> dict[str, str]:
    (folder / SEQUENCE_FILE).write_text(transform.to_json())
    (folder / LABELS_FILE).write_text(json.dumps({str(i): n for i, n in enumerate(names)}))
    return {n: sha256_file(folder / n) for n in (SEQUENCE_FILE, LABELS_FILE)}


def _metrics(
    proba: npt.NDArray[np.float32], data: _Split, transform: SequenceFeatures
) -> dict[str, object]:
    truth = data.y[data.test]
    scores = classification_metrics(
        truth, proba.argmax(axis=1), labels=list(range(len(data.names)))
    )
    test = scores.to_dict()
    return {
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "test": test,
        "task": "classification",
        "rows": {"train": len(data.train), "test": len(data.test)},
        "features": [c.to_dict() for c in _feature_choices(transform)],
        "classes": dict(enumerate(data.names)),
    }


# -- predictions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionTable:
    """One prediction per sequence: the CSV's header, its first rows, how many in all."""

    run_id: str
    header: list[str]
    rows: list[list[str]]
    total: int
    accuracy: float | None
    """Over the valid sequences, where the source carries their labels; else None."""
    csv: bytes = b""
    """Every prediction as CSV (header first), when asked for with ``as_csv``."""

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "csv"}


def resolve_sequence_run(ws: Workspace, reference: str) -> registry.RunRow:
    """A run by id, or by the name it was trained under (an alias on its dataset)."""
    if registry.run_exists(ws.warehouse, reference):
        return registry.get_run(ws.warehouse, reference)
    for dataset in cat.list_datasets(ws.warehouse):
        found = registry.get_alias(ws.warehouse, dataset.key, reference)
        if found is not None:
            return registry.get_run(ws.warehouse, found)
    raise RunNotFound(reference)


def learns_sequences(ws: Workspace, run: registry.RunRow) -> bool:
    """Whether a run was trained on a sequence dataset (it predicts one row per sequence)."""
    found = cat.find_dataset(ws.warehouse, run.dataset)
    return found is not None and find_spec(ws.warehouse, found) is not None


def predict_sequences(
    ws: Workspace,
    run: str,
    source: str,
    *,
    records: str | None = None,
    label: str | None = None,
    paginate: str | None = None,
    max_pages: int | None = None,
    out: Path | None = None,
    first: int = 100,
    as_csv: bool = False,
) -> PredictionTable:
    """Who made each sequence of a URL's pages (or a JSON file), with probabilities.

    The source is read, not ingested; ``out`` gets every prediction as CSV, whole or not
    at all, and the answer keeps the first ``first`` rows to show (and, with ``as_csv``,
    all of them as CSV bytes, for a face to hand out without a file).
    """
    if not 1 <= first <= MAX_FIRST:
        raise ConfigError(f"--first must be between 1 and {MAX_FIRST}, got {first}")
    found = resolve_sequence_run(ws, run)
    if found.status != "succeeded":
        raise ConfigError(f"run {found.run_id} is {found.status}; only a succeeded run predicts")
    _, spec = _sequence_dataset(ws, found.dataset)
    rows = _source_rows(ws, source, records, label, paginate, max_pages)
    if spec.label is not None and spec.label not in rows.columns:
        spec = SequenceSpec(**{**spec.__dict__, "label": None})
    missing = [c for c in spec.columns if c not in rows.columns]
    if missing:
        raise SchemaError(
            f"the records of {source} lack {missing}; check --records", field=missing[0]
        )
    seqs = sequences_of(rows[spec.columns], spec)
    proba, names = _probabilities(ws, found, seqs)
    header, lines = _prediction_rows(seqs, proba, names)
    if out is not None:
        _write_csv(out, header, lines)
    return PredictionTable(
        found.run_id, header, lines[:first], len(lines), _accuracy(seqs, proba, names),
        _csv_bytes(header, lines) if as_csv else b"",
    )  # fmt: skip


def _source_rows(
    ws: Workspace, source: str, records: str | None, label: str | None, paginate: str | None,
    max_pages: int | None,
) -> pd.DataFrame:  # fmt: skip
    """Every record of a URL's pages, or of one local JSON page, as rows (nothing loaded)."""
    options = ws.page_options(paginate, records=records, label=label, max_pages=max_pages)
    folder = ws.lake.staging / f"predict-{uuid.uuid4().hex}"
    try:
        if is_url(source):
            pages = fetch_pages(source, folder, options)
        else:
            path = Path(source)
            if not path.is_file():
                raise NotFound(f"{source} is neither a URL nor a file")
            pages = [Page(1, str(path), path)]
        read = pages_source(pages, options, chunk_rows=ws.settings.ingest_chunk_rows).read()
        rows: pd.DataFrame = pa.Table.from_batches(list(read)).to_pandas()
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _probabilities(
    ws: Workspace, run: registry.RunRow, seqs: Sequences
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Every sequence's probability per class of the run's dataset (names in code order)."""
    artifacts = {a.name: a for a in registry.run_artifacts(ws.warehouse, run.run_id)}

    def verified(name: str) -> bytes:
        if name not in artifacts:
            raise NotFound(f"run {run.run_id} has no {name}: it was not trained on sequences")
        return read_verified(Path(artifacts[name].path), artifacts[name].sha256, run.run_id)

    transform = SequenceFeatures.from_json(verified(SEQUENCE_FILE).decode())
    coded = json.loads(verified(LABELS_FILE))
    names = [str(coded[str(code)]) for code in range(len(coded))]
    if run.model in SEQUENCE_PARAMS:
        verified(ONNX_FILE)
        predictor = SequencePredictor(
            artifacts[ONNX_FILE].path, artifacts[ONNX_FILE].sha256, run_id=run.run_id
        )
        inputs, lengths, _ = transform.sequence_arrays(seqs.events)
        return _full(
            predictor.predict_proba(inputs, lengths), predictor.classes_, len(names)
        ), names
    served = load_model(ws, run.run_id)
    table = pa.Table.from_pandas(transform.attempt_table(seqs.events), preserve_index=False)
    return _full(
        served.predictor.predict_proba(served.features.transform(table)),
        served.predictor.classes_,
        len(names),
    ), names


def _prediction_rows(
    seqs: Sequences, proba: npt.NDArray[np.float32], names: list[str]
) -> tuple[list[str], list[list[str]]]:
    """``sequence, [label,] status, predicted, p_<class>...``, one row per sequence."""
    table = seqs.table
    labelled = seqs.spec.label is not None
    header = ["sequence", *(["label"] if labelled else []), "status", "predicted"]
    header += [f"p_{n}" for n in names]
    best = np.asarray(names, dtype=object)[proba.argmax(axis=1)] if len(proba) else np.array([])
    frame = pd.DataFrame({"sequence": table["group_id"].to_numpy()})
    if labelled:
        frame["label"] = table["label"].to_numpy()
    frame["status"] = table["status"].to_numpy()
    frame["predicted"] = best
    probabilities = pd.DataFrame(proba, columns=header[len(frame.columns) :]).map(
        lambda p: f"{p:.6f}"
    )
    lines = pd.concat([frame.astype(str), probabilities], axis="columns").to_numpy().tolist()
    return header, [[_escape(str(v)) for v in line] for line in lines]


def _escape(value: str) -> str:
    """Keep a spreadsheet from running a cell: formulas start with = + - @ (or tab, CR)."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def _accuracy(seqs: Sequences, proba: npt.NDArray[np.float32], names: list[str]) -> float | None:
    if seqs.spec.label is None or not len(proba):
        return None
    valid = (seqs.table["status"] == "valid").to_numpy()
    if not valid.any():
        return None
    best = np.asarray(names, dtype=object)[proba.argmax(axis=1)]
    return float((best[valid] == seqs.table["label"].to_numpy()[valid]).mean())


def _csv_bytes(header: list[str], lines: list[list[str]]) -> bytes:
    sink = io.StringIO()
    writer = csv.writer(sink)
    writer.writerow(header)
    writer.writerows(lines)
    return sink.getvalue().encode()


def _write_csv(out: Path, header: list[str], lines: list[list[str]]) -> None:
    temporary = out.with_name(f".{out.name}.partial")
    try:
        with temporary.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(lines)
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
