"""Which windows train and which test: the dataset's split, or leave one subject out.

``split_fold`` is the dataset's own split (``train_split`` -> ``test_split``). With
``subject_folds`` every subject is the test set of one fold and the other subjects' labelled
windows (whatever their ``split``) are its training set: one fold per subject, in the
subjects' sorted order. Unlabelled windows (``label_id`` null or < 0) are in no fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from comodo.stores.errors import ConfigError

FOLDS = ("split", "subject")


@dataclass(frozen=True)
class Fold:
    """One train/test partition of the labelled windows (rows of windows.parquet)."""

    name: str  # "split" or "subject=<S>"
    train: np.ndarray  # (N_train,) rows, ascending
    test: np.ndarray  # (N_test,) rows, ascending
    train_subjects: tuple[str, ...] | None = None  # leave-one-subject-out: who trains


def labelled(index: pl.DataFrame) -> np.ndarray:
    return index["label_id"].fill_null(-1).to_numpy() >= 0


def split_fold(index: pl.DataFrame, train_split: str, test_split: str, where: str) -> Fold:
    """The dataset's split; an empty side is an error naming the splits present."""
    split = index["split"].to_numpy()
    rows = {}
    for name in (train_split, test_split):
        rows[name] = np.flatnonzero((split == name) & labelled(index))
        if not len(rows[name]):
            raise ConfigError(f"no labelled window has split {name!r} in {where}; splits present: "
                              f"{sorted(set(split.tolist()))}; set train_split / test_split")
    return Fold("split", rows[train_split], rows[test_split])


def subject_folds(index: pl.DataFrame, where: str) -> list[Fold]:
    """Leave one subject out: one fold per subject of the labelled windows."""
    keep = labelled(index)
    subject = index["subject"].cast(pl.String).to_numpy()
    if any(s is None for s in subject[keep]):
        raise ConfigError(f"{where}: leave-one-subject-out needs a subject for every labelled "
                          f"window; some have none (the adapter records no subject); use folds: split")
    subjects = sorted(set(subject[keep].tolist()), key=_natural)
    if len(subjects) < 2:
        raise ConfigError(f"{where}: leave-one-subject-out needs >= 2 subjects, found {subjects}")
    folds = []
    for held_out in subjects:
        test = np.flatnonzero(keep & (subject == held_out))
        train = np.flatnonzero(keep & (subject != held_out))
        others = tuple(s for s in subjects if s != held_out)
        folds.append(Fold(f"subject={held_out}", train, test, others))
    return folds


def make_folds(index: pl.DataFrame, folds: str, train_split: str, test_split: str,
               where: str) -> list[Fold]:
    if folds not in FOLDS:
        raise ConfigError(f"unknown folds {folds!r}; valid: {', '.join(FOLDS)}")
    if folds == "subject":
        return subject_folds(index, where)
    return [split_fold(index, train_split, test_split, where)]


def _natural(subject: str) -> tuple[int, str]:
    """Subjects "2" before "10"; names that are not numbers after, alphabetically."""
    return (int(subject), "") if subject.isdigit() else (1 << 62, subject)
