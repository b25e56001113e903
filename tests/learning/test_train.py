"""The training loop's helpers: seeding and restoring global state, the schedule."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from headwater.learning.train import _lr_factor, default_threads, reproducible


def test_reproducible_seeds_everything_and_restores_it() -> None:
    random.seed(5)
    np.random.seed(5)
    before = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    with reproducible(11, 1):
        inside = (random.random(), np.random.rand(), float(torch.rand(())))
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    with reproducible(11, 1):
        again = (random.random(), np.random.rand(), float(torch.rand(())))
    assert inside == again
    assert (random.random(), np.random.rand()) == before


def test_cosine_schedule_decays_from_full_rate() -> None:
    factors = [_lr_factor("cosine", e, 4) for e in range(4)]
    assert factors[0] == 1.0
    assert factors == sorted(factors, reverse=True)
    assert factors[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 3 / 4)))
    assert _lr_factor("constant", 3, 4) == 1.0


def test_default_threads_is_at_least_one() -> None:
    assert 1 <= default_threads() <= max(1, torch.get_num_threads())
