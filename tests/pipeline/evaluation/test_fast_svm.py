"""The fast SVM protocols give exactly the answers of the plain scikit-learn ones."""

from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.basicmotions import read_ts
from comodo.pipeline.evaluation.fast_svm import (
    FAST_SVM_PROTOCOLS,
    best_of_grid,
    fast_svm_protocol,
    kernel_refit,
    scale_gamma,
)
from comodo.pipeline.evaluation.svm import (
    SVM_PROTOCOLS,
    ReferenceModel,
    l2_rows,
    platt_allowed,
    reference_design,
    reference_svc,
    svm_protocol,
    topk_accuracy,
)
from comodo.stores.errors import ConfigError

BASIC = Path(__file__).resolve().parents[4] / "shared" / "data" / "BasicMotions"
PROTOCOLS = ["reference", "comodo"]


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


def _assert_same(protocol, train_x, train_y, test_x, test_y, seed=0):
    slow = svm_protocol(train_x, train_y, test_x, test_y, seed, protocol=protocol)
    for refit in ("kernel", "sklearn"):
        fast = fast_svm_protocol(train_x, train_y, test_x, test_y, seed, protocol=protocol,
                                 refit=refit)
        for key in ("best_C", "cv_acc", "acc@1", "acc@3", "acc@5", "n_train", "n_folds",
                    "grid_branch", "protocol"):
            assert fast[key] == pytest.approx(slow[key], abs=1e-12), (refit, key)
        assert np.array_equal(fast["pred"], slow["pred"])
    return fast


def test_every_protocol_has_a_fast_path():
    assert list(FAST_SVM_PROTOCOLS) == list(SVM_PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fast_protocol_equals_plain_grid_search_on_overlapping_classes(protocol):
    x, y = _mixture(500, 32, 6, 0.25, seed=3)  # hard enough that C matters
    out = _assert_same(protocol, x[:350], y[:350], x[350:], y[350:], seed=1)
    assert out["grid_branch"] and 0.3 < out["cv_acc"] < 0.95


def test_fast_reference_equals_plain_on_the_small_data_branch():
    x, y = _mixture(90, 16, 10, 0.6, seed=4)
    out = _assert_same("reference", x[:45], y[:45], x[45:], y[45:], seed=2)  # 45 < 50 rows
    assert not out["grid_branch"] and out["best_C"] == 1e5


@pytest.mark.skipif(not BASIC.is_dir(), reason="shared BasicMotions data not present")
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fast_protocol_equals_plain_on_basicmotions(protocol):
    train_x, train_y, test_x, test_y = _basicmotions()
    assert train_x.shape == (40, 600) and len(np.unique(train_y)) == 4
    _assert_same(protocol, train_x, train_y, test_x, test_y)


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


@pytest.mark.parametrize("c", [1e-4, 1.0, 1e5])
def test_kernel_refit_gives_the_rbf_models_probabilities_to_float_rounding(c):
    x, y = _mixture(300, 24, 5, 0.3, seed=6)
    design = reference_design(x[:200], y[:200])
    prepare = lambda rows: design.scaler.transform(l2_rows(rows))  # noqa: E731
    kernel = kernel_refit(reference_svc(c, 3, grid=True), design.z, design.y, prepare)
    with platt_allowed():
        rbf = ReferenceModel(design.scaler,
                             reference_svc(c, 3, grid=True).fit(design.z, design.y))
    assert np.allclose(kernel.predict_proba(x[200:]), rbf.predict_proba(x[200:]), atol=1e-9)
    assert np.array_equal(kernel.predict(x[200:]),
                          rbf.svc.predict(design.scaler.transform(l2_rows(x[200:]))))
    with pytest.raises(ConfigError, match="kernel, sklearn"):
        fast_svm_protocol(x, y, x, y, refit="libsvm")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_single_window_classes_are_refused_with_the_counts(protocol):
    with pytest.raises(ConfigError, match="class counts"):
        fast_svm_protocol(np.zeros((3, 2)), np.array([0, 0, 0]), np.zeros((1, 2)),
                          np.array([0]), protocol=protocol)
