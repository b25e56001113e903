"""deploy/aws/ read offline with python-hcl2: least privilege, and the parts the issue asks for.

`iam_violations` fails the build on any IAM statement that allows a ``*`` action (``*`` or
``service:*``), a ``*`` resource, or NotAction/NotResource, in every policy document the
Terraform defines. The one exception is a KMS key policy's ``Resource "*"``, which in a
key policy means that key alone. The tests run it on the real files and on copies
widened the way a hurried edit would widen them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "deploy" / "aws"
_WILDCARD_ARN = re.compile(r"^arn:[^:]*:[^:]*:[^:]*:[^:]*:\*$|^arn:[^:]*:s3:::\*$")
_DOCUMENT_REF = re.compile(r"data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json")


def _text(value: object) -> str:
    """python-hcl2 keeps a string literal's quotes; drop them."""
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _values(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    flat: list[str] = []
    for item in items:
        flat.extend(_values(item) if isinstance(item, list) else [_text(item)])
    return flat


def _blocks(parsed: dict[str, Any], section: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for block in parsed.get(section, []):
        for kind, named in block.items():
            for name, body in named.items():
                yield _text(kind), _text(name), body


def load(directory: Path) -> list[dict[str, Any]]:
    parsed = []
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed.append(hcl2.load(handle))
    return parsed


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from document.get("statement", [])
    for dynamic in document.get("dynamic", []):
        for kind, body in dynamic.items():
            if _text(kind) == "statement":
                yield from body.get("content", [])


def iam_violations(directory: Path) -> list[str]:
    """Every IAM statement that grants a wildcard action or resource, as readable lines."""
    documents: dict[str, dict[str, Any]] = {}
    key_policies: set[str] = set()
    problems: list[str] = []
    for parsed in load(directory):
        for kind, name, body in _blocks(parsed, "data"):
            if kind == "aws_iam_policy_document":
                documents[name] = body
        for kind, name, body in _blocks(parsed, "resource"):
            for attribute in ("policy", "assume_role_policy"):
                if attribute not in body:
                    continue
                found = _DOCUMENT_REF.findall(str(body[attribute]))
                if not found:
                    problems.append(f"{kind}.{name}.{attribute}: not an aws_iam_policy_document")
                if kind == "aws_kms_key":
                    key_policies.update(found)
    for name, document in documents.items():
        for index, statement in enumerate(_statements(document)):
            where = f"{name}[{index}]"
            if _values(statement.get("effect", "Allow")) != ["Allow"]:
                continue
            for negated in ("not_actions", "not_resources"):
                if negated in statement:
                    problems.append(f"{where}: {negated} allows everything not listed")
            for action in _values(statement.get("actions", [])):
                if action == "*" or action.endswith(":*"):
                    problems.append(f"{where}: action {action!r}")
            for resource in _values(statement.get("resources", [])):
                if name in key_policies and resource == "*":
                    continue  # a key policy's "*" is the key itself
                if resource == "*" or _WILDCARD_ARN.match(resource):
                    problems.append(f"{where}: resource {resource!r}")
    return problems


def _widened(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "aws"
    shutil.copytree(TERRAFORM, copy)
    main = copy / "main.tf"
    text = main.read_text()
    assert old in text
    main.write_text(text.replace(old, new, 1))
    return copy


def test_no_iam_statement_grants_a_wildcard() -> None:
    assert iam_violations(TERRAFORM) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('actions   = ["s3:GetObject"]', 'actions   = ["s3:*"]', "action 's3:*'"),
        ('actions   = ["s3:GetObject"]', 'actions   = ["*"]', "action '*'"),
        (
            "resources = [aws_sqs_queue.dead_letter.arn]",
            'resources = ["*"]',
            "resource '*'",
        ),
        (
            'resources = ["${local.arn}:s3:::${var.source_bucket}/${var.source_prefix}*"]',
            'resources = ["arn:aws:s3:::*"]',
            "resource 'arn:aws:s3:::*'",
        ),
        ('"kms:CancelKeyDeletion", ', '"kms:*", ', "action 'kms:*'"),
        ('actions   = ["sqs:SendMessage"]', 'not_actions = ["sqs:DeleteQueue"]', "not_actions"),
        (
            "policy = data.aws_iam_policy_document.function.json",
            'policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "s3:*" }] })',
            "not an aws_iam_policy_document",
        ),
    ],
)
def test_a_widened_policy_is_caught(tmp_path: Path, old: str, new: str, problem: str) -> None:
    found = iam_violations(_widened(tmp_path, old, new))
    assert any(problem in line for line in found), found


def test_the_role_reads_the_source_prefix_and_writes_the_output_prefix_only() -> None:
    grants: dict[str, list[str]] = {}
    for parsed in load(TERRAFORM):
        for kind, name, body in _blocks(parsed, "data"):
            if kind == "aws_iam_policy_document" and name == "function":
                for statement in _statements(body):
                    for action in _values(statement["actions"]):
                        grants.setdefault(action, []).extend(_values(statement["resources"]))
    s3 = {action: resources for action, resources in grants.items() if action.startswith("s3:")}
    assert s3 == {
        "s3:GetObject": ["${local.arn}:s3:::${var.source_bucket}/${var.source_prefix}*"],
        "s3:PutObject": ["${local.arn}:s3:::${local.output_bucket}/${var.output_prefix}*"],
        "s3:AbortMultipartUpload": [
            "${local.arn}:s3:::${local.output_bucket}/${var.output_prefix}*"
        ],
    }


def test_the_function_has_its_trigger_dead_letters_and_encryption() -> None:
    resources = {
        (kind, name): body
        for parsed in load(TERRAFORM)
        for kind, name, body in _blocks(parsed, "resource")
    }
    function = resources[("aws_lambda_function", "obfuscator")]
    assert _text(function["handler"]) == "headwater.privacy.aws_lambda.handler"
    assert "aws_sqs_queue.dead_letter.arn" in str(function["dead_letter_config"])
    assert "aws_kms_key.obfuscator.arn" in str(function["kms_key_arn"])
    assert "aws_kms_key.obfuscator.arn" in str(
        resources[("aws_sqs_queue", "dead_letter")]["kms_master_key_id"]
    )
    assert "aws_kms_key" in str(resources[("aws_cloudwatch_log_group", "obfuscator")]["kms_key_id"])
    assert resources[("aws_kms_key", "obfuscator")]["enable_key_rotation"] is True
    notification = resources[("aws_s3_bucket_notification", "source")]["lambda_function"][0]
    assert _values(notification["events"]) == ["s3:ObjectCreated:*"]
    assert "var.source_prefix" in str(notification["filter_prefix"])
    variables = {
        name
        for parsed in load(TERRAFORM)
        for block in parsed.get("variable", [])
        for name in map(_text, block)
    }
    assert {
        "source_bucket",
        "source_prefix",
        "output_bucket",
        "output_prefix",
        "pii_fields",
    } <= variables


def test_every_checkov_skip_carries_its_reason() -> None:
    skips = re.findall(
        r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?",
        "".join(p.read_text() for p in TERRAFORM.glob("*.tf")),
    )
    assert skips
    assert all(len(reason.strip()) > 20 for _, reason in skips), skips
