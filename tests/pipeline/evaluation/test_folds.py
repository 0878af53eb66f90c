"""Leave-one-subject-out folds and the dataset's own split."""

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.evaluation.folds import make_folds, subject_folds
from comodo.stores.errors import ConfigError


def _index(subjects, splits, labels) -> pl.DataFrame:
    return pl.DataFrame({"subject": subjects, "split": splits, "label_id": labels},
                        schema={"subject": pl.String, "split": pl.String, "label_id": pl.Int64})


def test_one_fold_per_subject_holds_out_that_subject_only():
    index = _index(["1", "2", "10", "2", "1", "10", "3"],
                   ["train", "val", "test", "train", "test", "train", "train"],
                   [0, 1, 0, 1, 0, None, 1])
    folds = subject_folds(index, "windows.parquet")
    assert [f.name for f in folds] == ["subject=1", "subject=2", "subject=3", "subject=10"]
    by_name = {f.name: f for f in folds}
    np.testing.assert_array_equal(by_name["subject=1"].test, [0, 4])
    np.testing.assert_array_equal(by_name["subject=1"].train, [1, 2, 3, 6])  # split ignored
    np.testing.assert_array_equal(by_name["subject=10"].test, [2])  # row 5 is unlabelled
    assert by_name["subject=10"].train_subjects == ("1", "2", "3")
    tested = np.sort(np.concatenate([f.test for f in folds]))
    np.testing.assert_array_equal(tested, [0, 1, 2, 3, 4, 6])  # each labelled window once
    for f in folds:
        assert not set(f.train) & set(f.test)


def test_the_split_fold_is_the_datasets_split():
    index = _index(["1", "2", "3"], ["train", "test", "train"], [0, 1, 1])
    (fold,) = make_folds(index, "split", "train", "test", "w")
    np.testing.assert_array_equal(fold.train, [0, 2])
    np.testing.assert_array_equal(fold.test, [1])


def test_leave_one_subject_out_needs_subjects():
    with pytest.raises(ConfigError, match="needs a subject"):
        subject_folds(_index([None, "1"], ["train", "test"], [0, 1]), "w")
    with pytest.raises(ConfigError, match=">= 2 subjects"):
        subject_folds(_index(["1", "1"], ["train", "test"], [0, 1]), "w")
    with pytest.raises(ConfigError, match="split, subject"):
        make_folds(_index(["1"], ["train"], [0]), "random", "train", "test", "w")
