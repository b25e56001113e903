"""The obfuscator as an AWS Lambda function: ``headwater.privacy.aws_lambda.handler``.

Two kinds of event reach it:

* a JSON request, from Step Functions, Airflow, EventBridge or ``aws lambda invoke``:
  ``{"file_to_obfuscate": "s3://b/new_data/f.csv", "pii_fields": [...], "output":
  "s3://b/safe/f.csv"}`` (optional ``mode``/``modes``); the answer is an HTTP-style
  response whose JSON body says what was written, or why nothing was;
* an S3 ``ObjectCreated`` notification: every new object under the source prefix is
  obfuscated into the output prefix (the key's rest kept), with the fields and mode
  from the environment.

Configuration (environment): ``HEADWATER_LAMBDA_SOURCE_PREFIX``,
``HEADWATER_LAMBDA_OUTPUT_PREFIX``, ``HEADWATER_LAMBDA_PII_FIELDS`` (comma-separated),
optional ``HEADWATER_LAMBDA_MODE`` (default mask), ``HEADWATER_LAMBDA_OUTPUT_BUCKET``
(default: the event's bucket) and ``HEADWATER_PSEUDONYM_KEY`` for pseudonyms. The two
prefixes may not overlap, and an object under the output prefix is always ignored, so
the function cannot trigger itself. Only ``s3://`` locations are accepted: a request
naming a local path could otherwise read the function's own files (its environment
holds its credentials). Logs are one JSON object per line, with locations, counts and
field names, never a value from a file. This module imports no web, warehouse or
training code, so the deployment package holds only what it needs.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from headwater.data.privacy.request import MODES, Mode, build_request
from headwater.errors import (
    AccessDenied,
    ConfigError,
    DataError,
    HeadwaterError,
    NotFound,
    StorageError,
)
from headwater.privacy import ObfuscationRequest, obfuscate_to_output, parse_request

__all__ = ["EventFailed", "LambdaConfig", "handler"]

ENV_SOURCE_PREFIX = "HEADWATER_LAMBDA_SOURCE_PREFIX"
ENV_OUTPUT_PREFIX = "HEADWATER_LAMBDA_OUTPUT_PREFIX"
ENV_OUTPUT_BUCKET = "HEADWATER_LAMBDA_OUTPUT_BUCKET"
ENV_PII_FIELDS = "HEADWATER_LAMBDA_PII_FIELDS"
ENV_MODE = "HEADWATER_LAMBDA_MODE"

log = logging.getLogger("headwater.lambda")


class _JsonLines(logging.Formatter):
    """One JSON object per record: what happened (`event`) and its `fields`, nothing else."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class _Stdout(logging.Handler):
    """Writes to whatever `sys.stdout` is now (Lambda ships stdout to CloudWatch)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break the handler
            self.handleError(record)


def _setup_logging() -> None:
    if not any(isinstance(handler, _Stdout) for handler in log.handlers):
        out = _Stdout()
        out.setFormatter(_JsonLines())
        log.addHandler(out)
    log.setLevel(os.environ.get("HEADWATER_LAMBDA_LOG_LEVEL", "INFO").upper())
    log.propagate = False  # the runtime's own root handler would print each line twice


_setup_logging()


def _emit(level: int, event: str, **fields: object) -> None:
    log.log(level, event, extra={"fields": fields})


class EventFailed(HeadwaterError):
    """Raised for an S3 event with a failed object, so Lambda retries it and then dead-letters it.

    Its message is the same JSON body a direct request gets back.
    """


@dataclass(frozen=True)
class LambdaConfig:
    """Where new objects come from and go to, and what to do to them (from the environment)."""

    source_prefix: str
    output_prefix: str
    pii_fields: tuple[str, ...]
    mode: Mode = "mask"
    output_bucket: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LambdaConfig:
        """Read and check the configuration; overlapping prefixes are refused."""
        env = os.environ if environ is None else environ
        source = env.get(ENV_SOURCE_PREFIX, "").lstrip("/")
        output = env.get(ENV_OUTPUT_PREFIX, "").lstrip("/")
        fields = tuple(f.strip() for f in env.get(ENV_PII_FIELDS, "").split(",") if f.strip())
        missing = [name for name, value in ((ENV_SOURCE_PREFIX, source),
                                            (ENV_OUTPUT_PREFIX, output),
                                            (ENV_PII_FIELDS, fields)) if not value]  # fmt: skip
        if missing:
            raise ConfigError(f"set {', '.join(missing)} in the function's environment")
        if source.startswith(output) or output.startswith(source):
            raise ConfigError(
                f"{ENV_SOURCE_PREFIX}={source!r} and {ENV_OUTPUT_PREFIX}={output!r} overlap; "
                "the output would land under the source and trigger the function again"
            )
        mode = env.get(ENV_MODE, "mask").strip().lower()
        checked = next((known for known in MODES if known == mode), None)
        if checked is None:
            raise ConfigError(f"{ENV_MODE}={mode!r} is not known; use one of {', '.join(MODES)}")
        bucket = env.get(ENV_OUTPUT_BUCKET, "").strip() or None
        return cls(source, output, fields, checked, bucket)

    def output_key(self, key: str) -> str:
        """The output key of a source key: the output prefix, then the rest of the key."""
        return self.output_prefix + key[len(self.source_prefix) :]


def handler(event: object, context: object) -> dict[str, object]:
    """Lambda's entry point: an S3 event notification or a JSON obfuscation request."""
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None)
    if isinstance(event, Mapping) and "Records" in event:
        return _s3_event(event, request_id, started)
    try:
        report = _direct(event)
    except HeadwaterError as exc:
        _emit(logging.ERROR, "failed", request_id=request_id, **_reason(exc), **_usage(started))
        return _response(_status(exc), {"ok": False, "error": _reason(exc)})
    _emit(logging.INFO, "obfuscated", request_id=request_id, **report, **_usage(started))
    return _response(200, {"ok": True, **report})


def _direct(event: object) -> dict[str, object]:
    if not isinstance(event, str | Mapping):
        raise ConfigError(f"the event must be a JSON object; got {type(event).__name__}")
    request = parse_request(event)
    if request.output is None:
        raise ConfigError(
            f'{request.source}: the request needs "output": an s3://bucket/key to write to'
        )
    for location in (request.source, request.output):
        if not location.startswith("s3://"):
            raise ConfigError(f"{location!r}: the function reads and writes s3:// URLs only")
    source_prefix = os.environ.get(ENV_SOURCE_PREFIX, "").lstrip("/")
    if source_prefix and _key(request.output).startswith(source_prefix):
        raise ConfigError(
            f"{request.output}: the output is under the source prefix {source_prefix!r}; "
            "write it elsewhere, or it would be obfuscated again"
        )
    return _run(request)


def _run(request: ObfuscationRequest) -> dict[str, object]:
    report = obfuscate_to_output(request)
    return {
        "source": request.source,
        "output": request.output,
        "format": report.format,
        "rows": report.rows,
        "modes": dict(report.modes),
    }


def _s3_event(event: Mapping[str, object], request_id: object, started: float) -> dict[str, object]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise EventFailed(json.dumps({"ok": False, "error": {"reason": "Records is not a list"}}))
    try:
        config = LambdaConfig.from_env()
    except ConfigError as exc:
        _emit(logging.ERROR, "failed", request_id=request_id, **_reason(exc))
        raise
    done: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    ignored: list[dict[str, object]] = []
    for record in records:
        bucket, key, why = _record_object(record, config)
        where = {"bucket": bucket, "key": key}
        if why:
            ignored.append({**where, "reason": why})
            _emit(logging.INFO, "ignored", request_id=request_id, reason=why, **where)
            continue
        output = f"s3://{config.output_bucket or bucket}/{config.output_key(key)}"
        try:
            request = build_request(
                f"s3://{bucket}/{key}", config.pii_fields, mode=config.mode, output=output
            )
            done.append(_run(request))
        except HeadwaterError as exc:
            failed.append({**where, **_reason(exc)})
            _emit(logging.ERROR, "failed", request_id=request_id, **where, **_reason(exc))
            continue
        _emit(logging.INFO, "obfuscated", request_id=request_id, **done[-1], **_usage(started))
    body: dict[str, object] = {"ok": not failed, "done": done, "ignored": ignored}
    if failed:
        raise EventFailed(json.dumps({**body, "failed": failed}))
    return _response(200, body)


def _record_object(record: object, config: LambdaConfig) -> tuple[str, str, str]:
    """(bucket, key, why it is ignored or ""); S3 sends keys URL-encoded, spaces as ``+``."""
    s3 = record.get("s3") if isinstance(record, Mapping) else None
    bucket = s3.get("bucket", {}).get("name", "") if isinstance(s3, Mapping) else ""
    raw_key = s3.get("object", {}).get("key", "") if isinstance(s3, Mapping) else ""
    key = unquote_plus(str(raw_key))
    name = str(record.get("eventName", "")) if isinstance(record, Mapping) else ""
    if not bucket or not key:
        return str(bucket), key, "not an S3 object record"
    if not name.startswith("ObjectCreated"):
        return str(bucket), key, f"event {name!r} is not ObjectCreated"
    if key.startswith(config.output_prefix):
        return str(bucket), key, "under the output prefix (written by this function)"
    if not key.startswith(config.source_prefix):
        return str(bucket), key, "outside the source prefix"
    if key.endswith("/"):
        return str(bucket), key, "a folder marker"
    return str(bucket), key, ""


def _key(url: str) -> str:
    return url[len("s3://") :].partition("/")[2]


def _reason(exc: HeadwaterError) -> dict[str, object]:
    """The error class and its message: messages name files and fields, never cell values."""
    return {"error": type(exc).__name__, "reason": str(exc)}


def _status(exc: HeadwaterError) -> int:
    for kind, status in ((AccessDenied, 403), (NotFound, 404), (StorageError, 503)):
        if isinstance(exc, kind):
            return status
    return 422 if isinstance(exc, DataError | ConfigError) else 500


def _usage(started: float) -> dict[str, object]:
    """Wall time since the invocation began, and the process's peak memory so far."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "duration_ms": round((time.monotonic() - started) * 1000),
        "max_rss_mb": peak_kib // 1024,
    }


def _response(status: int, body: Mapping[str, object]) -> dict[str, object]:
    """An HTTP-style answer (API Gateway's shape) with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
