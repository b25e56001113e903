"""JSON arrays of records and JSON Lines, read and written as lists of Python dicts.

Why not Arrow here: Arrow's JSON reader gives every record every key (absent
becomes null), widens types across records and refuses a type change between
blocks; each of those would change what a record says. So a JSON parser in C
(``json`` for lines, ijson for arrays) keeps each record as written (key order,
nesting, absent keys, numbers), and only the PII fields are lifted into Arrow
arrays for the vectorised modes.

JSON Lines stream in blocks of whole lines; a JSON array streams through an
incremental parser, a chunk of records at a time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import BinaryIO, Literal

import ijson
import pyarrow as pa

from headwater.data.privacy.formats import ReplayStream
from headwater.data.privacy.modes import apply_mode
from headwater.data.privacy.request import Mode
from headwater.errors import FormatError

__all__ = [
    "JsonArrayWriter",
    "JsonLayout",
    "JsonLinesWriter",
    "Record",
    "obfuscate_records",
    "open_json",
    "record_chunks",
    "value_text",
]

JsonLayout = Literal["array", "lines"]
Record = dict[str, object]

LINES_BLOCK_BYTES = 4 * 1024 * 1024
ARRAY_CHUNK_RECORDS = 65_536
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def open_json(stream: BinaryIO, path: str, *, lines: bool) -> tuple[JsonLayout, BinaryIO]:
    """Tell an array from JSON Lines by the first character, for ``.json`` files of either."""
    if lines:
        return "lines", stream
    head = b""
    while not head.strip():
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        head += chunk
    if not head.strip():
        raise FormatError("the JSON file is empty; expected an array of records", path=path)
    first = head.lstrip()[:1]
    if first not in (b"[", b"{"):
        raise FormatError(
            f"expected a JSON array of records or JSON Lines, but it starts with {first!r}",
            path=path,
        )
    replay = io.BufferedReader(ReplayStream(head, stream))
    return ("array" if first == b"[" else "lines"), replay


def _parse_lines(text: str, path: str, first_line: int) -> list[Record]:
    """Parse a block of lines in C (`map(json.loads)`); only a failure walks the lines."""
    try:
        records = list(map(json.loads, filter(str.strip, text.split("\n"))))
    except json.JSONDecodeError as block_exc:
        for number, line in enumerate(text.split("\n"), start=first_line):
            try:
                if line.strip():
                    json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(
                    f"malformed JSON Lines: {exc.msg} at column {exc.colno}", path=path, row=number
                ) from exc
        raise FormatError(f"malformed JSON Lines: {block_exc.msg}", path=path) from block_exc
    _require_objects(records, path)
    return records


def _require_objects(records: list[object], path: str) -> None:
    if not all(isinstance(record, dict) for record in records):
        kind = next(type(r).__name__ for r in records if not isinstance(r, dict))
        raise FormatError(f"every record must be a JSON object; found a {kind}", path=path)


def record_chunks(
    stream: BinaryIO, path: str, layout: JsonLayout, *, block_bytes: int | None = None
) -> Iterator[list[Record]]:
    """Records in chunks: blocks of whole lines for JSON Lines, runs of an array's records."""
    block_bytes = block_bytes or LINES_BLOCK_BYTES
    if layout == "array":
        yield from _array_chunks(stream, path)
        return
    carry = b""
    line = 1
    while True:
        block = stream.read(block_bytes)
        data = carry + block
        if block:
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            data, carry = data[: cut + 1], data[cut + 1 :]
        else:
            carry = b""
        try:
            text = data.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text after line {line}: {exc.reason}", path=path) from exc
        records = _parse_lines(text, path, line)
        line += text.count("\n")
        if records:
            yield records
        if not block:
            return


def _array_chunks(stream: BinaryIO, path: str) -> Iterator[list[Record]]:
    """An array parsed incrementally (ijson's C parser), so its size never has to fit in memory.

    Numbers arrive as Python ints and floats, exactly as ``json.loads`` gives them.
    """
    chunk: list[Record] = []
    index = 0
    try:
        for record in ijson.items(stream, "item", use_float=True):
            if not isinstance(record, dict):
                raise FormatError(
                    f"every record must be a JSON object; found a {type(record).__name__} "
                    f"at index {index}",
                    path=path,
                )
            chunk.append(record)
            index += 1
            if len(chunk) == ARRAY_CHUNK_RECORDS:
                yield chunk
                chunk = []
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise FormatError(f"malformed JSON after record {index}: {exc}", path=path) from exc
    if chunk:
        yield chunk


def value_text(value: object) -> str | None:
    """The text a JSON value is obfuscated as: strings as they are, others as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def obfuscate_records(
    records: list[Record], plan: Mapping[str, Mode], *, key: bytes | None, seen: set[str]
) -> None:
    """Apply the plan in place; a record lacking a field keeps lacking it.

    A field is a top-level key, or a dotted path into nested objects
    (``customer.email``); a path that meets a list applies to each object in it
    (``contacts.phone`` covers every contact). A top-level key that itself holds
    a dot wins over the path. `seen` collects the PII fields met, so the caller
    can refuse a field that is in no record of the whole file.
    """
    for name, mode in plan.items():
        direct = [record for record in records if name in record]
        nested = (  # the path, for the records without a literal dotted key
            [h for r in records if name not in r for h in _nested(r, name)] if "." in name else []
        )
        if not direct and not nested:
            continue
        seen.add(name)
        if mode == "drop":
            for record in direct:
                del record[name]
            for container, field in nested:
                del container[field]
            continue
        texts = [value_text(record[name]) for record in direct]
        texts += [value_text(container[field]) for container, field in nested]
        values = apply_mode(pa.array(texts, type=pa.string()), mode, key=key).to_pylist()
        for record, value in zip(direct, values, strict=False):
            record[name] = value
        for (container, field), value in zip(nested, values[len(direct) :], strict=True):
            container[field] = value


def _nested(record: Record, name: str) -> list[tuple[Record, str]]:
    """The (object, key) pairs that hold the dotted path ``name`` inside one record."""
    *path, last = name.split(".")
    level: list[object] = [record]
    for part in path:
        level = [
            item
            for value in (node[part] for node in level if isinstance(node, dict) and part in node)
            for item in (value if isinstance(value, list) else [value])
        ]
    return [(node, last) for node in level if isinstance(node, dict) and last in node]


class JsonLinesWriter:
    """One record per line, UTF-8, keys in their original order."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def write(self, records: list[Record]) -> None:
        if records:
            text = "\n".join(map(_ENCODER.encode, records)) + "\n"
            self._sink.write(text.encode("utf-8"))

    def close(self) -> None:
        """Nothing to finish: every line is complete on its own."""


class JsonArrayWriter:
    """A JSON array with one record per line, so the output diffs and greps well."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._count = 0
        sink.write(b"[")

    def write(self, records: list[Record]) -> None:
        if records:
            lead = "\n" if self._count == 0 else ",\n"
            text = lead + ",\n".join(map(_ENCODER.encode, records))
            self._sink.write(text.encode("utf-8"))
            self._count += len(records)

    def close(self) -> None:
        self._sink.write(b"\n]\n" if self._count else b"]\n")
