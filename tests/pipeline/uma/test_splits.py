import numpy as np
import pytest
from uma_fixture import synthetic_arrays

from comodo.pipeline.uma.splits import make_splits
from comodo.stores.errors import ConfigError


def test_splits_are_subject_disjoint_cover_all_rows_and_follow_the_seed() -> None:
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


def test_without_subjects_rows_are_split_40_40_10_10() -> None:
    s = make_splits(100, None, seed=0)
    assert not s.by_subject
    assert s.sizes() == {"har": 40, "align": 40, "val": 10, "test": 10}


def test_bad_fractions_are_refused_with_the_expected_form() -> None:
    with pytest.raises(ConfigError, match="summing to 1"):
        make_splits(100, None, seed=0, fractions=(0.5, 0.5, 0.1, 0.1))
