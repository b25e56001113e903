"""Checks on a text file's bytes while they stream, before a parser (Arrow, ijson) sees them.

A hostile file is cheap to write and expensive to parse: a 60 KB JSON record
nested 10,000 deep grew Arrow to 17 GB, a small gzip can expand to terabytes,
and Latin-1 bytes past the sniffed head loaded silently as binary columns. So
every text reader reads through `GuardedText` (over `base.open_decompressed`,
which stops a gzip past ``max_decompressed_bytes``), which

- decodes the whole file with one encoding, failing at the first undecodable
  byte with its line, and hands UTF-8 on to the parser;
- for JSON, scans the structure (`JsonShape`) and stops at a record nested
  deeper than ``json_max_depth`` or with more than ``json_max_fields`` keys.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

from headwater.errors import ConfigError, FormatError

__all__ = ["GuardedText", "JsonShape", "ShapeExceeded", "decoder", "undecodable"]

_PIECE = 1 << 16
"""Bytes checked per step: small enough for the scratch arrays to stay in the CPU cache."""

_QUOTE, _BACKSLASH, _BRACE, _BRACKET, _CLOSE, _COLON, _COMMA, _NEWLINE = range(1, 9)
_CODES = np.zeros(256, dtype=np.uint8)
for _byte, _code in zip(b'"\\{[}]:,\n', (1, 2, 3, 4, 5, 5, 6, 7, 8), strict=True):
    _CODES[_byte] = _code
_DEPTH = np.zeros(9, dtype=np.int32)
_DEPTH[[_BRACE, _BRACKET]], _DEPTH[_CLOSE] = 1, -1


class ShapeExceeded(ValueError):
    """A JSON record past a limit; the JSON reader turns it into a `FormatError` with its path."""

    def __init__(self, what: str, *, record: int, line: int, record_offset: int) -> None:
        super().__init__(f"{what} limit passed in record {record} (line {line})")
        self.what, self.record, self.line, self.record_offset = what, record, line, record_offset


class JsonShape:
    """Nesting depth and keys per record of a JSON text, counted on its bytes as they arrive.

    Vectorised with numpy over the bytes that can be structure, 64 KB at a time, so
    its memory is fixed whatever the file holds (bench/readers.py measures its speed).
    Strings are masked out (quotes escaped by an odd run of backslashes do not
    count), so brackets and colons inside text are not structure. A record is a
    line of JSON Lines, or an element of a top-level array (``array=True``).
    """

    def __init__(self, *, max_depth: int, max_fields: int, array: bool) -> None:
        self.max_depth, self.max_fields, self.level = max_depth, max_fields, int(array)
        self.depth = 0
        self.records = 0  # record marks seen: an array's '[' and commas, or JSON Lines' newlines
        self.line = 1
        self.offset = 0
        self.record_offset = 0
        self._in_string = 0
        self._backslashes = 0
        self._fields = 0

    def feed(self, chunk: bytes) -> None:
        """Scan the next bytes; raise `ShapeExceeded` at the first record past a limit."""
        for start in range(0, len(chunk), _PIECE):
            piece = chunk[start : start + _PIECE]
            self._feed(piece, np.frombuffer(piece, np.uint8))

    def _feed(self, piece: bytes, b: np.ndarray) -> None:
        codes = _CODES[b]
        pos = np.flatnonzero(codes)  # only the bytes that can be structure are looked at
        c = codes[pos]
        if not len(c):
            self._backslashes = 0
            self.offset += len(piece)
            return
        is_quote = c == _QUOTE
        if self._backslashes or b"\\" in piece:
            is_quote &= ~self._escaped(piece, c, pos)
        inside = (np.cumsum(is_quote, dtype=np.int32) + self._in_string) & 1
        structure = np.where((inside | is_quote) == 0, c, 0)  # codes outside strings
        depth = np.cumsum(_DEPTH[structure]) + self.depth
        newlines = c == _NEWLINE
        if self.level:  # an array's records begin after its '[' and after each comma
            marks = ((structure == _COMMA) | (structure == _BRACKET)) & (depth == 1)
        else:  # a JSON Lines record ends at its newline
            marks = newlines & (depth == 0)
        colons = structure == _COLON
        ends = np.flatnonzero(marks)
        at = self._first_bad(depth, colons, ends)
        if at is not None:
            self._exceeded(at, depth, c, pos, marks)
        self.depth, self._in_string = int(depth[-1]), int(inside[-1])
        if len(ends):
            self._fields = int(np.count_nonzero(colons[ends[-1] :]))
            self.record_offset = self.offset + int(pos[ends[-1]]) + 1
        else:
            self._fields += int(np.count_nonzero(colons))
        self.records += len(ends)
        self.line += int(np.count_nonzero(newlines))
        self.offset += len(piece)

    def _first_bad(self, depth: np.ndarray, colons: np.ndarray, ends: np.ndarray) -> int | None:
        """Index of the first byte looked at that passes a limit; cheap bounds first."""
        bad = (
            depth - self.level > self.max_depth
            if depth.max() - self.level > self.max_depth
            else None
        )
        if self._fields + np.count_nonzero(colons) > self.max_fields:  # keys since the last mark
            count = np.cumsum(colons, dtype=np.int64)
            index = np.arange(len(colons), dtype=np.int64)
            last = np.maximum.accumulate(np.where(np.isin(index, ends), index, -1))
            since = np.where(last >= 0, count - count[np.maximum(last, 0)], count + self._fields)
            wide = since > self.max_fields
            bad = wide if bad is None else bad | wide
        if bad is None or not bad.any():
            return None
        return int(np.argmax(bad))

    def _escaped(self, piece: bytes, c: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Which of the bytes looked at follow an odd run of backslashes (maybe begun earlier)."""
        index = np.arange(len(c), dtype=np.int64)
        adjacent = np.zeros(len(c), dtype=bool)
        adjacent[:-1] = pos[1:] == pos[:-1] + 1
        in_run = (c == _BACKSLASH) & adjacent  # a backslash right before the next byte looked at
        last_other = np.maximum.accumulate(np.where(in_run, -1, index))
        before = np.concatenate(([-1], last_other[:-1]))
        run = index - 1 - before
        if len(pos) and pos[0] == 0:
            run += np.where(before < 0, self._backslashes, 0)
        trailing = len(piece) - len(piece.rstrip(b"\\"))
        self._backslashes = trailing + (self._backslashes if trailing == len(piece) else 0)
        odd: np.ndarray = (run & 1) == 1
        return odd

    def _exceeded(
        self, at: int, depth: np.ndarray, c: np.ndarray, pos: np.ndarray, marks: np.ndarray
    ) -> None:
        ends = np.flatnonzero(marks[: at + 1])
        raise ShapeExceeded(
            "depth" if depth[at] - self.level > self.max_depth else "fields",
            record=self.records + len(ends) - self.level,
            line=self.line + int(np.count_nonzero(c[:at] == _NEWLINE)),
            record_offset=(
                self.offset + int(pos[ends[-1]]) + 1 if len(ends) else self.record_offset
            ),
        )


def decoder(encoding: str) -> codecs.IncrementalDecoder:
    """A strict incremental decoder; a name that is not a text encoding is a usage error.

    Python's codec registry also holds rot13, zlib and base64, which are not text
    encodings and fail in ways of their own, so they are refused by name too.
    """
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ConfigError(
            f"{encoding!r} is not a text encoding; use one such as utf-8, latin-1, cp1252"
        )
    return info.incrementaldecoder("strict")


def undecodable(
    exc: UnicodeDecodeError, *, path: Path, encoding: str, lines_before: int
) -> FormatError:
    """The error for the first byte that ``encoding`` cannot decode, with its line."""
    line = lines_before + exc.object[: exc.start].count(b"\n") + 1
    return FormatError(
        f"byte 0x{exc.object[exc.start]:02x} on line {line} is not {encoding.upper()} text "
        "(the whole file is read with one encoding); say which encoding it has, "
        "e.g. --encoding latin-1",
        path=path,
    )


class GuardedText(io.RawIOBase):
    """A text file's bytes as UTF-8, checked chunk by chunk; see the module docstring."""

    def __init__(
        self,
        raw: BinaryIO,
        path: Path,
        *,
        encoding: str = "utf-8",
        shape: JsonShape | None = None,
    ) -> None:
        super().__init__()
        self.raw, self.path, self.encoding = raw, path, encoding
        self._decoder = decoder(encoding)
        self._recode = codecs.lookup(encoding).name != "utf-8"
        self.shape = shape
        self._pending = b""
        self._lines = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._pending = self._next_chunk(max(len(buffer), 1 << 16))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next_chunk(self, size: int) -> bytes:
        raw = self.raw.read(size)
        final = not raw
        self._done = final
        try:
            text = self._decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            raise undecodable(
                exc, path=self.path, encoding=self.encoding, lines_before=self._lines
            ) from exc
        out = text.encode("utf-8") if self._recode else raw
        self._lines += out.count(b"\n")
        if self.shape is not None:
            self.shape.feed(out)
        return out

    def close(self) -> None:
        if not self.closed:
            self.raw.close()
        super().close()
