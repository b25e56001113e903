"""The privacy flows: options merged into a request, all-or-nothing destinations and streams."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from headwater.errors import ConfigError, SchemaError
from headwater.flows import privacy
from headwater.settings import Settings


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(
        "id,name,email,dob\n1,Alice Smith,alice@example.com,1984-03-15\n2,Bob Jones,bob@x.org,\n"
    )
    return path


def test_options_override_a_json_request(source: Path) -> None:
    request = privacy.request_from_options(
        None,
        ["name", "dob"],
        modes={"dob": "generalise"},
        request_json=json.dumps({"file_to_obfuscate": str(source), "pii_fields": ["email"]}),
    )
    assert request.source == str(source)
    assert dict(request.modes) == {"name": "mask", "dob": "generalise"}


def test_a_source_is_required() -> None:
    with pytest.raises(ConfigError, match="name the file"):
        privacy.request_from_options(None, ["name"])


def test_obfuscate_to_destination_writes_the_obfuscated_copy(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "safe.csv"
    request = privacy.request_from_options(str(source), ["name", "email"], mode="pseudonym")
    report = privacy.obfuscate_to_destination(
        request, str(out), settings=Settings(pseudonym_key="k")
    )
    assert report.rows == 2
    lines = out.read_text().splitlines()
    assert lines[0] == "id,name,email,dob"
    assert "Alice" not in out.read_text()
    assert lines[1].endswith(",1984-03-15")
    assert out.read_bytes() == privacy.obfuscate(request, settings=Settings(pseudonym_key="k"))


def test_destination_must_not_be_the_source_or_another_format(source: Path, tmp_path: Path) -> None:
    request = privacy.request_from_options(str(source), ["name"])
    with pytest.raises(ConfigError, match="never overwritten"):
        privacy.obfuscate_to_destination(request, str(source))
    with pytest.raises(ConfigError, match=r"\.csv"):
        privacy.obfuscate_to_destination(request, str(tmp_path / "out.parquet"))
    with pytest.raises(ConfigError, match=r"keeps the source's format \(csv\)"):
        privacy.obfuscate_to_destination(request, str(tmp_path / "out.csv.gz"))
    assert source.read_text().startswith("id,name")


def test_a_gzipped_source_needs_a_gzipped_destination(source: Path, tmp_path: Path) -> None:
    zipped = tmp_path / "people.csv.gz"
    zipped.write_bytes(gzip.compress(source.read_bytes()))
    request = privacy.request_from_options(str(zipped), ["name"])
    with pytest.raises(ConfigError, match=r"a \.csv\.gz name"):
        privacy.obfuscate_to_destination(request, str(tmp_path / "out.csv"))
    privacy.obfuscate_to_destination(request, str(tmp_path / "out.csv.gz"))
    out = gzip.decompress((tmp_path / "out.csv.gz").read_bytes()).decode()
    assert out.startswith("id,name") and "Alice" not in out


def test_failures_write_nothing_to_a_destination_or_a_stream(source: Path, tmp_path: Path) -> None:
    request = privacy.request_from_options(str(source), ["name", "phone"])
    with pytest.raises(SchemaError, match="'phone'"):
        privacy.obfuscate_to_destination(request, str(tmp_path / "out.csv"))
    sink = io.BytesIO()
    with pytest.raises(SchemaError, match="'phone'"):
        privacy.obfuscate_to_stream(request, sink)
    assert sink.getvalue() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]


def test_scan_flow(source: Path) -> None:
    kinds = {s.field: s.kind for s in privacy.scan_pii(str(source))}
    assert kinds == {"name": "person_name", "email": "email"}
