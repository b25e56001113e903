"""Hand data to analysts or a test environment without the people in it.

``obfuscate`` takes a JSON request naming a file (local or ``s3://``) and its PII
fields and returns the bytes of the same file with those fields masked,
pseudonymised, generalised or dropped; ``obfuscate_to`` streams the same work
into a sink for files larger than memory; ``scan_pii`` suggests which fields
look personal. Supported formats: CSV (any of , ; tab |), JSON (array or lines), JSON Lines,
Parquet; the text formats gzipped or not.
"""

from __future__ import annotations

from headwater.data.privacy.formats import Format, format_of, gzipped
from headwater.data.privacy.obfuscate import (
    ObfuscationReport,
    RowsDone,
    obfuscate,
    obfuscate_to,
)
from headwater.data.privacy.request import (
    MODES,
    Mode,
    ObfuscationRequest,
    build_request,
    parse_request,
)
from headwater.data.privacy.scan import PiiKind, PiiSuggestion, detect_pii, scan_pii
from headwater.data.privacy.sources import open_destination, same_location, write_to

__all__ = [
    "MODES",
    "Format",
    "Mode",
    "ObfuscationReport",
    "ObfuscationRequest",
    "PiiKind",
    "PiiSuggestion",
    "RowsDone",
    "build_request",
    "detect_pii",
    "format_of",
    "gzipped",
    "obfuscate",
    "obfuscate_to",
    "open_destination",
    "parse_request",
    "same_location",
    "scan_pii",
    "write_to",
]
