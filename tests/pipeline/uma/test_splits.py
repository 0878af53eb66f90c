import numpy as np
import pytest
from uma_fixture import synthetic_arrays

from comodo.pipeline.uma.splits import make_splits
from comodo.stores.errors import ConfigError, UnknownNameError


def test_subject_splits_are_subject_disjoint_cover_all_rows_and_follow_the_seed() -> None:
    data = synthetic_arrays()
    s = make_splits(data.labels.size, data.subjects, seed=3)
    parts = [s.har, s.align, s.val, s.test]
    assert s.by_subject
    assert sorted(np.concatenate(parts).tolist()) == list(range(data.labels.size))
    groups = [set(data.subjects[p]) for p in parts]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not groups[i] & groups[j]
    assert [len(g) for g in groups] == [4, 4, 1, 1]
    again = make_splits(data.labels.size, data.subjects, seed=3)
    other = make_splits(data.labels.size, data.subjects, seed=4)
    assert np.array_equal(again.test, s.test)
    others = [other.har, other.align, other.val, other.test]
    assert any(not np.array_equal(a, b) for a, b in zip(parts, others))


def test_five_subjects_give_five_different_test_subjects_over_seeds_0_to_4() -> None:
    subjects = np.repeat([f"s{i}" for i in range(1, 6)], 10)
    tests = [tuple(sorted(set(subjects[make_splits(50, subjects, seed=k).test]))) for k in range(5)]
    assert len(set(tests)) == 5


def test_random_splits_are_disjoint_40_40_10_10_stratified_and_differ_per_seed() -> None:
    data = synthetic_arrays()  # 200 rows, 4 classes of 50
    n = data.labels.size
    splits = [make_splits(n, data.subjects, seed, kind="random", labels=data.labels) for seed in range(3)]
    for s in splits:
        parts = [s.har, s.align, s.val, s.test]
        assert not s.by_subject
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # disjoint, every row once
        assert s.sizes() == {"har": 80, "align": 80, "val": 20, "test": 20}
        for part, fraction in zip(parts, (0.4, 0.4, 0.1, 0.1)):
            per_class = np.bincount(data.labels[part], minlength=4)
            assert np.all(np.abs(per_class - fraction * 50) <= 1), per_class
        subjects_in_test = set(data.subjects[s.test])
        assert len(subjects_in_test) > 1  # trials, not subjects
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(splits[a].test, splits[b].test)
            assert not np.array_equal(splits[a].har, splits[b].har)
    again = make_splits(n, data.subjects, 1, kind="random", labels=data.labels)
    assert np.array_equal(again.align, splits[1].align)


def test_random_split_without_labels_still_has_exact_sizes() -> None:
    s = make_splits(539, None, seed=5, kind="random")
    assert s.sizes() == {"har": 216, "align": 215, "val": 54, "test": 54}


def test_without_subjects_rows_are_split_40_40_10_10() -> None:
    s = make_splits(100, None, seed=0)
    assert not s.by_subject
    assert s.sizes() == {"har": 40, "align": 40, "val": 10, "test": 10}


def test_bad_fractions_and_unknown_kinds_are_refused_with_the_expected_form() -> None:
    with pytest.raises(ConfigError, match="summing to 1"):
        make_splits(100, None, seed=0, fractions=(0.5, 0.5, 0.1, 0.1))
    with pytest.raises(UnknownNameError, match="random, subject"):
        make_splits(100, None, seed=0, kind="by_day")
