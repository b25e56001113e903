"""Hostile JSON: nesting and width are limited while the bytes stream, before Arrow sees them."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from pydantic import ValidationError

from headwater.errors import ConfigError, FormatError
from headwater.settings import Settings
from headwater.storage.readers import ReaderOptions, open_sources
from headwater.storage.readers.guard import JsonShape, ShapeExceeded


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a": ' * depth + leaf + "}" * depth


def read_all(path: Path, options: ReaderOptions | None = None, chunk_rows: int = 10) -> int:
    (source,) = open_sources(path, chunk_rows=chunk_rows, options=options)
    return sum(b.num_rows for b in source.read())


@pytest.mark.parametrize("depth", [200, 10_000])
@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl", "deep.json.gz"])
def test_deep_records_are_refused_naming_file_record_and_path(
    tmp_path: Path, name: str, depth: int
) -> None:
    flat = '{"a": 1}'
    if name.startswith("deep.jsonl"):
        text = f"{flat}\n{flat}\n{nested(depth)}\n"
    else:
        text = f"[{flat},\n{flat},\n{nested(depth)}]"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    with pytest.raises(FormatError) as caught:
        read_all(path)
    error = caught.value
    assert error.path == str(path) and error.row == 2
    assert "deeper than 64 levels" in str(error) and "line 3" in str(error)
    assert "a.a.a.a" in str(error)  # the JSON path to where the limit was passed


def test_depth_limit_is_a_setting_and_counts_structure_not_strings(tmp_path: Path) -> None:
    path = tmp_path / "tricky.jsonl"
    tricky = {"a": {"b": r"[[[{{{ \" ]]] \\", "c": [1, 2]}}  # depth 3 with brackets in text
    path.write_text(json.dumps(tricky) + "\n" + json.dumps({"x": nested(9)}) + "\n")
    assert read_all(path, ReaderOptions(json_max_depth=3)) == 2
    path.write_text(json.dumps(tricky) + "\n" + nested(4) + "\n")
    with pytest.raises(FormatError, match=r"tricky\.jsonl:1: .*deeper than 3 levels at a\.a\.a"):
        read_all(path, ReaderOptions(json_max_depth=3))


def test_record_with_too_many_fields_is_refused(tmp_path: Path) -> None:
    wide = {f"k{i}": i for i in range(120)}
    path = tmp_path / "wide.json"
    path.write_text(json.dumps([{"k0": 0}, {"nested": wide}]))
    with pytest.raises(FormatError, match=r"wide\.json:1: the record has more than 100 fields"):
        read_all(path, ReaderOptions(json_max_fields=100))
    assert read_all(path, ReaderOptions(json_max_fields=121)) == 2


def test_many_narrow_records_that_add_up_to_too_many_columns(tmp_path: Path) -> None:
    path = tmp_path / "sparse.jsonl"
    path.write_text("".join(json.dumps({f"k{i}": i}) + "\n" for i in range(150)))
    with pytest.raises(FormatError, match=r"sparse\.jsonl: .*150 fields.* more than 100"):
        read_all(path, ReaderOptions(json_max_fields=100), chunk_rows=1000)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_the_scanner_carries_its_state_across_any_chunk_boundary(piece: int) -> None:
    text = (
        json.dumps([{"s": 'x\\"{[', "t": "\\\\", "n": {"m": [[1]]}}, {"a": {"b": {"c": 1}}}])
    ).encode()
    shape = JsonShape(max_depth=4, max_fields=10, array=True)
    for start in range(0, len(text), piece):
        shape.feed(text[start : start + piece])
    assert shape.depth == 0 and shape.records == 2
    deeper = JsonShape(max_depth=3, max_fields=10, array=True)
    with pytest.raises(ShapeExceeded, match="depth") as caught:
        for start in range(0, len(text), piece):
            deeper.feed(text[start : start + piece])
    assert (caught.value.record, caught.value.record_offset) == (0, 1)  # {"n": {"m": [[1]]}}


def test_a_record_exactly_at_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "edge.jsonl"
    path.write_text(nested(64) + "\n" + nested(64) + "\n")
    assert read_all(path) == 2


def test_the_depth_setting_stops_where_arrow_schemas_do() -> None:
    """Past ~120 levels a stored schema no longer reads back ('Invalid flatbuffers message')."""
    assert Settings(json_max_depth=100).json_max_depth == 100
    with pytest.raises(ValidationError):
        Settings(json_max_depth=101)


@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_refusing_a_10000_deep_record_holds_little_memory(tmp_path: Path, name: str) -> None:
    """The refusal and its JSON path cost kilobytes, not O(depth^2) prefixes (100 MB)."""
    path = tmp_path / name
    text = nested(10_000)
    path.write_text(text + "\n" if name.endswith(".jsonl") else f"[{text}]")
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="deeper than 64 levels"):
            read_all(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak:,} bytes"


@pytest.mark.parametrize("encoding", ["klingon", "rot13", "zlib", "base64"])
def test_only_text_encodings_are_taken(tmp_path: Path, encoding: str) -> None:
    """rot13, zlib and base64 are Python codecs too, but not text encodings: a usage error."""
    path = tmp_path / "ok.csv"
    path.write_text("id,v\n1,2\n")
    with pytest.raises(ConfigError, match=f"{encoding!r} is not a text encoding"):
        read_all(path, ReaderOptions(encoding=encoding))
