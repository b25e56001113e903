"""Suggest which fields of a file hold personal data, from the values themselves.

It suggests; the user decides. Each detector is a column expression over a sample
(regular expressions run by Arrow, the card checksum by numpy), and a field is
suggested when at least `min_share` of its non-empty values match. Detectors are
strict on purpose (a phone needs a leading ``+`` or ``0``, a card a valid Luhn
digit and a card-network prefix), so ids, prices, counts and dates stay quiet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.data.privacy.names import FIRST_NAMES, PERSON_COLUMN, WEAK_NAME_COLUMN
from headwater.data.privacy.request import Mode
from headwater.data.privacy.sample import read_sample
from headwater.errors import ConfigError
from headwater.storage.binary import value_bytes

__all__ = ["PiiKind", "PiiSuggestion", "detect_pii", "scan_pii"]

PiiKind = Literal[
    "email",
    "phone",
    "person_name",
    "national_insurance_number",
    "uk_postcode",
    "payment_card",
    "ip_address",
]

SUGGESTED_MODE: dict[PiiKind, Mode] = {
    "email": "pseudonym",
    "phone": "mask",
    "person_name": "pseudonym",
    "national_insurance_number": "pseudonym",
    "uk_postcode": "generalise",
    "payment_card": "mask",
    "ip_address": "mask",
}

_EMAIL = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
_PHONE = r"^(\+|00)[1-9]\d{6,14}$|^0[1-9]\d{8,9}$"
_NINO = r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]$"
_NINO_NEVER = r"^(BG|GB|NK|KN|TN|NT|ZZ)"
_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"^({_OCTET}\.){{3}}{_OCTET}$"
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"^(({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
    rf"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}|({_H}:){{1,2}}(:{_H}){{1,5}}"
    rf"|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:)|::(ffff(:0{{1,4}})?:)?({_OCTET}\.){{3}}{_OCTET}"
    rf"|({_H}:){{1,4}}:({_OCTET}\.){{3}}{_OCTET})$"
)
_WORD = r"[A-Z][a-z]*(?:['\x{2019}][A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_NAME = rf"^{_WORD}(?: (?:{_WORD}|[A-Z]\.?)){{0,3}}$"
_CARD_DIGITS = 19
_MIN_KNOWN_FIRST_NAMES = 0.2


@dataclass(frozen=True)
class PiiSuggestion:
    """One field that looks personal: what it looks like, and how sure the scan is."""

    field: str
    kind: PiiKind
    share: float
    matched: int
    sampled: int
    suggested_mode: Mode

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _email(text: pa.Array) -> pa.Array:
    return pc.match_substring_regex(text, _EMAIL)


def _phone(text: pa.Array) -> pa.Array:
    plain = pc.replace_substring_regex(pc.replace_substring(text, "(0)", ""), r"[\s().\-]", "")
    return pc.match_substring_regex(plain, _PHONE)


def _national_insurance(text: pa.Array) -> pa.Array:
    upper = pc.utf8_upper(text)
    return pc.and_(
        pc.match_substring_regex(upper, _NINO),
        pc.invert(pc.match_substring_regex(upper, _NINO_NEVER)),
    )


def _postcode(text: pa.Array) -> pa.Array:
    return pc.match_substring_regex(pc.utf8_upper(text), _POSTCODE)


def _ip_address(text: pa.Array) -> pa.Array:
    return pc.or_(pc.match_substring_regex(text, _IPV4), pc.match_substring_regex(text, _IPV6))


def _payment_card(text: pa.Array) -> pa.Array:
    """13 to 19 digits, a card-network first digit (2-6) and a valid Luhn check digit."""
    digits = pc.replace_substring_regex(text, r"[ -]", "")
    shaped = pc.match_substring_regex(digits, r"^[2-6]\d{12,18}$")
    padded = pc.utf8_lpad(pc.if_else(shaped, digits, "0"), _CARD_DIGITS, "0")
    fixed = pc.cast(padded, pa.binary(_CARD_DIGITS))
    grid = value_bytes(fixed)[0].reshape(-1, _CARD_DIGITS).astype(np.int16) - ord("0")
    doubled_positions = (np.arange(_CARD_DIGITS)[::-1] % 2) == 1
    doubled = grid * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = np.where(doubled_positions, doubled, grid).sum(axis=1)
    return pc.and_(shaped, pa.array(total % 10 == 0))


def _starts_with_first_name(text: pa.Array) -> pa.Array:
    first = pc.utf8_lower(pc.list_element(pc.utf8_split_whitespace(text), 0))
    return pc.is_in(first, value_set=pa.array(sorted(FIRST_NAMES)))


_DETECTORS: dict[PiiKind, Callable[[pa.Array], pa.Array]] = {
    "email": _email,
    "phone": _phone,
    "national_insurance_number": _national_insurance,
    "uk_postcode": _postcode,
    "payment_card": _payment_card,
    "ip_address": _ip_address,
}


def _count(matches: pa.Array) -> int:
    return int(pc.sum(pc.cast(matches, pa.int64())).as_py() or 0)


def _person_name_count(field: str, text: pa.Array) -> int:
    """Values shaped like names, trusted by column name or by starting with a given name."""
    shaped = pc.match_substring_regex(text, _NAME)
    column = re.sub(r"[^a-z0-9]+", "_", field.lower()).strip("_")
    if PERSON_COLUMN.search(column):
        return _count(shaped)
    known = pc.and_(shaped, _starts_with_first_name(text))
    if WEAK_NAME_COLUMN.search(column):
        if _count(known) >= _MIN_KNOWN_FIRST_NAMES * len(text):
            return _count(shaped)
        return 0
    return _count(known)


def detect_pii(sample: pa.Table, *, min_share: float = 0.5) -> list[PiiSuggestion]:
    """Suggestions for the text columns of a sample, in column order; pure, no I/O."""
    if not 0 < min_share <= 1:
        raise ConfigError(f"min_share must be in (0, 1], got {min_share}")
    suggestions = []
    for field, column in zip(sample.column_names, sample.columns, strict=True):
        text = pc.utf8_trim_whitespace(column.combine_chunks().cast(pa.string()))
        text = text.filter(pc.fill_null(pc.not_equal(text, ""), False))
        if not len(text):
            continue
        counts = {kind: _count(detect(text)) for kind, detect in _DETECTORS.items()}
        counts["person_name"] = _person_name_count(field, text)
        kind, matched = max(counts.items(), key=lambda item: item[1])
        share = matched / len(text)
        if matched and share >= min_share:
            suggestions.append(
                PiiSuggestion(
                    field=field,
                    kind=kind,
                    share=round(share, 4),
                    matched=matched,
                    sampled=len(text),
                    suggested_mode=SUGGESTED_MODE[kind],
                )
            )
    return suggestions


def scan_pii(
    location: str, *, sample_rows: int = 10_000, min_share: float = 0.5
) -> list[PiiSuggestion]:
    """Suggest the personal fields of a local or ``s3://`` file from its first `sample_rows`.

    Example: ``scan_pii("s3://bucket/new_data/file1.csv")`` ->
    ``[PiiSuggestion(field="email_address", kind="email", share=1.0, ...)]``.
    """
    if sample_rows < 1:
        raise ConfigError(f"sample_rows must be at least 1, got {sample_rows}")
    return detect_pii(read_sample(location, rows=sample_rows), min_share=min_share)
