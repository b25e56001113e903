"""Scalar checks (through sklearn's check_scalar) keep the project's messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headwater.errors import ConfigError
from headwater.learning.base import check_float, check_int, check_optional_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_int_accepts(value: object) -> None:
    assert check_int("MLPClassifier", "density", value, minimum=1) == int(value)


@pytest.mark.parametrize("value", [0, -3, 2.5, "35", True, None])
def test_check_int_refuses_with_the_project_message(value: object) -> None:
    with pytest.raises(ConfigError) as refused:
        check_int("MLPClassifier", "density", value, minimum=1)
    assert str(refused.value) == f"MLPClassifier.density must be an integer >= 1, got {value!r}"


def test_check_optional_int() -> None:
    assert check_optional_int("X", "n_jobs", None, minimum=1) is None
    with pytest.raises(ConfigError, match=r"X\.n_jobs must be an integer >= 1, got 0"):
        check_optional_int("X", "n_jobs", 0, minimum=1)


@pytest.mark.parametrize(
    ("value", "options", "ok"),
    [
        (0.5, {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, True),
        (0.0, {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, False),
        (1.0, {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, False),
        (0.0, {"low": 0.0, "high": 1.0}, True),
        (1.0, {"low": 0.0, "high": 1.0}, True),
        (1e9, {"low": 0.0}, True),
        (1e-9, {"low": 0.0, "low_open": True}, True),
        (2, {"low": 0.0, "high": 1.0, "high_open": True}, False),
        (math.nan, {"low": 0.0}, False),
        (math.inf, {"low": 0.0}, False),
        (True, {"low": 0.0}, False),
        ("0.5", {"low": 0.0}, False),
    ],
)
def test_check_float(value: object, options: dict[str, object], ok: bool) -> None:
    if ok:
        assert check_float("Model", "rate", value, **options) == float(value)
        return
    with pytest.raises(ConfigError, match=r"^Model\.rate must be in [\[(]") as refused:
        check_float("Model", "rate", value, **options)
    assert str(refused.value).endswith(f"got {value!r}")


def test_check_float_spells_out_the_interval() -> None:
    with pytest.raises(ConfigError, match=r"must be in \(0, 1\), got 1\.0"):
        check_float("A", "quantile", 1.0, low=0.0, high=1.0, low_open=True, high_open=True)
    with pytest.raises(ConfigError, match=r"must be in \[0, inf\), got -1"):
        check_float("A", "l2", -1, low=0.0)
