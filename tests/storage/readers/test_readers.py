"""Readers on their own: formats, streaming, and the restricted unpickler."""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers import ReaderOptions, open_sources
from headwater.storage.readers.base import check_file_name, open_decompressed
from headwater.storage.readers.mnist_pickle import load_numpy_pickle
from tests.builders import digits, write_idx_pair


def test_restricted_unpickler_admits_numpy_and_tuples(tmp_path: Path) -> None:
    arrays = (np.arange(5, dtype=np.int64), np.ones((2, 3), dtype=np.float32))
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        loaded = load_numpy_pickle(path)
        assert isinstance(loaded, tuple)
        assert all(np.array_equal(a, b) for a, b in zip(loaded, arrays, strict=True))


@pytest.mark.parametrize("payload", [{"a": 1}.__class__, Path, np.ndarray.__new__])
def test_restricted_unpickler_refuses_other_globals(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeInput, match=r"bad\.pkl: the pickle asks for"):
        load_numpy_pickle(path)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(((np.array([{"x": 1}], dtype=object), np.zeros(1)),) * 3, handle, protocol=2)
    with pytest.raises(
        SchemaError, match=r"objects\.pkl\.gz: the train arrays hold Python objects"
    ):
        next(open_sources(path, chunk_rows=10)[0].read())


def test_object_array_elements_still_go_through_the_allow_list(tmp_path: Path) -> None:
    path = tmp_path / "sneaky.pkl"
    path.write_bytes(pickle.dumps(np.array([Path("/etc")], dtype=object), protocol=2))
    with pytest.raises(UnsafeInput, match="pathlib"):
        load_numpy_pickle(path)


def test_idx_streams_in_chunks(tmp_path: Path) -> None:
    write_idx_pair(tmp_path, "train", 25, seed=3)
    (source,) = open_sources(tmp_path / "train-labels-idx1-ubyte.gz", chunk_rows=10)
    sizes = [b.num_rows for b in source.read()]
    assert sizes == [10, 10, 5] and source.total_rows == 25
    images, labels = digits(25, seed=3)
    first = next(source.read())
    assert first.column("label").to_pylist() == [str(v) for v in labels[:10]]
    assert first.column("pixels")[3].as_py() == images[3].tobytes()


def test_idx_cut_mid_image_names_the_items(tmp_path: Path) -> None:
    images, _ = write_idx_pair(tmp_path, "train", 25, gz=False)
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(FormatError, match=r"claims 25 items"):
        open_sources(images, chunk_rows=10)


def test_lone_labels_file_is_an_error(tmp_path: Path) -> None:
    images, _ = write_idx_pair(tmp_path, "train", 5)
    images.unlink()
    with pytest.raises(FormatError, match="labels file without an images file"):
        open_sources(tmp_path, chunk_rows=10)


def test_npz_with_splits(tmp_path: Path) -> None:
    (x1, y1), (x2, y2) = digits(6, seed=1), digits(4, seed=2)
    np.savez_compressed(tmp_path / "d.npz", x_train=x1, y_train=y1, x_test=x2, y_test=y2)
    (source,) = open_sources(tmp_path / "d.npz", chunk_rows=100)
    splits = [s for b in source.read() for s in b.column("split").to_pylist()]
    assert splits == ["train"] * 6 + ["test"] * 4


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
def test_npz_streams_rows_in_chunks(tmp_path: Path, save: Any) -> None:
    images, labels = digits(25, seed=4)
    save(tmp_path / "d.npz", x_train=images, y_train=labels)
    (source,) = open_sources(tmp_path / "d.npz", chunk_rows=10)
    batches = list(source.read())
    assert [b.num_rows for b in batches] == [10, 10, 5] and source.total_rows == 25
    assert batches[2].column("pixels")[4].as_py() == images[24].tobytes()
    assert batches[1].column("label").to_pylist() == [str(v) for v in labels[10:20]]


def test_npz_in_fortran_order_reads_the_same_rows(tmp_path: Path) -> None:
    images, labels = digits(7, seed=5)
    np.savez(tmp_path / "f.npz", x=np.asfortranarray(images), y=labels)
    (source,) = open_sources(tmp_path / "f.npz", chunk_rows=3)
    pixels = [p for b in source.read() for p in b.column("pixels").to_pylist()]
    assert pixels == [image.tobytes() for image in images]


def test_npz_whose_header_claims_more_rows_than_it_holds(tmp_path: Path) -> None:
    """A header claiming 10^12 images is caught from the member's size, before any read."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10**12, 28, 28)}
    )
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(784 * 3))
        buffer = io.BytesIO()
        np.save(buffer, np.arange(3))
        archive.writestr("y.npy", buffer.getvalue())
    with pytest.raises(FormatError, match=r"liar\.npz: array 'x' claims shape \(1000000000000"):
        next(open_sources(tmp_path / "liar.npz", chunk_rows=10)[0].read())


def test_npz_of_python_objects_is_refused_unread(tmp_path: Path) -> None:
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([1]))
    with pytest.raises(UnsafeInput, match=r"o\.npz: array 'x' holds Python objects"):
        next(open_sources(tmp_path / "o.npz", chunk_rows=10)[0].read())


def test_float_pixels_that_are_not_k_over_255_stay_float(tmp_path: Path) -> None:
    x = np.full((2, 4, 4), 0.5, dtype=np.float32)
    x[1, 0, 0] = np.nan
    np.savez(tmp_path / "f.npz", x=x, y=np.array([1, 2]))
    batch = next(open_sources(tmp_path / "f.npz", chunk_rows=10)[0].read())
    assert batch.column("pixel_dtype").to_pylist() == ["float32", "float32"]
    restored = np.frombuffer(batch.column("pixels")[1].as_py(), dtype=np.float32)
    assert np.isnan(restored[0]) and restored[1] == 0.5


def test_ragged_pixels_are_a_schema_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "r.npz", x=np.zeros((2, 10)), y=np.array([1, 2]))
    with pytest.raises(SchemaError, match="not a square image"):
        next(open_sources(tmp_path / "r.npz", chunk_rows=10)[0].read())


@pytest.mark.parametrize("name", ["orders.csv", "Données 2024 (v2).csv", "a-b_c+d.parquet"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", "x\x00.csv", "x\n.csv", ".hidden", "a>b"])
def test_hostile_names_fail(name: str) -> None:
    with pytest.raises(UnsafeInput):
        check_file_name(name)


def _json_records(n: int) -> str:
    return ",\n".join(f'{{"id": {i}, "name": "user {i}", "score": {i / 4}}}' for i in range(n))


def test_json_array_streams_in_chunks_with_one_schema(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text("[" + _json_records(2500) + "]")
    (source,) = open_sources(path, chunk_rows=1000)
    batches = list(source.read())
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    assert len({b.schema for b in batches}) == 1
    assert batches[2].column("id")[-1].as_py() == 2499
    assert batches[2].column("score")[-1].as_py() == 2499 / 4


def test_json_array_cut_short_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text("[" + _json_records(30) + ', {"id": 30, "na')
    (source,) = open_sources(path, chunk_rows=8)
    with pytest.raises(FormatError, match=r"cut\.json:30: not valid JSON"):
        list(source.read())


def test_json_array_whose_types_change_midway_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    path.write_text("[" + _json_records(10) + ', {"id": "eleven", "name": "x", "score": 1.0}]')
    (source,) = open_sources(path, chunk_rows=5)
    with pytest.raises(SchemaError, match=r"drift\.json.*'id'"):
        list(source.read())


def test_json_array_of_non_objects_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    path.write_text('[{"id": 1}, 2]')
    with pytest.raises(SchemaError, match=r"numbers\.json:1: record is int"):
        open_sources(path, chunk_rows=8)  # the first chunk is read to learn the columns


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("semi.csv", 'id;name;price\n1;"a; b";2,5\n2;c;3\n'),
        ("tabs.txt", "id\tname\tprice\n1\ta, b\t2.5\n2\tc\t3\n"),
        ("pipes.csv", "id|name|price\n1|a, b|2.5\n2|c|3\n"),
        ("plain.tsv", "id\tname\tprice\n1\ta\t2.5\n2\tc\t3\n"),
        ("commas.csv", 'id,name,price\n1,"a; b",2.5\n2,c,3\n'),
    ],
)
def test_csv_delimiter_is_sniffed_not_assumed(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    (source,) = open_sources(tmp_path / name, chunk_rows=10)
    batch = next(source.read())
    assert batch.schema.names == ["id", "name", "price"]
    assert batch.column("id").to_pylist() == [1, 2]


def test_one_column_csv_stays_one_column(tmp_path: Path) -> None:
    (tmp_path / "one.csv").write_text("name\nalice\nbob\n")
    (source,) = open_sources(tmp_path / "one.csv", chunk_rows=10)
    assert next(source.read()).column("name").to_pylist() == ["alice", "bob"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("orders.csv.gz", "id,label\n1,0\n2,1\n"),
        ("orders.jsonl.gz", '{"id": 1, "label": 0}\n{"id": 2, "label": 1}\n'),
        ("orders.json.gz", '[{"id": 1, "label": 0}, {"id": 2, "label": 1}]'),
    ],
)
def test_gzipped_text_files_are_read(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_bytes(gzip.compress(text.encode()))
    (source,) = open_sources(tmp_path / name, chunk_rows=10)
    batch = next(source.read())
    assert batch.column("id").to_pylist() == [1, 2]
    assert source.files[0].media_type == "application/gzip"


def test_gzipped_idx_is_read_chunk_by_chunk_not_as_claimed(tmp_path: Path) -> None:
    """A header may claim 48 MB per chunk; only the bytes that arrive are ever held."""
    images = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(images, "wb") as handle:
        handle.write(struct.pack(">IIII", 0x803, 3, 4096, 4096) + bytes(1000))
    (source,) = open_sources(images, chunk_rows=10)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=r"ends early while reading images 0\.\.3 of 3"):
            list(source.read())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak:,} bytes"


def test_gzip_that_expands_past_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 500_000))  # 2 MB from ~10 KB
    (source,) = open_sources(path, chunk_rows=1000, options=ReaderOptions())
    assert sum(b.num_rows for b in source.read()) == 500_000
    capped = ReaderOptions(max_decompressed_bytes=1 << 20)
    with pytest.raises(FormatError, match=r"bomb\.csv\.gz: .*expands past 1,048,576 bytes"):
        (source,) = open_sources(path, chunk_rows=1000, options=capped)
        list(source.read())


@pytest.mark.parametrize("name", ["notes.csv", "notes.jsonl"])
def test_text_is_decoded_whole_with_one_encoding(tmp_path: Path, name: str) -> None:
    """Bytes past the sniffed head are decoded too; the first bad one is named with its line."""
    if name.endswith(".csv"):
        head, row = "id,note\n", '{i},"plain ascii text, row {i}"\n'
        last = "9999,café crème\n"
    else:
        head, row = "", '{{"id": {i}, "note": "plain ascii text, row {i}"}}\n'
        last = '{"id": 9999, "note": "café crème"}\n'
    body = head + "".join(row.format(i=i) for i in range(3000))
    (tmp_path / name).write_bytes(body.encode() + last.encode("cp1252"))
    line = body.count("\n") + 1
    with pytest.raises(FormatError, match=rf"byte 0xe9 on line {line} is not UTF-8"):
        (source,) = open_sources(tmp_path / name, chunk_rows=500)
        list(source.read())
    (source,) = open_sources(
        tmp_path / name, chunk_rows=500, options=ReaderOptions(encoding="cp1252")
    )
    notes = [v for b in source.read() for v in b.column("note").to_pylist()]
    assert notes[-1] == "café crème" and len(notes) == 3001


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,name,price\n" + "".join(f"{i},n{i},{i}.5\n" for i in range(40)) + "40,x\n")
    with pytest.raises(
        FormatError, match=r"ragged\.csv:40: .*line 42.*expected 3 .*got 2"
    ) as caught:
        (source,) = open_sources(path, chunk_rows=1000)
        list(source.read())
    assert caught.value.row == 40


def test_one_text_cell_in_a_numeric_column_is_warned_with_its_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.csv"
    rows = [f"{i},{i * 1.5}" for i in range(100)]
    rows[41] = "41,n/a?"
    path.write_text("id,price\n" + "\n".join(rows) + "\n")
    (source,) = open_sources(path, chunk_rows=1000)
    with caplog.at_level(logging.WARNING, logger="headwater"):
        batch = next(source.read())
    assert batch.schema.field("price").type == "string"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "'price'" in warned[0] and "line 43" in warned[0] and "'n/a?'" in warned[0]
    caplog.clear()
    clean = tmp_path / "clean.csv"
    clean.write_text("id,name\n" + "".join(f"{i},name {i}\n" for i in range(50)) + "50,7\n")
    with caplog.at_level(logging.WARNING, logger="headwater"):
        list(open_sources(clean, chunk_rows=1000)[0].read())
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_bad_value_past_the_first_block_of_a_new_dataset_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    rows = [f"{i},{i * 0.5}" for i in range(60_000)]
    rows[50_000] = "50000,oops"
    path.write_text("id,price\n" + "\n".join(rows) + "\n")
    (source,) = open_sources(path, chunk_rows=1000)
    with pytest.raises(SchemaError, match=r"late\.csv:50000 field 'price': .*line 50002"):
        list(source.read())


def test_a_gzip_read_holds_what_arrives_not_what_is_asked(tmp_path: Path) -> None:
    """A pickle frame or a header may claim gigabytes; GzipFile.read would allocate them first."""
    path = tmp_path / "small.bin.gz"
    path.write_bytes(gzip.compress(bytes(range(256)) * 40))
    tracemalloc.start()
    try:
        with open_decompressed(path) as handle:
            data = handle.read(1 << 30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data) == 256 * 40
    assert peak < 8 << 20, f"peak {peak:,} bytes"
