"""The one progress bar: drawn on a terminal, silent otherwise, worded by its caller."""

from __future__ import annotations

import sys

import pytest

from headwater.faces.cli.progress import category_bars, epoch_bar


def test_no_bar_when_nobody_watches(capsys: pytest.CaptureFixture[str]) -> None:
    with epoch_bar(True, "training", lambda e, m: f"epoch {e}") as update:
        assert update is None  # stderr is captured, not a terminal
    with epoch_bar(False, "training", lambda e, m: f"epoch {e}") as update:
        assert update is None
    assert capsys.readouterr().err == ""


def test_a_terminal_sees_each_epoch_worded_by_the_caller(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "0")
    monkeypatch.setenv("TERM", "xterm")
    seen: list[int] = []

    def describe(epoch: int, metrics: dict[str, float]) -> str:
        seen.append(epoch)
        return f"epoch {epoch}: loss {metrics['loss']:.2f}"

    with epoch_bar(True, "training", describe) as update:
        assert update is not None
        for epoch in (1, 2, 3):
            update(epoch, 3, {"loss": 1.0 / epoch})
    assert seen == [1, 2, 3]
    err = capsys.readouterr().err
    assert "epoch 3: loss 0.33" in err and "3/3" in err


def test_an_image_folder_shows_one_bar_per_category(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "0")
    monkeypatch.setenv("TERM", "xterm")
    with category_bars(True) as update:
        assert update is not None
        update("animals", 256, 300)
        update("plants", 10, 10)
        update("animals", 300, 300)
    err = capsys.readouterr().err
    assert "animals" in err and "300/300" in err and "plants" in err and "10/10" in err
    with category_bars(False) as update:
        assert update is None
