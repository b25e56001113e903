"""Format detection and the CSV reader/writer pair, byte for byte."""

from __future__ import annotations

import csv
import io

import pytest

from headwater.data.privacy import format_of
from headwater.data.privacy.formats import CsvWriter, open_csv
from headwater.errors import FormatError


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/new_data/file1.csv", "csv"),
        ("data/People.JSON", "json"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("s3://b/k/a.parquet", "parquet"),
        ("s3://b/k/a.csv.gz", "csv"),
        ("a.tsv", "csv"),
        ("a.JSONL.GZ", "jsonl"),
    ],
)
def test_format_by_extension(location: str, expected: str) -> None:
    assert format_of(location) == expected


@pytest.mark.parametrize("location", ["people.xlsx", "s3://bucket/noext", "a.gz"])
def test_other_extensions_are_refused_listing_the_known_ones(location: str) -> None:
    with pytest.raises(FormatError, match=r"\.parquet") as caught:
        format_of(location)
    assert caught.value.path == location


def _roundtrip(data: bytes, block: int | None = None) -> bytes:
    source = open_csv(io.BytesIO(data), "mem.csv", block_bytes=block)
    out = io.BytesIO()
    writer = CsvWriter(out, source.header, line_terminator=source.line_terminator)
    for batch in source.batches():
        writer.write_batch(batch)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"id,price,code\n007,1.50,00123\n",
        b'id,"na,me",note\r\n1,"Smith, Jo","say ""hi""\r\nthere"\r\n2,,\r\n',
        b'only\n""\nx\n',
        b"a,b\n",
        "id,name\n1,Ren\u00e9e \u00c5berg\n".encode(),
    ],
)
def test_untouched_csv_comes_back_byte_for_byte(data: bytes) -> None:
    assert _roundtrip(data) == data


def test_quoted_newlines_across_small_blocks() -> None:
    rows = [[str(i), f"line one\nline two {i}", "x,y"] for i in range(500)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([["id", "address", "pair"], *rows])
    data = text.getvalue().encode()
    assert _roundtrip(data, block=1024) == data


def test_bom_is_not_part_of_the_first_column_name() -> None:
    source = open_csv(io.BytesIO(b"\xef\xbb\xbfid,name\n1,a\n"), "bom.csv")
    assert source.header == ["id", "name"]
    assert source.schema.names == ["id", "name"]


def test_duplicate_header_is_refused() -> None:
    with pytest.raises(FormatError, match="'name'"):
        open_csv(io.BytesIO(b"name,name\n1,2\n"), "dup.csv")


def test_gzipped_parquet_is_refused_with_the_reason() -> None:
    with pytest.raises(FormatError, match="Parquet compresses its own pages"):
        format_of("s3://b/a.parquet.gz")
