"""Fixtures: settings in a temporary home, a warehouse per backend, small real data files.

PostgreSQL tests run when HEADWATER_TEST_POSTGRES_URL is set (the Makefile and
.ci/run set it); in CI a missing or unreachable server fails the run instead of
skipping, so both backends are always exercised there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from headwater.flows.workspace import Workspace
from headwater.settings import Settings

PG_URL = os.environ.get("HEADWATER_TEST_POSTGRES_URL")
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
BACKENDS = ["duckdb", "postgres"]


def _postgres_or_skip() -> str:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("HEADWATER_TEST_POSTGRES_URL is not set in CI; .ci/run must set it")
        pytest.skip("set HEADWATER_TEST_POSTGRES_URL to run the PostgreSQL tests")
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at HEADWATER_TEST_POSTGRES_URL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return PG_URL


@pytest.fixture(params=BACKENDS, ids=str)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: its own home folder and, on PostgreSQL, its own schema."""
    home = tmp_path / "home"
    if backend == "duckdb":
        yield Settings(home=home, ingest_chunk_rows=1000)
        return
    url = _postgres_or_skip()
    schema = f"hw_test_{uuid.uuid4().hex[:12]}"
    yield Settings(home=home, warehouse_url=url, warehouse_schema=schema, ingest_chunk_rows=1000)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(schema)
            )
        )


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    with Workspace(settings) as ws:
        yield ws


@pytest.fixture(scope="session")
def spark_local() -> Iterator[object]:
    """One local[1] Spark session for the whole test session, started by the first test that
    asks for it (a JVM costs seconds); `--engine spark` flows then run on it."""
    from headwater.storage.spark import spark_session

    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("no java on PATH in CI; make test installs OpenJDK 17 (make java)")
        pytest.skip("Spark needs a JVM: install OpenJDK 17 (make java)")
    session = spark_session("local[1]")
    yield session
    session.stop()


@pytest.fixture
def shared_mnist() -> Path:
    """The real MNIST files in ../shared; locally, tests that need them skip without them."""
    return shared_mnist_or_skip(SHARED_MNIST, ci=bool(os.environ.get("CI")))


def shared_mnist_or_skip(folder: Path, *, ci: bool) -> Path:
    """``folder`` if it holds MNIST; else a skip, or in CI a failure (CI must run these)."""
    if not (folder / "mnist.pkl.gz").is_file():
        if ci:
            pytest.fail(f"real MNIST not found at {folder} in CI; check out ../shared beside it")
        pytest.skip(f"real MNIST not found at {folder}")
    return folder
