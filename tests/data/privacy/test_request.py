"""The JSON request: what is accepted, and how a bad one is refused."""

from __future__ import annotations

import json

import pytest

from headwater.data.privacy import MODES, ObfuscationRequest, build_request, parse_request
from headwater.errors import ConfigError


def test_the_documented_request_masks_by_default() -> None:
    request = parse_request(
        '{"file_to_obfuscate": "s3://bucket/new_data/file1.csv", '
        '"pii_fields": ["name", "email_address"]}'
    )
    assert request == ObfuscationRequest(
        source="s3://bucket/new_data/file1.csv",
        pii_fields=("name", "email_address"),
        modes={"name": "mask", "email_address": "mask"},
    )


def test_default_mode_and_per_field_modes() -> None:
    request = parse_request(
        {
            "file_to_obfuscate": "people.parquet",
            "pii_fields": ["name", "dob", "email", "name"],
            "mode": "pseudonym",
            "modes": {"dob": "generalize", "email": "drop"},
        }
    )
    assert request.pii_fields == ("name", "dob", "email")
    assert dict(request.modes) == {"name": "pseudonym", "dob": "generalise", "email": "drop"}
    assert parse_request(request.to_json()) == request


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"file_to_obfuscate": "a.csv", "pii_field": ["x"]}', "unknown key"),
        ('{"pii_fields": ["x"]}', "file_to_obfuscate"),
        ('{"file_to_obfuscate": "a.csv", "pii_fields": "name"}', "must be a list"),
        ('{"file_to_obfuscate": "a.csv", "pii_fields": []}', "no PII fields"),
        ('{"file_to_obfuscate": "a.csv", "pii_fields": ["x"], "mode": "hide"}', "mask, pseudonym"),
        ('{"file_to_obfuscate": "a.csv", "pii_fields": ["x"], "modes": {"y": "drop"}}', "'y'"),
    ],
)
def test_bad_requests_say_what_to_fix(request_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_request(request_text)


def test_build_request_checks_like_parse() -> None:
    assert build_request("a.csv", [" name ", ""], mode="drop").modes == {"name": "drop"}
    with pytest.raises(ConfigError, match="pseudonym"):
        build_request("a.csv", ["x"], modes={"x": "scramble"})  # type: ignore[dict-item]
    assert set(MODES) == {"mask", "pseudonym", "drop", "generalise"}
    assert json.loads(build_request("a.csv", ["x"]).to_json())["pii_fields"] == ["x"]


def test_a_field_without_a_mode_is_masked_not_let_through() -> None:
    request = ObfuscationRequest(source="a.csv", pii_fields=("name", "dob"), modes={"dob": "drop"})
    assert request.plan() == {"name": "mask", "dob": "drop"}


def test_an_output_is_kept_and_round_trips() -> None:
    request = parse_request(
        {
            "file_to_obfuscate": "s3://bkt/new/f.csv",
            "pii_fields": ["n"],
            "output": "s3://bkt/safe/f.csv",
        }
    )
    assert request.output == "s3://bkt/safe/f.csv"
    assert parse_request(request.to_json()) == request
    with pytest.raises(ConfigError, match="'output' must be"):
        parse_request({"file_to_obfuscate": "a.csv", "pii_fields": ["n"], "output": 3})
    with pytest.raises(ConfigError, match="not an S3 object URL"):
        parse_request({"file_to_obfuscate": "a.csv", "pii_fields": ["n"], "output": "s3://b"})
