"""Bad input: a clear error from headwater.errors naming file, row and field; nothing written."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ConfigError, DataError, FormatError, SchemaError, UnsafeInput
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import digits, write_csv, write_mnist_pickle

TABLES = ["dim_dataset", "dim_batch", "dim_label", "fact_image", "lake_manifest", "batch_file"]


def assert_nothing_written(workspace: Workspace) -> None:
    for table in TABLES:
        assert workspace.warehouse.fetch_value("SELECT count(*) FROM {t}", t=table) == 0, table
    files = [p for p in workspace.lake.root.rglob("*") if p.is_file()]
    assert files == []


def test_truncated_gzip(workspace: Workspace, tmp_path: Path) -> None:
    whole = write_mnist_pickle(tmp_path / "whole.pkl.gz").read_bytes()
    cut = tmp_path / "cut.pkl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FormatError, match=r"cut\.pkl\.gz: .*truncated") as caught:
        workspace.ingest(cut)
    assert caught.value.path == str(cut)
    assert_nothing_written(workspace)


@pytest.mark.parametrize("name", ["cut.csv.gz", "cut.jsonl.gz"])
def test_truncated_gzip_of_text(workspace: Workspace, tmp_path: Path, name: str) -> None:
    """Cut both in the head Headwater sniffs and past it, where Arrow meets the end."""
    line = "id,name,label\n" if name.endswith(".csv.gz") else ""
    row = (
        "{i},item {i},{label}\n"
        if name.endswith(".csv.gz")
        else '{{"id": {i}, "label": {label}}}\n'
    )
    text = line + "".join(row.format(i=i, label=i % 3) for i in range(200_000))
    whole = gzip.compress(text.encode())
    for cut in (40, len(whole) - 64):
        path = tmp_path / name
        path.write_bytes(whole[:cut])
        with pytest.raises(FormatError, match=re.escape(name) + ": .*(truncated|corrupt)"):
            workspace.ingest(path)
        assert_nothing_written(workspace)


def test_wrong_schema_in_npz(workspace: Workspace, tmp_path: Path) -> None:
    np.savez(tmp_path / "odd.npz", pictures=np.zeros((3, 28, 28)), answers=np.zeros(3))
    with pytest.raises(SchemaError, match=r"odd\.npz: .*expected x_train/y_train"):
        workspace.ingest(tmp_path / "odd.npz")
    assert_nothing_written(workspace)


def test_wrong_columns_in_a_later_batch(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 5))
    before = workspace.dataset("orders")
    other = tmp_path / "orders_b.csv"
    other.write_text("id,name,cost\n1,a,2.0\n")
    with pytest.raises(SchemaError, match=r"orders_b\.csv field 'price': columns differ") as caught:
        workspace.ingest(other, dataset="orders")
    assert caught.value.field == "price"
    after = workspace.dataset("orders")
    assert (after.rows, len(after.batches)) == (before.rows, len(before.batches))


def test_wrong_dtype_names_row_and_field(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 5))
    bad = write_csv(tmp_path / "orders_bad.csv", 5, start=100)
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].replace("102,item 102,153.0", "102,item 102,cheap")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as caught:
        workspace.ingest(bad, dataset="orders")
    error = caught.value
    assert error.path == str(bad) and error.field == "price" and error.row is not None
    assert "cheap" in str(error)
    assert workspace.dataset("orders").rows == 5


def test_nan_label_in_npz(workspace: Workspace, tmp_path: Path) -> None:
    images, labels = digits(10)
    float_labels = labels.astype(np.float64)
    float_labels[7] = np.nan
    np.savez(tmp_path / "nanlabel.npz", x=images, y=float_labels)
    with pytest.raises(SchemaError, match=r"nanlabel\.npz:7 field 'label'"):
        workspace.ingest(tmp_path / "nanlabel.npz")
    assert_nothing_written(workspace)


def test_missing_label_in_csv(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "labelled.csv"
    path.write_text("x,label\n1,a\n2,\n3,NaN\n")
    with pytest.raises(SchemaError, match=r"labelled\.csv:1 field 'label'"):
        workspace.ingest(path)
    assert_nothing_written(workspace)


@pytest.mark.parametrize("name", ["empty.csv", "empty.pkl.gz", "empty.npz", "empty.jsonl"])
def test_empty_file(workspace: Workspace, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(FormatError, match=rf"{name}: .*empty"):
        workspace.ingest(tmp_path / name)
    assert_nothing_written(workspace)


def test_header_only_csv(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "hollow.csv").write_text("a,b\n")
    with pytest.raises(FormatError, match=r"hollow\.csv: .*no rows"):
        workspace.ingest(tmp_path / "hollow.csv")
    assert_nothing_written(workspace)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_header_claiming_a_trillion_items(
    workspace: Workspace, tmp_path: Path, gz: bool
) -> None:
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    images = tmp_path / f"train-images-idx3-ubyte{suffix}"
    labels = tmp_path / f"train-labels-idx1-ubyte{suffix}"
    with opener(images, "wb") as handle:
        handle.write(struct.pack(">IIII", 0x803, 10**12 % 2**32, 28, 28) + bytes(28 * 28 * 3))
    with opener(labels, "wb") as handle:
        handle.write(struct.pack(">II", 0x801, 10**12 % 2**32) + bytes(3))
    with pytest.raises(
        FormatError, match=r"train-(images|labels)-idx[13]-ubyte.*(claims|ends early)"
    ):
        workspace.ingest(images)
    assert_nothing_written(workspace)


@pytest.mark.parametrize(
    "name", ["evil;rm -rf ~.csv", "$(reboot).csv", "a|b.csv", "`id`.csv", "..csv"]
)
def test_hostile_file_names(workspace: Workspace, tmp_path: Path, name: str) -> None:
    path = write_csv(tmp_path / name, 3)
    with pytest.raises(UnsafeInput, match="rename it") as caught:
        workspace.ingest(path)
    assert name in str(caught.value)
    assert_nothing_written(workspace)


def test_hostile_dataset_name(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset name"):
        workspace.ingest(write_csv(tmp_path / "ok.csv", 3), dataset="x; DROP TABLE dim_batch")
    assert_nothing_written(workspace)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code(workspace: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with gzip.open(tmp_path / "evil.pkl.gz", "wb") as handle:
        pickle.dump(((_RunsCode(marker), None), None, None), handle, protocol=2)
    with pytest.raises(UnsafeInput, match=r"evil\.pkl\.gz: the pickle asks for (posix|os)\.system"):
        workspace.ingest(tmp_path / "evil.pkl.gz")
    assert not marker.exists()
    assert_nothing_written(workspace)


def test_pickle_disguised_as_csv(workspace: Workspace, tmp_path: Path) -> None:
    disguised = tmp_path / "report.csv"
    disguised.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(UnsafeInput, match=r"report\.csv: the file is a Python pickle"):
        workspace.ingest(disguised)
    assert_nothing_written(workspace)


def test_unknown_extension(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(FormatError, match=r"notes\.docx: unknown file type"):
        workspace.ingest(tmp_path / "notes.docx")
    assert_nothing_written(workspace)


def test_every_data_error_is_one_family() -> None:
    assert all(issubclass(e, DataError) for e in (FormatError, SchemaError, UnsafeInput))


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(settings.home)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return env


def _nested_records(depth: int) -> str:
    return "[" + '{"a": ' * depth + "1" + "}" * depth + "]"


def test_json_nested_200_deep_is_a_format_error(workspace: Workspace, tmp_path: Path) -> None:
    """Depth 200 used to reach Arrow and end in a raw ``OSError: Invalid flatbuffers message``."""
    path = tmp_path / "deep.json"
    path.write_text(_nested_records(200))
    with pytest.raises(FormatError, match=r"deep\.json:0: .*deeper than 64 levels at a\.a\.a"):
        workspace.ingest(path)
    assert_nothing_written(workspace)


@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_json_nested_10000_deep_exits_4_in_bounded_memory(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    """It used to grow the process to ~17 GB and die in libarrow (exit 139).

    The child runs under an address-space cap, so a regression fails here instead of
    taking the machine down; its peak RSS is read from a wrapper that waits for it.
    """
    path = tmp_path / name
    text = _nested_records(10_000)
    path.write_text(text[1:-1] + "\n" if name.endswith(".jsonl") else text)
    wrapper = (
        "import resource, subprocess, sys\n"
        "cap = lambda: resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))\n"
        "done = subprocess.run(sys.argv[1:], preexec_fn=cap, capture_output=True, text=True)\n"
        "sys.stderr.write(done.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(done.returncode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "headwater", "ingest", str(path)],
        env=_cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    peak_mb = int(done.stdout.strip().splitlines()[-1]) / 1024
    assert done.returncode == 4, done.stderr
    assert f"{name}:0: " in done.stderr and "deeper than 64 levels" in done.stderr
    assert "Traceback" not in done.stderr
    assert peak_mb < 400, f"peak RSS {peak_mb:.0f} MB"  # the CLI alone takes ~260 MB


def test_gzipped_idx_header_claiming_terabytes_is_refused_before_reading(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A 64-byte gzip claiming 60000 images of 16384x16384 used to try a 4.4 TB allocation."""
    images = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(images, "wb") as handle:
        handle.write(struct.pack(">IIII", 0x803, 60_000, 16_384, 16_384) + bytes(48))
    with pytest.raises(FormatError, match=r"train-images-idx3-ubyte\.gz: .*claims 60,000 images"):
        workspace.ingest(images)
    assert_nothing_written(workspace)


def _latin1_after_64k(path: Path) -> Path:
    """UTF-8-clean for the first 64 KB that are sniffed, then one Latin-1 name on line 3002."""
    rows = "".join(f"{i},name {i:05d} padded to pass the sniffed head\n" for i in range(3000))
    path.write_bytes(b"id,name\n" + rows.encode() + "3000,Zoë Ørsted\n".encode("latin-1"))
    return path


def test_latin1_after_the_sniffed_head_is_refused_naming_its_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    """It used to load with exit 0 as a binary column (shown as base64)."""
    path = _latin1_after_64k(tmp_path / "people.csv")
    assert path.stat().st_size > 64 * 1024
    with pytest.raises(FormatError, match=r"people\.csv: byte 0xeb on line 3002 is not UTF-8"):
        workspace.ingest(path)
    assert_nothing_written(workspace)
    report = workspace.ingest(path, encoding="latin-1")
    assert report.rows_loaded == 3001
    names = [r["name"] for r in workspace.rows("people", limit=1000, offset=2500)]
    assert "Zoë Ørsted" in names


def test_cli_ingest_takes_an_encoding(settings: Settings, tmp_path: Path) -> None:
    path = _latin1_after_64k(tmp_path / "people.csv")
    cli = [sys.executable, "-m", "headwater", "ingest", str(path)]
    env = _cli_env(settings)
    refused = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert refused.returncode == 4, refused.stderr
    assert "line 3002" in refused.stderr and "--encoding" in refused.stderr
    unknown = subprocess.run(
        [*cli, "--encoding", "klingon"], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "'klingon' is not a text encoding" in unknown.stderr
    done = subprocess.run(
        [*cli, "--encoding", "latin-1", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '"rows_loaded": 3001' in done.stdout


def test_ragged_row_error_names_its_line(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,name\n1,a\n2,b,extra\n3,c\n")
    with pytest.raises(FormatError, match=r"ragged\.csv:1: line 3: expected 2 fields.*got 3"):
        workspace.ingest(path)
    assert_nothing_written(workspace)


def test_gzip_expansion_cap_is_a_setting(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"id,label\n" + b"1,0\n" * 1_000_000))  # 4 MB from ~12 KB
    capped = settings.model_copy(update={"max_decompressed_bytes": 1 << 20})
    with Workspace(capped) as workspace:
        with pytest.raises(FormatError, match=r"bomb\.csv\.gz: .*expands past 1,048,576 bytes"):
            workspace.ingest(path)
        assert_nothing_written(workspace)
