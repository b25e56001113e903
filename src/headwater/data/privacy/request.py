"""The obfuscation request: which file, which fields, and what to do to each.

A request arrives as JSON (from a queue message, a Lambda event, the CLI) and is
validated here once, so the rest of the package can trust it: every field named
once, every mode one of the four we know, no stray keys that a typo left behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from headwater.data.privacy.s3 import parse_s3_url
from headwater.errors import ConfigError

__all__ = ["MODES", "Mode", "ObfuscationRequest", "build_request", "parse_request"]

Mode = Literal["mask", "pseudonym", "drop", "generalise"]
MODES: tuple[Mode, ...] = get_args(Mode)

_ALIASES: dict[str, Mode] = {"generalize": "generalise", "pseudonymise": "pseudonym"}
_KNOWN_KEYS = ("file_to_obfuscate", "pii_fields", "mode", "modes", "output")


@dataclass(frozen=True)
class ObfuscationRequest:
    """A validated request; `modes` holds a mode for every field in `pii_fields`.

    `output` is where the obfuscated copy goes when the caller names one (a Lambda
    invocation, the CLI's ``--request``); `None` when the bytes are handed back.
    """

    source: str
    pii_fields: tuple[str, ...]
    modes: Mapping[str, Mode] = field(default_factory=dict)
    output: str | None = None

    def plan(self) -> dict[str, Mode]:
        """The mode of every PII field; a field without one is masked, never let through."""
        return {name: self.modes.get(name, "mask") for name in self.pii_fields}

    def to_json(self) -> str:
        """The request as JSON, the same shape `parse_request` reads."""
        decoded: dict[str, object] = {
            "file_to_obfuscate": self.source,
            "pii_fields": list(self.pii_fields),
            "modes": dict(self.modes),
        }
        if self.output is not None:
            decoded["output"] = self.output
        return json.dumps(decoded)


def parse_request(request: str | Mapping[str, object]) -> ObfuscationRequest:
    """Validate a JSON request (text or already-decoded object) into an `ObfuscationRequest`.

    Unknown keys are refused rather than ignored: a misspelt ``"pii_field"`` would
    otherwise hand out a file with every person still in it.
    """
    if isinstance(request, str):
        try:
            decoded: object = json.loads(request)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"the obfuscation request is not valid JSON ({exc.msg} at character {exc.pos}); "
                'expected e.g. {"file_to_obfuscate": "s3://bucket/file.csv", '
                '"pii_fields": ["name"]}'
            ) from exc
    else:
        decoded = request
    if not isinstance(decoded, Mapping):
        raise ConfigError(
            "the obfuscation request must be a JSON object with keys "
            f"{', '.join(_KNOWN_KEYS)}; got {type(decoded).__name__}"
        )
    unknown = sorted(str(key) for key in decoded if key not in _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"the obfuscation request has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(_KNOWN_KEYS)}"
        )
    source = decoded.get("file_to_obfuscate")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(
            "the obfuscation request needs 'file_to_obfuscate': an s3://bucket/key URL "
            "or a local path"
        )
    fields = decoded.get("pii_fields")
    if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
        raise ConfigError(
            f'{source}: \'pii_fields\' must be a list of field names, e.g. ["name", "email"]'
        )
    default = decoded.get("mode", "mask")
    per_field = decoded.get("modes", {})
    if not isinstance(per_field, Mapping):
        raise ConfigError(f"{source}: 'modes' must be an object of field name to mode")
    output = decoded.get("output")
    if output is not None and (not isinstance(output, str) or not output.strip()):
        raise ConfigError(
            f"{source}: 'output' must be an s3://bucket/key URL or a local path, e.g. "
            '"s3://bucket/safe/file1.csv"'
        )
    return build_request(
        source.strip(),
        fields,
        mode=_checked_mode(default, source, "mode"),
        modes={str(name): _checked_mode(value, source, name) for name, value in per_field.items()},
        output=output.strip() if output is not None else None,
    )


def build_request(
    source: str,
    pii_fields: Sequence[str],
    *,
    mode: Mode = "mask",
    modes: Mapping[str, Mode] | None = None,
    output: str | None = None,
) -> ObfuscationRequest:
    """Build a request from parts (the CLI's options), with the same checks as `parse_request`.

    An ``s3:`` location is checked as an S3 URL here, so a malformed one is a usage
    error before any request is sent, not a "file not found" later.
    """
    for location in (source, output):
        if location is not None and location[:3].lower() == "s3:":
            parse_s3_url(location)
    names = tuple(dict.fromkeys(name.strip() for name in pii_fields if name.strip()))
    if not names:
        raise ConfigError(
            f"{source}: no PII fields named; pass at least one, e.g. --pii-fields name,email"
        )
    overrides = dict(modes or {})
    strays = sorted(set(overrides) - set(names))
    if strays:
        raise ConfigError(
            f"{source}: 'modes' names field(s) {', '.join(map(repr, strays))} that are not in "
            f"pii_fields ({', '.join(names)}); add them to pii_fields or remove them"
        )
    resolved = {name: _checked_mode(overrides.get(name, mode), source, name) for name in names}
    return ObfuscationRequest(source=source, pii_fields=names, modes=resolved, output=output)


def _checked_mode(value: object, source: str, where: str) -> Mode:
    if isinstance(value, str):
        text = _ALIASES.get(value.strip().lower(), value.strip().lower())
        for mode in MODES:
            if text == mode:
                return mode
    raise ConfigError(
        f"{source}: mode {value!r} for {where!r} is not known; use one of {', '.join(MODES)}"
    )
