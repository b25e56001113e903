"""Read an input and an output back with independent parsers and compare them cell by cell."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

Row = dict[str, object]
_RAW_CHECKS = 400


def load_rows(fmt: str, data: bytes) -> list[Row]:
    """Rows as dicts, parsed by the standard library (CSV, JSON) or pyarrow (Parquet)."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    if fmt == "json":
        loaded = json.loads(data)
        assert isinstance(loaded, list)
        return loaded
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    return pq.read_table(io.BytesIO(data)).to_pylist()


def assert_obfuscated(
    fmt: str,
    before: bytes,
    after: bytes,
    expected: dict[str, object],
) -> None:
    """Same rows, same keys in the same order (less dropped fields), other values untouched.

    `expected` maps each PII field to what a present value must become: a string,
    a callable taking the original value, or ``"drop"``.
    """
    rows_in, rows_out = load_rows(fmt, before), load_rows(fmt, after)
    assert len(rows_out) == len(rows_in)
    for original, result in zip(rows_in, rows_out, strict=True):
        kept = [k for k in original if expected.get(k) != "drop"]
        assert list(result) == kept
        for name, value in original.items():
            rule = expected.get(name)
            if rule is None:
                assert result[name] == value, (name, value, result[name])
            elif rule == "drop":
                assert name not in result
            elif value in (None, ""):
                assert result[name] == value
            elif callable(rule):
                assert result[name] == rule(value), (name, value, result[name])
            else:
                assert result[name] == rule, (name, value, result[name])


def assert_no_values_leak(fmt: str, before: bytes, after: bytes, fields: list[str]) -> None:
    """No original value of a PII field appears in the output: in no cell, and (for up to
    `_RAW_CHECKS` values, as a substring search is slow) nowhere in the raw bytes."""
    cells = {str(value) for row in load_rows(fmt, after) for value in row.values()}
    originals = sorted(
        {
            str(row[name])
            for row in load_rows(fmt, before)
            for name in fields
            if isinstance(row.get(name), str) and len(str(row[name])) >= 4
        }
    )
    assert originals
    assert not [value for value in originals if value in cells][:5]
    step = max(1, len(originals) // _RAW_CHECKS)
    assert not [value for value in originals[::step] if value.encode() in after][:5]
