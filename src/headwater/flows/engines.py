"""Where the steps that grow with the data run: ``local`` (this process) or ``spark``.

A face passes ``--engine local|spark`` and nothing else; the flows pick the code
path. Both engines give the same result (the tests run both): the local engine
streams the lake's Parquet by row groups in this process, the Spark engine reads
the same files on the executors of ``HEADWATER_SPARK_MASTER`` (``local[2]`` by
default; a cluster's URL in production).

A Spark task that fails with one of Headwater's errors comes back to the driver as
Spark's ``PythonException`` holding the executor's traceback; `headwater_error`
turns it back into that error, so every face reports it the same way for both
engines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, get_args

from headwater import errors
from headwater.errors import ConfigError, HeadwaterError
from headwater.flows.workspace import Workspace
from headwater.storage.spark import spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "ENGINES",
    "Engine",
    "check_engine",
    "headwater_error",
    "spark",
    "spark_errors",
    "spark_lake_path",
]

Engine = Literal["local", "spark"]
ENGINES: tuple[str, ...] = get_args(Engine)

_RAISED = re.compile(r"headwater\.errors\.(\w+): (.*)")


def check_engine(name: str) -> Engine:
    """``local`` or ``spark``; anything else is refused naming both."""
    if name == "local":
        return "local"
    if name == "spark":
        return "spark"
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def spark(ws: Workspace) -> SparkSession:
    """The Spark session on the workspace's ``spark_master`` (one per process)."""
    return spark_session(ws.settings.spark_master)


def spark_lake_path(ws: Workspace, dataset: str) -> str:
    """A dataset's curated folder as Spark's executors reach it (`spark_lake_url` or local)."""
    base = ws.settings.spark_lake_url
    if base:
        return f"{base.rstrip('/')}/curated/{dataset}"
    return str(ws.lake.curated_dir(dataset).resolve())


def headwater_error(failure: BaseException) -> HeadwaterError | None:
    """The Headwater error an executor raised, rebuilt from Spark's report of it, if any."""
    found = _RAISED.findall(str(failure))
    if not found:
        return None
    name, message = found[-1]
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, HeadwaterError)):
        return None
    for candidate in kind.__mro__:  # the class itself, else the nearest that takes a message
        if issubclass(candidate, HeadwaterError):
            try:
                rebuilt: HeadwaterError = candidate(message)
            except TypeError:  # DatasetNotFound and the like take more than a message
                continue
            return rebuilt
    return None


@contextmanager
def spark_errors() -> Iterator[None]:
    """Re-raise a Headwater error raised on an executor as itself, on the driver."""
    try:
        yield
    except HeadwaterError:
        raise
    except Exception as exc:
        rebuilt = headwater_error(exc)
        if rebuilt is None:
            raise
        raise rebuilt from exc
