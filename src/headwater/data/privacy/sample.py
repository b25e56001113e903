"""The first rows of a file as a table of text, for the PII scan to look at.

The scan reads a sample, never the whole file: personal data shows itself in the
first thousands of rows, and a scan over a terabyte should take seconds.
"""

from __future__ import annotations

import pyarrow as pa

from headwater.data.privacy.formats import format_of, open_csv, open_parquet
from headwater.data.privacy.json_records import open_json, record_chunks, value_text
from headwater.data.privacy.sources import open_source

__all__ = ["read_sample"]


def _text_columns(table: pa.Table) -> pa.Table:
    """Every column as text; nested columns (lists, structs) are left out of the scan."""
    names, columns = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_nested(kind):
            continue
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
        names.append(name)
        columns.append(column.cast(pa.string()) if not pa.types.is_string(column.type) else column)
    return pa.table(columns, names=names)


def read_sample(location: str, *, rows: int) -> pa.Table:
    """Up to `rows` first rows of a CSV, JSON, JSON Lines or Parquet file, all as text."""
    kind = format_of(location)
    if kind == "csv":
        with open_source(location) as stream:
            source = open_csv(stream, location)
            batches, count = [], 0
            for batch in source.batches():
                batches.append(batch)
                count += batch.num_rows
                if count >= rows:
                    break
            return pa.Table.from_batches(batches, schema=source.schema).slice(0, rows)
    if kind == "parquet":
        with open_source(location, seekable=True) as stream:
            parquet = open_parquet(stream, location)
            first = next(parquet.file.iter_batches(batch_size=rows), None)
            table = (
                pa.Table.from_batches([first])
                if first is not None
                else parquet.schema.empty_table()
            )
            return _text_columns(table)
    with open_source(location) as stream:
        layout, records_stream = open_json(stream, location, lines=kind == "jsonl")
        records = next(record_chunks(records_stream, location, layout), [])[:rows]
    # nested objects are scanned field by field under dotted paths, the names obfuscate takes
    flat = [_flatten(record) for record in records]
    names = list(dict.fromkeys(key for record in flat for key in record))
    columns = [
        pa.array([value_text(record.get(name)) for record in flat], type=pa.string())
        for name in names
    ]
    return pa.table(columns, names=names)


def _flatten(record: dict[str, object], prefix: str = "") -> dict[str, object]:
    """``{"customer": {"email": x}}`` as ``{"customer.email": x}``; a list of objects gives
    one value per path (its first non-null), since the scan looks at what a field holds."""
    flat: dict[str, object] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                for path, inner in _flatten(item, f"{name}.").items():
                    if flat.get(path) is None:
                        flat[path] = inner
        else:
            flat[name] = value
    return flat
