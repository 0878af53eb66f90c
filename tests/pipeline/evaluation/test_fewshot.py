"""k-shot draws, classifiers, intervals and paired tests (evaluation.fewshot)."""

import numpy as np
import pytest
from scipy import stats

from comodo.pipeline.evaluation import fewshot as fs
from comodo.stores.errors import ConfigError, UnknownNameError


def labels(counts):
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def test_draws_hold_k_rows_of_every_class_and_depend_only_on_seed_k_and_index():
    y = labels([7, 9, 6])
    draws = fs.make_draws(y, 3, 4, seed=0)
    assert [d.index for d in draws] == [0, 1, 2, 3]
    for d in draws:
        assert np.bincount(y[d.rows]).tolist() == [3, 3, 3]
    again = fs.make_draws(y.copy(), 3, 4, seed=0)
    assert all(np.array_equal(a.rows, b.rows) for a, b in zip(draws, again))
    assert len({tuple(d.rows) for d in draws}) == 4  # draws differ from each other
    other_seed = fs.make_draws(y, 3, 4, seed=1)
    assert not all(np.array_equal(a.rows, b.rows) for a, b in zip(draws, other_seed))


def test_k_larger_than_a_class_is_a_clear_error_naming_the_class():
    with pytest.raises(ConfigError, match=r"classes \[2\] have only \[4\]"):
        fs.make_draws(labels([6, 6, 4]), 5, 2, seed=0)
    assert fs.max_shots(labels([6, 6, 4])) == 4


def test_all_is_one_draw_of_every_row():
    (draw,) = fs.make_draws(labels([3, 2]), "all", 20, seed=0)
    assert draw.rows.tolist() == [0, 1, 2, 3, 4]


def test_shots_accept_positive_ints_and_all_only():
    assert fs.parse_shots([1, 5, "ALL"]) == [1, 5, "all"]
    for bad in ([0], [2.5], ["ten"], [1, 1], [True]):
        with pytest.raises(ConfigError):
            fs.parse_shots(bad)


def test_interval_is_the_student_t_interval_of_the_mean():
    got = fs.interval([0.1, 0.2, 0.3, 0.4, 0.5])
    half = stats.t.ppf(0.975, 4) * np.std([0.1, 0.2, 0.3, 0.4, 0.5], ddof=1) / np.sqrt(5)
    assert got["mean"] == pytest.approx(0.3) and got["n"] == 5
    assert got["low"] == pytest.approx(0.3 - half) and got["high"] == pytest.approx(0.3 + half)
    assert half == pytest.approx(0.19632, abs=1e-5)  # t(0.975, 4) = 2.7764, sd/sqrt(5) = 0.0707
    assert fs.interval([0.4]) == {"mean": 0.4, "low": 0.4, "high": 0.4, "n": 1}


def test_interval_is_clipped_to_the_range_of_a_score():
    half = stats.t.ppf(0.975, 2) * np.std([1.0, 1.0, 0.9], ddof=1) / np.sqrt(3)
    assert half == pytest.approx(0.14342, abs=1e-5)  # t(0.975, 2) = 4.3027, sd = 0.0577
    near_one = fs.interval([1.0, 1.0, 0.9])
    assert near_one["mean"] == pytest.approx(29 / 30)
    assert near_one["low"] == pytest.approx(29 / 30 - half) and near_one["high"] == 1.0
    near_zero = fs.interval([0.0, 0.0, 0.1])
    assert near_zero["low"] == 0.0 and near_zero["high"] == pytest.approx(1 / 30 + half)
    assert fs.interval([0.0, 1.0]) == {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 2}


def test_paired_test_counts_wins_and_gives_wilcoxon_p():
    a = [0.5, 0.6, 0.7, 0.8, 0.9, 0.55, 0.65, 0.75]
    b = [0.4, 0.5, 0.6, 0.7, 0.95, 0.45, 0.55, 0.75]
    got = fs.paired_test(a, b)
    assert (got["wins"], got["losses"], got["ties"]) == (6, 1, 1)
    assert got["diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert got["p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert fs.paired_test([0.5, 0.5], [0.5, 0.5])["p"] is None


def test_scores_rank_classes_and_count_an_absent_class_as_a_miss():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    train_classes = np.array([0, 1, 3])  # class 2 never drawn
    got = fs.score(probs, train_classes, np.array([0, 1, 2]), n_classes=4)
    assert got["acc@1"] == pytest.approx(1 / 3)  # row 1's best is class 3
    assert got["acc@3"] == pytest.approx(2 / 3)  # class 2 is never ranked
    assert 0 < got["macro_f1"] < 1


@pytest.mark.parametrize("name", ["logreg", "knn", "svm"])
def test_classifiers_separate_separable_features(name):
    rng = np.random.default_rng(0)
    y = labels([10, 10, 10])
    centres = rng.normal(size=(3, 8)) * 5
    x = centres[y] + rng.normal(size=(30, 8)) * 0.1
    draws = fs.make_draws(y, 2, 3, seed=0)
    out = fs.evaluate_draws(name, x, y, x, y, draws, seed=0)
    assert len(out) == 3 and all(o["acc@1"] == 1.0 for o in out)


def test_unknown_classifier_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="knn, logreg, svm"):
        fs.CLASSIFIERS.get("forest")
