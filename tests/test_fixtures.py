"""The shared fixtures skip locally but fail in CI when what they need is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_mnist_or_skip


def test_missing_shared_mnist_fails_in_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="real MNIST not found"):
        shared_mnist_or_skip(tmp_path / "absent", ci=True)


def test_missing_shared_mnist_skips_locally(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="real MNIST not found"):
        shared_mnist_or_skip(tmp_path / "absent", ci=False)


def test_present_shared_mnist_is_returned(tmp_path: Path) -> None:
    (tmp_path / "mnist.pkl.gz").write_bytes(b"")
    assert shared_mnist_or_skip(tmp_path, ci=True) == tmp_path
