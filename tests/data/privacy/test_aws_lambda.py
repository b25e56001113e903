"""The Lambda handler against a real S3 endpoint (moto on loopback): events, requests, logs."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from urllib.parse import quote_plus

import pyarrow.parquet as pq
import pytest

from headwater.errors import ConfigError
from headwater.privacy.aws_lambda import EventFailed, LambdaConfig, handler
from tests.data.privacy.checks import load_rows
from tests.data.privacy.conftest import Bucket
from tests.data.privacy.people import NOT_PII, PII_FIELDS, WRITERS

FORMATS = ["csv", "json", "jsonl", "parquet"]


class Context:
    aws_request_id = "req-1"


@pytest.fixture
def lambda_env(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_LAMBDA_SOURCE_PREFIX", "new_data/")
    monkeypatch.setenv("HEADWATER_LAMBDA_OUTPUT_PREFIX", "obfuscated/")
    monkeypatch.setenv("HEADWATER_LAMBDA_PII_FIELDS", ",".join(PII_FIELDS))
    monkeypatch.delenv("HEADWATER_LAMBDA_OUTPUT_BUCKET", raising=False)
    monkeypatch.delenv("HEADWATER_LAMBDA_MODE", raising=False)


def s3_event(bucket: str, *keys: str) -> dict[str, object]:
    """What S3 sends: one record per object, the key URL-encoded (a space as '+')."""
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
            for key in keys
        ]
    }


def _body(response: dict[str, object]) -> dict[str, object]:
    assert isinstance(response["body"], str)
    decoded = json.loads(response["body"])
    assert isinstance(decoded, dict)
    return decoded


def _cells(fmt: str, data: bytes) -> list[dict[str, object]]:
    """Cells as bytes-exact text for CSV (the csv module keeps every character as written)."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    return load_rows(fmt, data)


def assert_pii_changed_rest_identical(fmt: str, before: bytes, after: bytes) -> None:
    rows_in, rows_out = _cells(fmt, before), _cells(fmt, after)
    assert len(rows_in) == len(rows_out) > 0
    for original, result in zip(rows_in, rows_out, strict=True):
        assert list(result) == list(original)
        for name, value in original.items():
            if name in PII_FIELDS:
                if value not in ("", None):
                    assert result[name] != value, (name, value)
            else:
                assert result[name] == value, (name, value, result[name])
    if fmt == "parquet":  # untouched columns keep their type and their exact values
        table_in, table_out = pq.read_table(io.BytesIO(before)), pq.read_table(io.BytesIO(after))
        for name in NOT_PII:
            assert table_out.column(name).equals(table_in.column(name)), name


def test_an_s3_event_obfuscates_every_format_and_cannot_trigger_itself(
    lambda_env: None,
    bucket: Bucket,
    people: dict[str, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    originals = {f"new_data/2024/file {fmt}.{fmt}": WRITERS[fmt](people) for fmt in FORMATS}
    for key, body in originals.items():
        bucket.put(key, body)

    body = _body(handler(s3_event(bucket.name, *originals), Context()))

    assert body["ok"] is True
    assert len(body["done"]) == 4  # type: ignore[arg-type]
    for key, before in originals.items():
        output = "obfuscated/" + key.removeprefix("new_data/")
        assert_pii_changed_rest_identical(key.rsplit(".", 1)[1], before, bucket.get(output))
        assert bucket.get(key) == before
    listing = bucket.listing()

    outputs = [key for key in listing if key.startswith("obfuscated/")]
    again = _body(handler(s3_event(bucket.name, *outputs), Context()))

    assert again["done"] == []
    assert again["ignored"] == [
        {
            "bucket": bucket.name,
            "key": key,
            "reason": "under the output prefix (written by this function)",
        }
        for key in outputs
    ]
    assert bucket.listing() == listing
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["event"] for entry in logs] == ["obfuscated"] * 4 + ["ignored"] * 4
    assert all(entry["rows"] == len(people["name"]) for entry in logs[:4])
    text = json.dumps(logs)
    leaked = {v for name in PII_FIELDS for v in people[name] if len(v) >= 4 and v in text}
    assert not leaked


def test_objects_outside_the_source_prefix_and_other_events_are_ignored(
    lambda_env: None, bucket: Bucket
) -> None:
    bucket.put("elsewhere/file1.csv", b"id,name\n1,Alice Smith\n")
    event = s3_event(bucket.name, "elsewhere/file1.csv", "new_data/folder/")
    removed = s3_event(bucket.name, "new_data/file1.csv")
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"  # type: ignore[index]
    event["Records"] += removed["Records"]  # type: ignore[operator]

    body = _body(handler(event, Context()))

    reasons = [item["reason"] for item in body["ignored"]]  # type: ignore[union-attr, index]
    assert reasons == [
        "outside the source prefix",
        "a folder marker",
        "event 'ObjectRemoved:Delete' is not ObjectCreated",
    ]
    assert bucket.listing() == ["elsewhere/file1.csv"]


def test_a_failed_object_raises_for_retry_and_dead_letter_after_the_rest_are_done(
    lambda_env: None, bucket: Bucket, people: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_LAMBDA_PII_FIELDS", "name,email_address")
    bucket.put("new_data/good.csv", WRITERS["csv"](people))
    bucket.put("new_data/bad.csv", b"id,name\n1,Alice Smith\n")

    with pytest.raises(EventFailed) as caught:
        handler(s3_event(bucket.name, "new_data/bad.csv", "new_data/good.csv"), Context())

    body = json.loads(str(caught.value))
    assert body["ok"] is False
    assert [item["key"] for item in body["failed"]] == ["new_data/bad.csv"]
    assert body["failed"][0]["error"] == "SchemaError"
    assert "'email_address' not in the file" in body["failed"][0]["reason"]
    assert "Alice" not in str(caught.value)
    assert [item["output"] for item in body["done"]] == [f"s3://{bucket.name}/obfuscated/good.csv"]
    assert "obfuscated/bad.csv" not in bucket.listing()


def test_a_json_request_writes_its_output_and_answers_with_a_json_body(
    lambda_env: None, bucket: Bucket, people: dict[str, list[str]]
) -> None:
    source = bucket.put("new_data/file1.parquet", WRITERS["parquet"](people))
    output = f"s3://{bucket.name}/obfuscated/file1.parquet"
    request = {"file_to_obfuscate": source, "pii_fields": PII_FIELDS, "output": output}

    response = handler(request, Context())

    assert response["statusCode"] == 200
    assert _body(response) == {
        "ok": True,
        "source": source,
        "output": output,
        "format": "parquet",
        "rows": len(people["name"]),
        "modes": dict.fromkeys(PII_FIELDS, "mask"),
    }
    assert_pii_changed_rest_identical(
        "parquet", WRITERS["parquet"](people), bucket.get("obfuscated/file1.parquet")
    )


@pytest.mark.parametrize(
    ("change", "status", "error", "reason"),
    [
        ({"pii_fields": ["name", "phone"]}, 422, "SchemaError", "'phone' not in the file"),
        ({"file_to_obfuscate": "s3://{b}/new_data/nope.csv"}, 404, "LocationNotFound", "nope"),
        ({"file_to_obfuscate": "/proc/self/environ"}, 422, "ConfigError", "s3:// URLs only"),
        ({"output": "/tmp/out.csv"}, 422, "ConfigError", "s3:// URLs only"),
        ({"output": None}, 422, "ConfigError", 'needs "output"'),
        ({"output": "s3://{b}/new_data/again.csv"}, 422, "ConfigError", "under the source prefix"),
        ({"output": "s3:/{b}/x.csv"}, 422, "ConfigError", "not an S3 object URL"),
        ({"pii_field": ["name"]}, 422, "ConfigError", "unknown key"),
    ],
)
def test_a_bad_request_answers_the_reason_and_writes_nothing(
    lambda_env: None,
    bucket: Bucket,
    change: dict[str, object],
    status: int,
    error: str,
    reason: str,
) -> None:
    request: dict[str, object] = {
        "file_to_obfuscate": bucket.put("new_data/file1.csv", b"id,name\n1,Alice Smith\n"),
        "pii_fields": ["name"],
        "output": f"s3://{bucket.name}/obfuscated/file1.csv",
    }
    for key, value in change.items():
        if value is None:
            del request[key]
        else:
            request[key] = value.format(b=bucket.name) if isinstance(value, str) else value

    response = handler(request, Context())

    assert response["statusCode"] == status
    body = _body(response)
    assert body["ok"] is False
    assert body["error"]["error"] == error  # type: ignore[index]
    assert reason in body["error"]["reason"]  # type: ignore[index]
    assert bucket.listing() == ["new_data/file1.csv"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "HEADWATER_LAMBDA_SOURCE_PREFIX, HEADWATER_LAMBDA_OUTPUT_PREFIX"),
        ({"SOURCE_PREFIX": "data/", "OUTPUT_PREFIX": "data/safe/", "PII_FIELDS": "a"}, "overlap"),
        ({"SOURCE_PREFIX": "new/", "OUTPUT_PREFIX": "new", "PII_FIELDS": "a"}, "overlap"),
        ({"SOURCE_PREFIX": "a/", "OUTPUT_PREFIX": "b/", "PII_FIELDS": "x", "MODE": "hide"}, "hide"),
    ],
)
def test_a_bad_configuration_is_refused(env: dict[str, str], message: str) -> None:
    environ = {f"HEADWATER_LAMBDA_{name}": value for name, value in env.items()}
    with pytest.raises(ConfigError, match=message):
        LambdaConfig.from_env(environ)


def test_configuration_maps_keys_under_the_output_prefix() -> None:
    config = LambdaConfig.from_env(
        {
            "HEADWATER_LAMBDA_SOURCE_PREFIX": "/new_data/",
            "HEADWATER_LAMBDA_OUTPUT_PREFIX": "safe/",
            "HEADWATER_LAMBDA_PII_FIELDS": "name, email ,",
            "HEADWATER_LAMBDA_MODE": "Pseudonym",
        }
    )
    assert config == LambdaConfig("new_data/", "safe/", ("name", "email"), "pseudonym")
    assert config.output_key("new_data/2024/a.csv") == "safe/2024/a.csv"


def test_the_handler_module_loads_no_web_warehouse_or_training_code() -> None:
    heavy = ["torch", "fastapi", "duckdb", "psycopg", "sklearn", "pandas", "typer", "uvicorn"]
    script = (
        "import sys, json; import headwater.privacy.aws_lambda; "
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {heavy!r} "
        "or m.startswith(('headwater.storage.warehouse', 'headwater.learning', "
        "'headwater.faces', 'headwater.storage.lake'))]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == []


def test_pseudonyms_use_the_key_from_the_environment_and_its_absence_is_the_reason(
    lambda_env: None, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.settings import get_settings

    monkeypatch.setenv("HEADWATER_LAMBDA_MODE", "pseudonym")
    monkeypatch.setenv("HEADWATER_LAMBDA_PII_FIELDS", "email")
    monkeypatch.setenv("HEADWATER_LAMBDA_OUTPUT_BUCKET", bucket.name)
    monkeypatch.delenv("HEADWATER_PSEUDONYM_KEY", raising=False)
    get_settings.cache_clear()
    bucket.put("new_data/a.csv", b"id,email\n1,alice@example.com\n2,alice@example.com\n")

    with pytest.raises(EventFailed, match="HEADWATER_PSEUDONYM_KEY"):
        handler(s3_event(bucket.name, "new_data/a.csv"), Context())

    monkeypatch.setenv("HEADWATER_PSEUDONYM_KEY", "lambda-test-key")
    get_settings.cache_clear()
    try:
        handler(s3_event(bucket.name, "new_data/a.csv"), Context())
    finally:
        get_settings.cache_clear()
    rows = list(csv.DictReader(io.StringIO(bucket.get("obfuscated/a.csv").decode())))
    tokens = {row["email"] for row in rows}
    assert len(tokens) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", tokens.pop())
