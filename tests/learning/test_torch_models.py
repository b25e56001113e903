"""The torch estimators: progress callbacks, history, validation, image shapes, the L2 claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headwater.errors import SchemaError
from headwater.learning import CNNClassifier, MLPClassifier
from headwater.learning.torch_models import MLPNet, adam

EPOCH_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


def test_on_epoch_reports_every_epoch(small: tuple) -> None:
    X, y, X_val, y_val = small
    seen: list[tuple[int, dict[str, float]]] = []
    model = MLPClassifier(epochs=3, batch_size=64).fit(
        X, y, validation_data=(X_val, y_val), on_epoch=lambda e, m: seen.append((e, m))
    )
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    for _, metrics in seen:
        assert set(metrics) == EPOCH_KEYS
        assert all(isinstance(v, float) for v in metrics.values())
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert [h["epoch"] for h in model.history_] == [1.0, 2.0, 3.0]
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    assert model.history_[0]["lr"] > model.history_[-1]["lr"]  # cosine decay


def test_val_accuracy_matches_predict(small: tuple) -> None:
    X, y, X_val, y_val = small
    model = MLPClassifier(epochs=2, batch_size=64).fit(X, y, validation_data=(X_val, y_val))
    assert model.history_[-1]["val_accuracy"] == pytest.approx(
        float((model.predict(X_val) == y_val).mean())
    )


def test_without_validation_history_has_train_metrics_only(small: tuple) -> None:
    model = MLPClassifier(epochs=1, schedule="constant").fit(small[0], small[1])
    assert set(model.history_[0]) == {"epoch", "loss", "accuracy", "lr", "seconds"}
    assert model.history_[0]["lr"] == pytest.approx(3e-3)


def test_patience_stops_early_and_keeps_the_best_epoch(small: tuple) -> None:
    X, y, X_val, y_val = small
    # A learning rate this high makes validation loss jump about; patience 1 must stop.
    model = MLPClassifier(epochs=40, learning_rate=0.5, schedule="constant", patience=1).fit(
        X, y, validation_data=(X_val, y_val)
    )
    assert len(model.history_) < 40
    losses = [h["val_loss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    val_loss = torch.nn.functional.cross_entropy(
        torch.log(torch.from_numpy(model.predict_proba(X_val))), torch.from_numpy(y_val)
    )
    assert float(val_loss) == pytest.approx(min(losses), rel=1e-3)


def test_validation_labels_must_be_known(small: tuple) -> None:
    X, y, X_val, y_val = small
    with pytest.raises(SchemaError, match="not among the training classes"):
        MLPClassifier(epochs=1).fit(X, y, validation_data=(X_val, y_val + 100))


@pytest.mark.parametrize("layout", ["flat", "images", "channels"])
def test_cnn_accepts_image_layouts(layout: str, small: tuple) -> None:
    X, y, X_test, _ = small
    shape = {"flat": (-1, 64), "images": (-1, 8, 8), "channels": (-1, 1, 8, 8)}[layout]
    model = CNNClassifier(epochs=1, channels=4, hidden=8).fit(X.reshape(shape), y)
    assert model.input_shape_ == (8, 8)
    flat = model.predict_proba(X_test)
    np.testing.assert_array_equal(flat, model.predict_proba(X_test.reshape(shape)))


def test_cnn_refuses_non_square_rows(small: tuple) -> None:
    with pytest.raises(SchemaError, match="not a square image"):
        CNNClassifier(epochs=1).fit(small[0][:, :60], small[1])


def test_mlp_takes_images_as_rows(small: tuple) -> None:
    X, y, X_test, _ = small
    model = MLPClassifier(epochs=1).fit(X.reshape(-1, 8, 8), y)
    assert model.predict(X_test).shape == (len(X_test),)


def test_fit_restores_global_torch_state(small: tuple) -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPClassifier(epochs=1, n_threads=1).fit(small[0], small[1])
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_different_seeds_give_different_models(small: tuple) -> None:
    X, y, X_test, _ = small
    a = MLPClassifier(epochs=1, seed=0).fit(X, y).predict_proba(X_test)
    b = MLPClassifier(epochs=1, seed=1).fit(X, y).predict_proba(X_test)
    assert not np.allclose(a, b)


def test_l2_through_weight_decay_equals_penalty_in_loss() -> None:
    """adam(l2=λ) must take the same steps as Adam on loss + λ·‖W₂‖² (the documented claim)."""
    torch.manual_seed(0)
    x, target = torch.randn(32, 12), torch.randint(0, 3, (32,))
    nets = []
    for _ in range(2):
        torch.manual_seed(1)
        nets.append(MLPNet(12, 6, 5, 0.0, 3))
    decayed, penalised = nets
    opt_a = adam(decayed, 0.01, l2=0.05, l2_params=(decayed.hidden2.weight,))
    opt_b = torch.optim.Adam(penalised.parameters(), lr=0.01)
    for _ in range(5):
        for net, opt, extra in ((decayed, opt_a, 0.0), (penalised, opt_b, 1.0)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), target)
            loss = loss + extra * 0.05 * net.hidden2.weight.pow(2).sum()
            loss.backward()
            opt.step()
    for a, b in zip(decayed.parameters(), penalised.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
