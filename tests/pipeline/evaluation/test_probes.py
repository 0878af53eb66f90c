"""Linear and k-NN probes, macro-F1, per-class accuracy, confusion, mean +- std."""

import numpy as np
import pytest

from comodo.pipeline.evaluation import probes
from comodo.stores.errors import ConfigError


def _blobs(n: int, seed: int, spread: float = 3.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 1, (n, 8))
    x[np.arange(n), y] += spread  # each class along its own axis
    return x, y


def test_linear_and_knn_probes_separate_separable_classes():
    x, y = _blobs(120, 0)
    for result in (probes.linear_probe(x[:90], y[:90], x[90:], y[90:]),
                   probes.knn_probe(x[:90], y[:90], x[90:], y[90:], k=5)):
        assert result.accuracy > 0.85
        assert result.pred.shape == (30,)


def test_probes_are_at_chance_on_shuffled_labels():
    x, y = _blobs(300, 1)
    y_shuffled = np.random.default_rng(0).permutation(y)
    result = probes.linear_probe(x[:200], y_shuffled[:200], x[200:], y_shuffled[200:])
    assert result.accuracy < 0.5


def test_knn_k_is_capped_at_the_number_of_train_windows():
    x, y = _blobs(12, 2)
    assert probes.knn_probe(x[:6], y[:6], x[6:], y[6:], k=50).name == "knn6"


def test_macro_f1_weights_classes_equally():
    y_true = np.array([0] * 8 + [1] * 2)
    y_pred = np.zeros(10, dtype=int)  # always the majority class
    assert probes.accuracy(y_true, y_pred) == 0.8
    assert probes.macro_f1(y_true, y_pred) == pytest.approx((2 * 0.8 / 1.8) / 2)


def test_per_class_accuracy_and_confusion_count_rows_as_true_classes():
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 0])
    per_class = probes.per_class_accuracy(y_true, y_pred, 3)
    assert per_class[:2].tolist() == [0.5, pytest.approx(2 / 3)] and np.isnan(per_class[2])
    assert probes.confusion(y_true, y_pred, 3).tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]


def test_over_seeds_gives_mean_and_std_of_every_number():
    out = probes.over_seeds(lambda s: {"acc": float(s), "name": "x"}, [1, 2, 3])
    assert out["acc"] == 2.0 and out["std:acc"] == pytest.approx(np.std([1, 2, 3]))
    assert "name" not in out and out["n_seeds"] == 3
    assert np.isnan(probes.mean_std([None, float("nan")])[0])


def test_a_single_class_train_split_is_refused():
    with pytest.raises(ConfigError, match="at least 2 classes"):
        probes.linear_probe(np.zeros((4, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros(2))
