"""Several `headwater ingest` processes at once on a warehouse nobody has used yet.

DuckDB lets one process open its file, so the others must wait for it (and say so);
on PostgreSQL the first migrations must be applied once, not raced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from headwater.settings import Settings
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import open_warehouse
from headwater.storage.warehouse.migrations import MIGRATIONS

CLI = "from headwater.faces.cli import main; main()"
PROCESSES = 4


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(settings.home)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return env


def test_concurrent_first_ingests_all_succeed_and_load_the_rows_once(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    data.write_text("id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(200)))
    env = _env(settings)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLI, "ingest", str(data), "--dataset", "orders"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = [(p.wait(timeout=240), *p.communicate()) for p in processes]
    for code, _, err in results:
        assert code == 0, err
        assert "Could not set lock" not in err and "Traceback" not in err
    with open_warehouse(settings) as wh:
        dataset = cat.get_dataset(wh, "orders")
        assert sum(cat.split_counts(wh, dataset).values()) == 200
        batches = [b for b in cat.list_batches(wh, "orders") if b.status == "succeeded"]
        assert len(batches) == 1
        versions = wh.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert len(versions) == len({v for (v,) in versions})


@pytest.mark.parametrize("backend", ["postgres"])
def test_concurrent_migrations_of_a_fresh_schema_apply_each_once(settings: Settings) -> None:
    """Eight openers meet an empty schema at once: no duplicate-key race, each version once."""
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def first_use() -> None:
        start.wait(10)
        try:
            open_warehouse(settings).close()
        except BaseException as exc:  # collected, then asserted in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with open_warehouse(settings) as wh:
        versions = [v for (v,) in wh.fetch("SELECT version FROM schema_migrations")]
    assert sorted(versions) == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize("backend", ["duckdb"])
def test_an_ingest_waits_for_a_duckdb_file_another_process_holds(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    data.write_text("id,amount\n1,2.5\n")
    path = settings.resolved_warehouse_url.removeprefix("duckdb://")
    open_warehouse(settings).close()
    holder = duckdb.connect(path)  # this process holds the file as another headwater would
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-c", CLI, "ingest", str(data), "--dataset", "orders"],
            env=_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        said = waiting.stderr.readline()  # blocks until the command says it waits
        assert "another Headwater process" in said and "waiting up to" in said, said
    finally:
        holder.close()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, said + err
    assert "1 row" in out or "loaded" in out


@pytest.mark.parametrize("backend", ["duckdb"])
def test_a_duckdb_file_held_too_long_fails_plainly_with_exit_5(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    data.write_text("id,amount\n1,2.5\n")
    path = settings.resolved_warehouse_url.removeprefix("duckdb://")
    open_warehouse(settings).close()
    env = _env(settings) | {"HEADWATER_DUCKDB_LOCK_WAIT_S": "0.5"}
    with duckdb.connect(path):
        done = subprocess.run(
            [sys.executable, "-c", CLI, "ingest", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 5, done.stderr
    assert "another Headwater process" in done.stderr and "Traceback" not in done.stderr
    assert f"PID {os.getpid()}" in done.stderr
