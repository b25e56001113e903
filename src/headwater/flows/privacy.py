"""Obfuscation and the PII scan as flows: the one door the faces (CLI, API) go through.

The data layer does the work; this module adds what a whole job needs around it:
building a request from command-line options, refusing to overwrite the source,
and writing all-or-nothing to a destination or a stream.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from headwater.data import privacy
from headwater.data.privacy import (
    Mode,
    ObfuscationReport,
    ObfuscationRequest,
    PiiSuggestion,
    RowsDone,
)
from headwater.errors import ConfigError, FormatError
from headwater.settings import Settings

__all__ = [
    "Mode",
    "ObfuscationReport",
    "ObfuscationRequest",
    "PiiSuggestion",
    "check_destination",
    "obfuscate",
    "obfuscate_to_destination",
    "obfuscate_to_stream",
    "request_from_options",
    "scan_pii",
]

_SPOOL_BYTES = 64 * 1024 * 1024
RequestLike = str | ObfuscationRequest


def _parsed(request: RequestLike) -> ObfuscationRequest:
    return request if isinstance(request, ObfuscationRequest) else privacy.parse_request(request)


def request_from_options(
    source: str | None,
    pii_fields: Sequence[str] | None,
    *,
    mode: str | None = None,
    modes: Mapping[str, str] | None = None,
    request_json: str | None = None,
) -> ObfuscationRequest:
    """Merge command-line options over an optional JSON request; options win.

    So ``--request`` can carry what is awkward on a command line while SOURCE and
    ``--pii-fields`` stay the everyday way in. A field given a mode in `modes` is
    obfuscated even when `pii_fields` does not list it: naming a mode for a field
    says it is personal.
    """
    fields: list[str] = []
    chosen: dict[str, str] = {}
    location = source
    output: str | None = None
    if request_json:
        decoded = privacy.parse_request(request_json)
        location = location or decoded.source
        output = decoded.output
        fields = list(decoded.pii_fields)
        chosen = dict(decoded.modes)
    if pii_fields:
        fields = list(pii_fields)
        chosen = {name: chosen[name] for name in fields if name in chosen}
    if mode is not None:
        chosen = {}
    if not location:
        raise ConfigError(
            "name the file to obfuscate, e.g. headwater obfuscate s3://bucket/file.csv "
            "--pii-fields name,email"
        )
    chosen.update(modes or {})
    fields += [name for name in chosen if name not in fields]
    request: dict[str, object] = {"file_to_obfuscate": location, "pii_fields": fields}
    if mode is not None:
        request["mode"] = mode
    request["modes"] = chosen
    if output is not None:
        request["output"] = output
    return privacy.parse_request(request)


def obfuscate(request: RequestLike, *, settings: Settings | None = None) -> bytes:
    """The obfuscated file as bytes (see `headwater.data.privacy.obfuscate`)."""
    return privacy.obfuscate(_parsed(request), settings=settings)


def obfuscate_to_destination(
    request: RequestLike,
    destination: str,
    *,
    settings: Settings | None = None,
    progress: RowsDone | None = None,
) -> ObfuscationReport:
    """Obfuscate into a local path or ``s3://`` URL; nothing is written if any step fails."""
    parsed = _parsed(request)
    check_destination(parsed, destination)
    with privacy.open_destination(destination) as sink:
        return privacy.obfuscate_to(parsed, sink, settings=settings, progress=progress)


def check_destination(request: ObfuscationRequest, destination: str) -> None:
    """Refuse a destination that is the source or would hold another format than the source's."""
    parsed = request
    if privacy.same_location(parsed.source, destination):
        raise ConfigError(
            f"{destination}: the destination is the source; the source is never overwritten, "
            "so write the obfuscated copy elsewhere"
        )
    source_format = privacy.format_of(parsed.source)
    try:
        destination_format = privacy.format_of(destination)
    except FormatError:
        destination_format = source_format
    zipped = ".gz" if privacy.gzipped(parsed.source) else ""
    if destination_format != source_format or zipped != (
        ".gz" if privacy.gzipped(destination) else ""
    ):
        raise ConfigError(
            f"{destination}: the output keeps the source's format ({source_format}{zipped}); "
            f"give the destination a .{source_format}{zipped} name"
        )


def obfuscate_to_stream(
    request: RequestLike,
    sink: BinaryIO,
    *,
    settings: Settings | None = None,
    progress: RowsDone | None = None,
) -> ObfuscationReport:
    """Obfuscate into an open stream (stdout) only once the whole file succeeded.

    The output is spooled (memory up to 64 MiB, then a temporary file) so a
    failure half way sends nothing downstream, with memory still bounded.
    """
    parsed = _parsed(request)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        report = privacy.obfuscate_to(parsed, spool, settings=settings, progress=progress)  # type: ignore[arg-type]  # a binary file
        spool.seek(0)
        shutil.copyfileobj(spool, sink, length=1024 * 1024)
    sink.flush()
    return report


def scan_pii(
    location: str, *, sample_rows: int = 10_000, min_share: float = 0.5
) -> list[PiiSuggestion]:
    """Suggest the personal fields of a file (see `headwater.data.privacy.scan_pii`)."""
    return privacy.scan_pii(location, sample_rows=sample_rows, min_share=min_share)
