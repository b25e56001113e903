"""The obfuscator as a library call: a JSON request in, the obfuscated file out.

For data engineers who want it where their data already is (a Lambda, a Step
Functions task, an Airflow operator)::

    from headwater.privacy import obfuscate

    body = obfuscate({"file_to_obfuscate": "s3://bucket/new_data/file1.csv",
                      "pii_fields": ["name", "email_address"]})
    s3.put_object(Bucket="bucket", Key="safe/file1.csv", Body=body)

The format (CSV, JSON, JSON Lines, Parquet; the text ones gzipped or not) comes from
the key's extension. Errors come from `headwater.errors`: a field not in the file is a
`SchemaError`, a malformed S3 URL a `ConfigError`, a missing bucket or key a
`LocationNotFound`. This module imports only the data layer and its flow, never the
warehouse, training or web faces, so it stays light enough for a Lambda package.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import BinaryIO

from headwater.data import privacy as _privacy
from headwater.data.privacy import (
    MODES,
    Mode,
    ObfuscationReport,
    ObfuscationRequest,
    parse_request,
)
from headwater.errors import ConfigError
from headwater.flows import privacy as _flows
from headwater.settings import Settings

__all__ = [
    "MODES",
    "Mode",
    "ObfuscationReport",
    "ObfuscationRequest",
    "RequestLike",
    "obfuscate",
    "obfuscate_stream",
    "obfuscate_to_output",
    "parse_request",
]

RequestLike = str | Mapping[str, object] | ObfuscationRequest
"""A request as JSON text, a decoded dict, or already parsed."""

_SPOOL_BYTES = 64 * 1024 * 1024


def _parsed(request: RequestLike) -> ObfuscationRequest:
    return request if isinstance(request, ObfuscationRequest) else parse_request(request)


def obfuscate(request: RequestLike, *, settings: Settings | None = None) -> bytes:
    """The obfuscated file as `bytes`, ready for ``put_object(Body=...)`` as it is.

    When the request names an ``output``, the same bytes are also written there
    (never over the source, always in the source's format), so one call serves both
    a caller that uploads itself and one that wants the copy put in place.
    """
    parsed = _parsed(request)
    if parsed.output is not None:
        _flows.check_destination(parsed, parsed.output)
    data = _privacy.obfuscate(parsed, settings=settings)
    if parsed.output is not None:
        _privacy.write_to(parsed.output, data)
    return data


def obfuscate_stream(request: RequestLike, *, settings: Settings | None = None) -> BinaryIO:
    """The obfuscated file as a rewound binary stream, for files too large for `bytes`.

    Up to 64 MiB stays in memory, the rest in a temporary file; the stream is only
    returned once the whole file succeeded. ``put_object(Body=stream)`` and
    ``upload_fileobj(stream, ...)`` take it as it is; the caller closes it.
    """
    parsed = _parsed(request)
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115  # handed back
    try:
        _privacy.obfuscate_to(parsed, spool, settings=settings)  # type: ignore[arg-type]  # a binary file
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool  # type: ignore[return-value]  # SpooledTemporaryFile is a binary file object


def obfuscate_to_output(
    request: RequestLike, output: str | None = None, *, settings: Settings | None = None
) -> ObfuscationReport:
    """Stream the obfuscated copy into `output` (default: the request's ``output``).

    Memory stays bounded by one batch whatever the file size, and nothing is
    written unless the whole file succeeded; this is what the Lambda handler uses.
    """
    parsed = _parsed(request)
    destination = output or parsed.output
    if not destination:
        raise ConfigError(
            f"{parsed.source}: no output named; add "
            '"output": "s3://bucket/safe/file.csv" to the request'
        )
    return _flows.obfuscate_to_destination(parsed, destination, settings=settings)
