"""Versioned migrations: the warehouse schema, created and evolved in order.

Each migration is a list of DDL statements written once for both backends; the
few words that differ (``BLOB`` / ``BYTEA``) are filled from ``_TYPES``. A
migration runs in one transaction together with its row in
``schema_migrations``, so a half-applied migration cannot exist. Append new
migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from headwater.settings import Dialect
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse.base import Warehouse

__all__ = ["MIGRATIONS", "Migration", "migrate"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "duckdb": {"blob": "BLOB", "double": "DOUBLE"},
    "postgres": {"blob": "BYTEA", "double": "DOUBLE PRECISION"},
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    steps: Callable[[Warehouse], None] | None = None
    """Work that plain DDL cannot say once for both backends, run after the statements."""

    def render(self, dialect: Dialect) -> list[str]:
        return [s.replace("{blob}", _TYPES[dialect]["blob"]) for s in self.statements]


STAR_SCHEMA = Migration(
    1,
    "star schema: datasets, splits, labels, batches, lake manifest, image facts",
    (
        "CREATE SEQUENCE seq_dataset",
        "CREATE SEQUENCE seq_label",
        "CREATE SEQUENCE seq_batch",
        "CREATE SEQUENCE seq_image",
        "CREATE SEQUENCE seq_row",
        """CREATE TABLE dim_split (
            split_key SMALLINT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE)""",
        """INSERT INTO dim_split (split_key, name) VALUES
            (1, 'train'), (2, 'validation'), (3, 'test'), (4, 'unassigned')""",
        """CREATE TABLE dim_dataset (
            dataset_key BIGINT PRIMARY KEY DEFAULT nextval('seq_dataset'),
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('image', 'tabular')),
            fact_table TEXT NOT NULL,
            label_column TEXT,
            arrow_schema TEXT,
            created_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE dim_label (
            label_key BIGINT PRIMARY KEY DEFAULT nextval('seq_label'),
            dataset_key BIGINT NOT NULL REFERENCES dim_dataset (dataset_key),
            label TEXT NOT NULL,
            UNIQUE (dataset_key, label))""",
        """CREATE TABLE lake_manifest (
            sha256 TEXT PRIMARY KEY,
            original_name TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            media_type TEXT NOT NULL,
            source TEXT NOT NULL,
            lake_path TEXT NOT NULL,
            added_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE dim_batch (
            batch_key BIGINT PRIMARY KEY,
            dataset_key BIGINT NOT NULL REFERENCES dim_dataset (dataset_key),
            fingerprint TEXT NOT NULL,
            raw_sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            original_name TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            rows_read BIGINT NOT NULL DEFAULT 0,
            rows_loaded BIGINT NOT NULL DEFAULT 0,
            rows_duplicate BIGINT NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
            error TEXT,
            curated_path TEXT)""",
        """CREATE TABLE batch_file (
            batch_key BIGINT NOT NULL REFERENCES dim_batch (batch_key),
            sha256 TEXT NOT NULL REFERENCES lake_manifest (sha256),
            role TEXT NOT NULL,
            PRIMARY KEY (batch_key, sha256))""",
        # Facts carry their keys but no enforced foreign keys: the loader writes
        # dimensions first in the same transaction, and bulk loads stay fast.
        """CREATE TABLE fact_image (
            image_key BIGINT PRIMARY KEY DEFAULT nextval('seq_image'),
            dataset_key BIGINT NOT NULL,
            batch_key BIGINT NOT NULL,
            split_key SMALLINT NOT NULL,
            label_key BIGINT,
            source_row BIGINT NOT NULL,
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            channels SMALLINT NOT NULL,
            pixel_dtype TEXT NOT NULL,
            pixels {blob} NOT NULL,
            row_hash TEXT COLLATE "C" NOT NULL,
            ingested_at TIMESTAMPTZ NOT NULL,
            UNIQUE (dataset_key, row_hash))""",
    ),
)

RUN_REGISTRY = Migration(
    2,
    "run registry: runs, per-epoch metrics, artifacts with hashes, and the exact rows seen",
    (
        # No foreign keys point at dim_run: runs are updated as they progress, and DuckDB
        # refuses updates to rows that other tables reference.
        """CREATE TABLE dim_run (
            run_id TEXT PRIMARY KEY,
            dataset_key BIGINT NOT NULL REFERENCES dim_dataset (dataset_key),
            model TEXT NOT NULL,
            params_json TEXT NOT NULL,
            seed BIGINT NOT NULL,
            evaluation TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
            code_version TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ,
            train_seconds DOUBLE PRECISION,
            metrics_json TEXT,
            progress_json TEXT,
            error TEXT)""",
        """CREATE TABLE fact_run_epoch (
            run_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            metrics_json TEXT NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (run_id, epoch))""",
        """CREATE TABLE run_artifact (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            PRIMARY KEY (run_id, name))""",
        """CREATE TABLE run_data (
            run_id TEXT NOT NULL,
            role TEXT NOT NULL,
            row_count BIGINT NOT NULL,
            rows_hash TEXT NOT NULL,
            batch_ids TEXT NOT NULL,
            PRIMARY KEY (run_id, role))""",
        """CREATE TABLE run_row (
            run_id TEXT NOT NULL,
            role TEXT NOT NULL,
            row_key BIGINT NOT NULL)""",
        """CREATE TABLE run_alias (
            dataset_key BIGINT NOT NULL,
            alias TEXT NOT NULL,
            run_id TEXT NOT NULL,
            set_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (dataset_key, alias))""",
    ),
)

QUALITY = Migration(
    3,
    "quality: dataset contracts, a report per batch, and the quarantine",
    (
        "CREATE SEQUENCE seq_quarantine",
        """CREATE TABLE dataset_contract (
            dataset_key BIGINT PRIMARY KEY,
            contract_json TEXT NOT NULL,
            approved BOOLEAN NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE quality_report (
            batch_key BIGINT PRIMARY KEY,
            dataset_key BIGINT NOT NULL,
            status TEXT NOT NULL,
            report_json TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE quarantine (
            quarantine_key BIGINT PRIMARY KEY DEFAULT nextval('seq_quarantine'),
            dataset_key BIGINT NOT NULL,
            batch_key BIGINT NOT NULL,
            source_row BIGINT NOT NULL,
            check_name TEXT NOT NULL,
            field TEXT NOT NULL,
            value_text TEXT,
            row_payload {blob} NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('quarantined', 'released', 'dropped')),
            quarantined_at TIMESTAMPTZ NOT NULL,
            decided_at TIMESTAMPTZ,
            decision_note TEXT)""",
    ),
)


_FACT_IMAGE_V4 = """CREATE TABLE {table} (
    image_key BIGINT PRIMARY KEY DEFAULT nextval('seq_image'),
    dataset_key BIGINT NOT NULL,
    batch_key BIGINT NOT NULL,
    split_key SMALLINT NOT NULL,
    label_key BIGINT,
    source_row BIGINT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    channels SMALLINT NOT NULL,
    pixel_dtype TEXT NOT NULL,
    pixels BLOB NOT NULL,
    row_hash TEXT COLLATE "C" NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL)"""


def _drop_row_hash_uniques(wh: Warehouse) -> None:
    """Drop the unique indexes on fact row hashes; PostgreSQL can, DuckDB rebuilds the table."""
    if wh.dialect == "postgres":
        for table, constraint in wh.fetch(
            "SELECT table_name, constraint_name FROM information_schema.table_constraints "
            "WHERE table_schema = current_schema() AND constraint_type = 'UNIQUE' "
            "AND table_name LIKE 'fact\\_%%'"
        ):
            wh.execute("ALTER TABLE {t} DROP CONSTRAINT {c}", t=str(table), c=str(constraint))
        return
    _rebuild(wh, "fact_image", partial(wh.execute, _FACT_IMAGE_V4))
    for dataset in cat.list_datasets(wh):
        if dataset.kind == "tabular" and dataset.schema is not None:
            create = partial(_create_tabular, wh, dataset.schema)
            _rebuild(wh, dataset.fact_table, create)


def _create_tabular(wh: Warehouse, schema: pa.Schema, table: str) -> None:
    cat.create_tabular_fact_table(wh, table, schema)


def _rebuild(wh: Warehouse, table: str, create: Callable[..., None]) -> None:
    new = f"{table}__v4"
    create(table=new)
    wh.execute("INSERT INTO {new} SELECT * FROM {old}", new=new, old=table)
    wh.execute("DROP TABLE {old}", old=table)
    wh.execute("ALTER TABLE {new} RENAME TO {old}", new=new, old=table)


ROW_HASHES_UNINDEXED = Migration(
    4,
    "facts: the loader keeps duplicates out under a per-dataset lock, not a unique index",
    (),
    steps=_drop_row_hash_uniques,
)
"""A unique index on (dataset, row hash) cost 40% of a PostgreSQL bulk load of MNIST
(0.49 s against 0.28 s for 70,000 rows) and held DuckDB's whole ART index in memory.
Duplicates are found before loading anyway (`existing_row_hashes`), under
`Warehouse.hold_lock`, so the index only repeated that check."""

_RUN_COLUMNS_V2 = [
    "run_id",
    "dataset_key",
    "model",
    "params_json",
    "seed",
    "evaluation",
    "status",
    "code_version",
    "created_at",
    "started_at",
    "finished_at",
    "train_seconds",
    "metrics_json",
    "progress_json",
    "error",
]


def _runs_with_heartbeats(wh: Warehouse) -> None:
    """dim_run again with its CHECK widened: DuckDB cannot alter a constraint, so it is copied."""
    double = _TYPES[wh.dialect]["double"]
    wh.execute(
        f"""CREATE TABLE dim_run__v5 (
            run_id TEXT PRIMARY KEY,
            dataset_key BIGINT NOT NULL REFERENCES dim_dataset (dataset_key),
            model TEXT NOT NULL,
            params_json TEXT NOT NULL,
            seed BIGINT NOT NULL,
            evaluation TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'abandoned')),
            code_version TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ,
            train_seconds {double},
            metrics_json TEXT,
            progress_json TEXT,
            error TEXT,
            heartbeat_at TIMESTAMPTZ,
            worker_pid BIGINT,
            worker_host TEXT)"""
    )
    wh.execute("INSERT INTO dim_run__v5 ({c}) SELECT {c} FROM dim_run", c=_RUN_COLUMNS_V2)
    wh.execute("DROP TABLE dim_run")
    wh.execute("ALTER TABLE dim_run__v5 RENAME TO dim_run")


RUN_HEARTBEATS = Migration(
    5,
    "runs: a heartbeat and the worker's pid and host; ended runs may be interrupted or abandoned",
    (),
    steps=_runs_with_heartbeats,
)
"""A run whose worker died (SIGKILL, a lost machine) is found by its stale heartbeat, or by
its pid being gone on the same host, and marked ``abandoned`` instead of ``running`` forever."""

PIPELINES = Migration(
    6,
    "pipelines: runs and their steps, fires claimed once, a lease per pipeline",
    (
        """CREATE TABLE pipeline_run (
            pipeline_run_id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            dataset TEXT NOT NULL,
            trigger TEXT NOT NULL,
            fire_key TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')),
            outcome TEXT,
            error TEXT,
            holder TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            batch_ids_json TEXT NOT NULL,
            run_ids_json TEXT NOT NULL,
            champion_run_id TEXT,
            challenger_run_id TEXT,
            promoted BOOLEAN NOT NULL)""",
        "CREATE INDEX pipeline_run_by_name ON pipeline_run (pipeline, started_at)",
        """CREATE TABLE pipeline_step (
            pipeline_run_id TEXT NOT NULL,
            position SMALLINT NOT NULL,
            step TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            seconds DOUBLE PRECISION,
            outcome_json TEXT,
            error TEXT,
            PRIMARY KEY (pipeline_run_id, position))""",
        """CREATE TABLE pipeline_fire (
            pipeline TEXT NOT NULL,
            fire_key TEXT NOT NULL,
            fire_at TIMESTAMPTZ,
            claimed_at TIMESTAMPTZ NOT NULL,
            pipeline_run_id TEXT NOT NULL,
            PRIMARY KEY (pipeline, fire_key))""",
        """CREATE TABLE pipeline_lease (
            pipeline TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            pipeline_run_id TEXT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE pipeline_state (
            pipeline TEXT PRIMARY KEY,
            first_seen_at TIMESTAMPTZ NOT NULL)""",
    ),
)
"""A pipeline run records each step; a fire (a cron time, a new source fingerprint) is claimed
once in ``pipeline_fire``, so two schedulers never both run it; ``pipeline_lease`` lets one
run of a pipeline go at a time, and its expiry tells a dead worker's run from a live one."""

TUNE_TRIALS = Migration(
    7,
    "tune trials: each trial of a hyperparameter search, its run, state and value",
    (
        """CREATE TABLE tune_trial (
            study TEXT NOT NULL,
            number INTEGER NOT NULL,
            run_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('complete', 'pruned', 'failed')),
            value DOUBLE PRECISION,
            params_json TEXT NOT NULL,
            finished_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (study, number))""",
    ),
)
"""A study (``dataset:model``) resumes from its recorded trials after an interruption."""

SEQUENCES = Migration(
    8,
    "sequences: a dataset's rows as events of ordered sequences (attempts), checked whole",
    (
        "CREATE SEQUENCE seq_sequence",
        """CREATE TABLE dataset_sequence (
            dataset_key BIGINT PRIMARY KEY REFERENCES dim_dataset (dataset_key),
            spec_json TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE dim_sequence (
            sequence_key BIGINT PRIMARY KEY DEFAULT nextval('seq_sequence'),
            dataset_key BIGINT NOT NULL,
            batch_key BIGINT NOT NULL,
            label_key BIGINT,
            group_id TEXT NOT NULL,
            events INTEGER NOT NULL,
            started_at TIMESTAMPTZ,
            duration_us BIGINT,
            typed TEXT,
            status TEXT NOT NULL CHECK (status IN ('valid', 'quarantined')),
            reason TEXT)""",
        "CREATE INDEX dim_sequence_by_dataset ON dim_sequence (dataset_key, sequence_key)",
        """CREATE TABLE fact_event (
            dataset_key BIGINT NOT NULL,
            batch_key BIGINT NOT NULL,
            sequence_key BIGINT NOT NULL,
            position INTEGER NOT NULL,
            occurred_at TIMESTAMPTZ,
            interval_us BIGINT,
            symbol TEXT,
            row_key BIGINT NOT NULL,
            PRIMARY KEY (sequence_key, position))""",
    ),
)
"""A sequence dataset keeps its rows (one per event, every field) in its own fact table, like
any tabular one; ``dataset_sequence`` says how they group (``SequenceSpec``), ``dim_sequence``
holds one row per sequence (its label, its text with corrections applied, and whether the
quality check kept it: ``quarantined`` ones are left out of training, with the reason), and
``fact_event`` one row per event, in order under its sequence key, joined to the dataset's
fact row by ``row_key``. ``dim_dataset.kind`` stays ``tabular``: DuckDB cannot widen its CHECK
without rebuilding the four tables that reference it, so the kind is read from here."""

_RUN_COLUMNS_V5 = [*_RUN_COLUMNS_V2, "heartbeat_at", "worker_pid", "worker_host"]


def _runs_may_be_pruned(wh: Warehouse) -> None:
    """Copy dim_run into the table created with the wider CHECK, then take its name."""
    wh.execute("INSERT INTO dim_run__v9 ({c}) SELECT {c} FROM dim_run", c=_RUN_COLUMNS_V5)
    wh.execute("DROP TABLE dim_run")
    wh.execute("ALTER TABLE dim_run__v9 RENAME TO dim_run")


RUNS_PRUNED = Migration(
    9,
    "runs: a run stopped early by a hyperparameter search's pruner ends pruned",
    (
        """CREATE TABLE dim_run__v9 (
            run_id TEXT PRIMARY KEY,
            dataset_key BIGINT NOT NULL REFERENCES dim_dataset (dataset_key),
            model TEXT NOT NULL,
            params_json TEXT NOT NULL,
            seed BIGINT NOT NULL,
            evaluation TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
                'interrupted', 'abandoned', 'pruned')),
            code_version TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ,
            train_seconds DOUBLE PRECISION,
            metrics_json TEXT,
            progress_json TEXT,
            error TEXT,
            heartbeat_at TIMESTAMPTZ,
            worker_pid BIGINT,
            worker_host TEXT)""",
    ),
    steps=_runs_may_be_pruned,
)
"""A pruned trial is neither a failure nor a success: it was stopped on purpose, at an epoch
where it already trailed the trials before it. Its status says so (same copy as migration 5)."""

MIGRATIONS: tuple[Migration, ...] = (
    STAR_SCHEMA,
    RUN_REGISTRY,
    QUALITY,
    ROW_HASHES_UNINDEXED,
    RUN_HEARTBEATS,
    PIPELINES,
    TUNE_TRIALS,
    SEQUENCES,
    RUNS_PRUNED,
)


def _one_migrator_at_a_time(warehouse: Warehouse) -> None:
    if warehouse.dialect == "postgres":  # held until the transaction ends
        warehouse.execute("SELECT pg_advisory_xact_lock(%s)", [0x4EAD_3A7E])


def migrate(warehouse: Warehouse) -> list[int]:
    """Apply every migration the warehouse has not seen; return the versions applied.

    On PostgreSQL every step holds one advisory lock, so processes that meet a fresh
    schema at once apply each migration once instead of racing on ``schema_migrations``
    (DuckDB needs none: one process at a time opens its file).
    """
    with warehouse.transaction():
        _one_migrator_at_a_time(warehouse)
        warehouse.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
    applied: list[int] = []
    for migration in MIGRATIONS:
        with warehouse.transaction():
            _one_migrator_at_a_time(warehouse)
            done = warehouse.fetch(
                "SELECT 1 FROM schema_migrations WHERE version = %s", [migration.version]
            )
            if done:
                continue
            for statement in migration.render(warehouse.dialect):
                warehouse.execute(statement)
            if migration.steps is not None:
                migration.steps(warehouse)
            warehouse.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, now())",
                [migration.version, migration.name],
            )
            applied.append(migration.version)
    return applied
