"""Stream one multipart file part from the request straight into the core.

FastAPI's ``UploadFile`` would spool the whole file before the endpoint runs.
Here the body is parsed as it arrives (python-multipart's push parser) and the
file part's bytes go through a small bounded channel to `Workspace.ingest_stream`
running in a worker thread, which enforces the upload limit and checks the file
name before writing. At most a few chunks are in memory at any time.

The file is only handed over as complete once the closing boundary has been
seen: a body cut short, a second file part or a malformed envelope make the
worker's iterator raise, so the core discards what it staged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from headwater.faces.api.problems import Problem

__all__ = ["FILE_FIELD", "stream_file_part"]

FILE_FIELD = "file"
_CHANNEL_CHUNKS = 8

T = TypeVar("T")


class _Abandoned(Exception):
    """The request side stopped; its own error is re-raised by `stream_file_part`."""


@dataclass
class _FilePart:
    """Push-parser state: the first part named ``file``, its name and its pending bytes."""

    field_name: bytes
    filename: str | None = None
    ended: bool = False
    problem: Problem | None = None
    pending: list[bytes] = field(default_factory=list)
    _in_file: bool = False
    _header: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _headers: dict[bytes, bytes] = field(default_factory=dict)

    def parser(self, boundary: bytes) -> MultipartParser:
        return MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def take(self) -> list[bytes]:
        out, self.pending = self.pending, []
        return out

    def _part_begin(self) -> None:
        self._headers.clear()
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header).strip().lower()] = bytes(self._value).strip()
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") != self.field_name:
            return
        if self.filename is not None:
            self._refuse(
                f"the form has more than one {FILE_FIELD!r} part; send one file per request"
            )
            return
        raw = options.get(b"filename")
        if raw is None:
            self._refuse(f"the {FILE_FIELD!r} part has no filename; send it as a file")
            return
        try:
            self.filename = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse("the file name is not UTF-8; rename the file")
            return
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and end > start:
            self.pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True

    def _refuse(self, detail: str) -> None:
        if self.problem is None:
            self.problem = Problem(422, "Invalid upload", detail, field=FILE_FIELD)


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Problem(
            415,
            "Unsupported media type",
            f"send the file as multipart/form-data with one part named {FILE_FIELD!r} "
            "(curl -F file=@orders.csv ...)",
        )
    return boundary


async def stream_file_part(
    request: Request,
    ingest: Callable[[Iterator[bytes], str], T],
    *,
    idle_timeout_s: float,
) -> T:
    """Run ``ingest(chunks, filename)`` in a worker thread while the body streams into it."""
    upload = _Upload(request, idle_timeout_s)
    filename = await upload.file_name()
    outcome: list[T] = []
    error: Exception | None = None
    # Errors are raised after the task group, not inside it: anyio would wrap them
    # in an ExceptionGroup, which no problem handler matches.
    async with anyio.create_task_group() as group:
        group.start_soon(upload.feed)
        try:
            chunks = upload.chunks()
            outcome.append(await anyio.to_thread.run_sync(lambda: ingest(chunks, filename)))
        except Exception as exc:
            error = exc
        finally:
            group.cancel_scope.cancel()
            upload.receive.close()
    if isinstance(error, _Abandoned):
        raise upload.why_abandoned() from None
    if error is not None:
        raise error
    return outcome[0]


class _Upload:
    """One request's body, parsed as it arrives; the file part's bytes go through a channel."""

    def __init__(self, request: Request, idle_timeout_s: float) -> None:
        self.part = _FilePart(FILE_FIELD.encode())
        self.parser = self.part.parser(_boundary(request))
        self.body = request.stream().__aiter__()
        self.idle_timeout_s = idle_timeout_s
        self.send, self.receive = anyio.create_memory_object_stream[bytes](_CHANNEL_CHUNKS)
        self.failure: list[BaseException] = []

    def write(self, chunk: bytes) -> None:
        part = self.part
        if part.ended or part.problem is not None:
            return
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            part.problem = Problem(
                400, "Malformed upload", f"the multipart body is malformed: {exc}"
            )

    async def file_name(self) -> str:
        """Read up to the file part's headers: its name is needed before a byte is kept."""
        part = self.part
        async for chunk in self.body:
            self.write(chunk)
            if part.filename is not None or part.problem is not None:
                break
        if part.problem is not None:
            raise part.problem
        if part.filename is None:
            raise Problem(
                422,
                "Invalid upload",
                f"the form has no file part named {FILE_FIELD!r}",
                field=FILE_FIELD,
            )
        return part.filename

    async def _pass_on(self) -> None:
        for piece in self.part.take():
            await self.send.send(piece)

    async def feed(self) -> None:
        """The rest of the body into the channel; a body cut short is a problem, not an end."""
        part = self.part
        async with self.send:
            try:
                await self._pass_on()
                async for chunk in self.body:
                    self.write(chunk)
                    if part.problem is not None:
                        break
                    await self._pass_on()
                await self._pass_on()
                if part.problem is None and not part.ended:
                    part.problem = _cut_short()
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:  # the client went away or the body limit was passed
                self.failure.append(exc)

    async def _next_chunk(self) -> bytes:
        with anyio.fail_after(self.idle_timeout_s):
            return await self.receive.receive()

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes, for the worker thread; ends only after the closing boundary."""
        part = self.part
        while True:
            try:
                yield anyio.from_thread.run(self._next_chunk)
            except anyio.EndOfStream:
                if self.failure or part.problem is not None or not part.ended:
                    raise _Abandoned from None
                return
            except TimeoutError:
                part.problem = Problem(
                    408,
                    "Upload stalled",
                    f"the upload sent nothing for {self.idle_timeout_s:g} s "
                    "(HEADWATER_API_UPLOAD_IDLE_TIMEOUT_S)",
                    setting="HEADWATER_API_UPLOAD_IDLE_TIMEOUT_S",
                )
                raise _Abandoned from None

    def why_abandoned(self) -> BaseException:
        return self.failure[0] if self.failure else self.part.problem or _cut_short()


def _cut_short() -> Problem:
    return Problem(400, "Malformed upload", "the upload ended before its closing boundary")
