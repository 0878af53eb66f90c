"""The fast SVM protocol gives the answers of scikit-learn's plain grid search."""

from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.basicmotions import read_ts
from comodo.pipeline.evaluation.fast_svm import (
    best_of_grid,
    fit_fast_svm,
    plain_svm_fit,
    scale_gamma,
    score_fit,
    topk_accuracy,
)
from comodo.pipeline.evaluation.svm import svm_protocol
from comodo.stores.errors import ConfigError

BASIC = Path(__file__).resolve().parents[4] / "shared" / "data" / "BasicMotions"


def _basicmotions() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out = []
    for part in ("TRAIN", "TEST"):
        cases = [c for c in read_ts(BASIC / f"BasicMotions_{part}.ts", 6) if c.values is not None]
        out.append(np.stack([c.values.T.ravel() for c in cases]).astype(np.float32))
        out.append(np.array([c.label for c in cases]))
    classes = np.unique(out[1])
    return out[0], np.searchsorted(classes, out[1]), out[2], np.searchsorted(classes, out[3])


def _mixture(n: int, d: int, k: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (k, d))
    y = rng.integers(0, k, n)
    return (centers[y] * spread + rng.normal(0, 1, (n, d))).astype(np.float32), y


def _assert_same(fast, plain, test_x, test_y):
    assert fast.best_c == plain.best_c
    assert fast.cv_scores == pytest.approx(plain.cv_scores, abs=1e-12)
    a, b = score_fit(fast, test_x, test_y), score_fit(plain, test_x, test_y)
    for k in (1, 3, 5):
        assert abs(a[f"acc@{k}"] - b[f"acc@{k}"]) <= 0.002
    assert np.mean(a["pred"] == b["pred"]) >= 0.99


@pytest.mark.skipif(not BASIC.is_dir(), reason="shared BasicMotions data not present")
def test_fast_protocol_matches_plain_grid_search_on_basicmotions():
    train_x, train_y, test_x, test_y = _basicmotions()
    assert train_x.shape == (40, 600) and len(np.unique(train_y)) == 4
    _assert_same(fit_fast_svm(train_x, train_y), plain_svm_fit(train_x, train_y), test_x, test_y)


def test_fast_protocol_matches_plain_grid_search_on_overlapping_classes():
    x, y = _mixture(500, 32, 6, 0.25, seed=3)  # hard enough that C matters
    fast, plain = fit_fast_svm(x[:350], y[:350]), plain_svm_fit(x[:350], y[:350])
    assert 0.3 < fast.cv_acc < 0.95
    _assert_same(fast, plain, x[350:], y[350:])


def test_fast_protocol_agrees_with_the_svm_module():
    x, y = _mixture(300, 16, 5, 0.4, seed=1)
    fast = score_fit(fit_fast_svm(x[:200], y[:200], seed=0), x[200:], y[200:])
    ref = svm_protocol(x[:200], y[:200], x[200:], y[200:], seed=0)
    assert fast["best_C"] == ref["best_C"]
    for k in (1, 3, 5):
        assert fast[f"acc@{k}"] == pytest.approx(ref[f"acc@{k}"], abs=0.002)


def test_scale_gamma_is_sklearns_and_one_for_constant_input():
    x = np.random.default_rng(0).normal(0, 2.0, (50, 8))
    assert scale_gamma(x) == pytest.approx(1 / (8 * x.var()))
    assert scale_gamma(np.ones((5, 3))) == 1.0


def test_grid_ties_go_to_the_first_c_like_grid_search():
    scores = np.array([[0.5, 0.5], [0.9, 0.8], [0.8, 0.9], [0.1, 0.1]])
    assert best_of_grid(scores, (1.0, 2.0, 3.0, 4.0)) == 2.0


def test_topk_accuracy_counts_the_true_class_among_the_k_best_ranked():
    ranked = np.array([[0, 1, 2], [2, 1, 0]])
    acc = topk_accuracy(ranked, np.array([1, 1]), ks=(1, 2, 3))
    assert acc == {"acc@1": 0.0, "acc@2": 1.0, "acc@3": 1.0}


def test_single_window_classes_are_refused_with_the_counts():
    with pytest.raises(ConfigError, match="class counts"):
        fit_fast_svm(np.zeros((3, 2)), np.array([0, 1, 1]))
