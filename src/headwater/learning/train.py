"""The PyTorch training loop: lean enough to cost no more than a hand-written one.

Everything that can be done once is done once: the data become two tensors before
the first epoch, an epoch is one ``torch.randperm`` and slices of it, and the
learning-rate schedule and the metrics are settled per epoch, not per batch. The
only per-batch work beyond a bare loop is keeping the batch loss and hit count as
tensors (no ``.item()``), which ``bench/train.py`` measures against a bare loop.

Runs are reproducible: :func:`reproducible` seeds Python, numpy and torch, turns on
deterministic algorithms and fixes the thread count for the duration of a fit, then
puts every one of those global settings back.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # the name every PyTorch reader expects

from headwater.learning.params import Schedule

__all__ = [
    "EpochCallback",
    "LoopConfig",
    "Schedule",
    "default_threads",
    "evaluate_tensors",
    "predict_logits",
    "reproducible",
    "train_loop",
]

EpochCallback = Callable[[int, dict[str, float]], None]
EVAL_CHUNK = 8192


@dataclass(frozen=True)
class LoopConfig:
    """Validated loop settings, so the loop itself does no checking."""

    epochs: int
    batch_size: int
    learning_rate: float
    schedule: Schedule
    patience: int | None


def default_threads() -> int:
    """The CPUs this process may use, capped by torch's own choice.

    torch counts the host's cores, which in a container can be many more than the
    cores it is allowed; oversubscribed threads make every matmul slower.
    """
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), allowed))


@contextmanager
def reproducible(seed: int, n_threads: int | None) -> Iterator[None]:
    """Seed every RNG a fit touches and restore all global torch/numpy/random state after."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)  # third-party code may draw from the global RNG
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(n_threads or default_threads())
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
            np.random.set_state(np_state)
            random.setstate(py_state)


def train_loop(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    config: LoopConfig,
    *,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: EpochCallback | None = None,
    regression: bool = False,
) -> tuple[list[dict[str, float]], int]:
    """Train ``net`` in place; returns the per-epoch history and the epoch whose weights it keeps.

    With ``config.patience`` and validation data the loop stops once ``val_loss`` has not
    improved for that many epochs and restores the best epoch's weights. With
    ``regression`` the net has one output, the loss is the mean squared error (of the
    standardised target) and no accuracy is kept.
    """
    history: list[dict[str, float]] = []
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    n = len(X)
    n_batches = math.ceil(n / config.batch_size)
    sizes = torch.full((n_batches,), float(config.batch_size))
    sizes[-1] = n - config.batch_size * (n_batches - 1)
    best_loss, best_epoch, best_state = math.inf, 0, None

    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        factor = _lr_factor(config.schedule, epoch - 1, config.epochs)
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor
        loss, accuracy = _one_epoch(net, optimizer, X, y, config.batch_size, regression)
        metrics = {"loss": float((loss * sizes).sum()) / n}
        if not regression:
            metrics["accuracy"] = float(accuracy.sum()) / n
        if validation is not None:
            val_loss, val_accuracy = evaluate_tensors(net, *validation, regression=regression)
            metrics["val_loss"] = val_loss
            if not regression:
                metrics["val_accuracy"] = val_accuracy
        metrics["lr"] = base_lrs[0] * factor
        metrics["seconds"] = time.perf_counter() - started
        history.append({"epoch": float(epoch), **metrics})
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if validation is None or config.patience is None:
            continue
        if metrics["val_loss"] < best_loss:
            best_loss, best_epoch = metrics["val_loss"], epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return history, best_epoch if best_state is not None else len(history)


def _one_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    regression: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass in a fresh random order; batch losses and hits stay tensors until the end."""
    net.train()
    order = torch.randperm(len(X))
    losses: list[torch.Tensor] = []
    hits: list[torch.Tensor] = []
    for start in range(0, len(X), batch_size):
        index = order[start : start + batch_size]
        target = y[index]
        optimizer.zero_grad()
        logits = net(X[index])
        loss = _loss(logits, target, regression)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimizer.step()
        losses.append(loss.detach())
        if not regression:
            hits.append((logits.detach().argmax(1) == target).sum())
    if regression:
        return torch.stack(losses), torch.zeros(1)
    return torch.stack(losses), torch.stack(hits)


def _lr_factor(schedule: Schedule, epoch: int, epochs: int) -> float:
    """Cosine decay from the full rate to near zero over the run; constant keeps it flat."""
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def predict_logits(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Logits in eval mode, in chunks so a large X never needs one huge activation."""
    net.eval()
    with torch.inference_mode():
        return torch.cat([net(X[i : i + EVAL_CHUNK]) for i in range(0, len(X), EVAL_CHUNK)])


def _loss(output: torch.Tensor, target: torch.Tensor, regression: bool) -> torch.Tensor:
    """Cross-entropy of class logits, or squared error of a single (standardised) output."""
    if regression:
        return F.mse_loss(output[:, 0], target)
    return F.cross_entropy(output, target)


def evaluate_tensors(
    net: nn.Module, X: torch.Tensor, y: torch.Tensor, *, regression: bool = False
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on held-out tensors (no dropout); for a regression,
    the mean squared error and NaN."""
    logits = predict_logits(net, X)
    if regression:
        return float(_loss(logits, y, regression=True)), math.nan
    loss = float(F.cross_entropy(logits, y))
    accuracy = float((logits.argmax(1) == y).double().mean())
    return loss, accuracy
