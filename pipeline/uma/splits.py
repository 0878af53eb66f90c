"""UMA splits of windows: D_HAR (video + labels), D_Align (video + IMU, no labels), validation, test.

Two kinds (``SPLITS``):

``subject``  whole subjects per split; the subjects are ordered once (a fixed seeded shuffle)
             and seed k rotates that order by k, so seeds 0 .. n_subjects-1 give different
             splits. Falls back to ``random`` without labels' stratification when fewer than
             ``min_subjects`` distinct subjects exist. Independent of labels.
``random``   trials drawn at random per seed (the C3T paper's 40/40/10/10), optionally
             stratified: each class spread over the four splits in proportion (within one row
             per class and split), the split sizes exact over all rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from comodo.pipeline.registry import Registry
from comodo.stores.errors import ConfigError

SPLIT_NAMES = ("har", "align", "val", "test")
DEFAULT_FRACTIONS = (0.4, 0.4, 0.1, 0.1)
SUBJECT_ORDER_SEED = 0


@dataclass(frozen=True)
class UmaSplits:
    """Row numbers (into windows.parquet) of each split; disjoint, sorted."""

    har: np.ndarray
    align: np.ndarray
    val: np.ndarray
    test: np.ndarray
    by_subject: bool

    def sizes(self) -> dict[str, int]:
        return {name: int(getattr(self, name).size) for name in SPLIT_NAMES}


def _allocate(n_items: int, fractions: tuple[float, ...]) -> list[int]:
    """Integer counts per split summing to ``n_items``, each at least 1 (largest remainder)."""
    raw = np.asarray(fractions) * n_items
    counts = np.maximum(np.floor(raw).astype(int), 1)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")  # ties: the earlier split
    i = 0
    while counts.sum() < n_items:
        counts[order[i % len(order)]] += 1
        i += 1
    while counts.sum() > n_items:  # minimum of 1 overshot: take from the largest split
        counts[int(np.argmax(counts))] -= 1
    return counts.tolist()


def _interleaved(counts: list[int]) -> np.ndarray:
    """Split ids, ``counts[j]`` of id j, each id spread evenly over the sequence."""
    positions = np.concatenate([(np.arange(c) + 0.5) / c for c in counts])
    return np.repeat(np.arange(len(counts)), counts)[np.argsort(positions, kind="stable")]


def _parts(split_of_row: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(split_of_row == j) for j in range(len(SPLIT_NAMES))]


def random_split(n_rows: int, labels: np.ndarray | None, seed: int,
                 fractions: tuple[float, ...]) -> UmaSplits:
    """Seeded random trials per split; with ``labels``, every class in proportion."""
    rng = np.random.default_rng(seed)
    ids = np.roll(_interleaved(_allocate(n_rows, fractions)), int(rng.integers(n_rows)))
    if labels is None:
        order = rng.permutation(n_rows)
    else:
        class_rank = rng.permutation(int(labels.max()) + 1)[labels]  # classes in a random order
        order = np.lexsort((rng.random(n_rows), class_rank))  # grouped by class, shuffled within
    split_of_row = np.empty(n_rows, dtype=np.int64)
    split_of_row[order] = ids
    return UmaSplits(*_parts(split_of_row), by_subject=False)


def subject_split(names: np.ndarray, seed: int, fractions: tuple[float, ...]) -> UmaSplits:
    """Whole subjects per split: a fixed subject order rotated by ``seed``."""
    distinct = np.asarray(sorted(set(names.tolist())))
    groups = np.roll(distinct[np.random.default_rng(SUBJECT_ORDER_SEED).permutation(distinct.size)], seed)
    bounds = np.cumsum([0, *_allocate(groups.size, fractions)])
    parts = [np.flatnonzero(np.isin(names, groups[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    return UmaSplits(*parts, by_subject=True)


SplitFn = Callable[[int, np.ndarray | None, np.ndarray | None, int, tuple[float, ...], int, bool], UmaSplits]
SPLITS: Registry[SplitFn] = Registry("uma split")


@SPLITS.register("random", doc="trials at random per seed (the C3T paper's protocol)")
def _random(n_rows: int, subjects: np.ndarray | None, labels: np.ndarray | None, seed: int,
            fractions: tuple[float, ...], min_subjects: int, stratify: bool) -> UmaSplits:
    return random_split(n_rows, labels if stratify else None, seed, fractions)


@SPLITS.register("subject", doc="whole subjects per split, rotated by the seed")
def _subject(n_rows: int, subjects: np.ndarray | None, labels: np.ndarray | None, seed: int,
             fractions: tuple[float, ...], min_subjects: int, stratify: bool) -> UmaSplits:
    names = None if subjects is None else np.asarray(subjects).astype(str)
    distinct = [] if names is None else sorted(set(names.tolist()) - {"None", ""})
    if len(distinct) >= min_subjects and not (names == "None").any():
        return subject_split(names, seed, fractions)
    return random_split(n_rows, None, seed, fractions)


def make_splits(
    n_rows: int,
    subjects: np.ndarray | None,
    seed: int,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    min_subjects: int = 4,
    kind: str = "subject",
    labels: np.ndarray | None = None,
    stratify: bool = True,
) -> UmaSplits:
    """Split ``n_rows`` rows into D_HAR, D_Align, validation and test (``kind``: ``SPLITS``)."""
    if len(fractions) != 4 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"uma split fractions must be 4 positive numbers summing to 1 (har, align, val, "
            f"test), got {list(fractions)}; e.g. [0.4, 0.4, 0.1, 0.1]"
        )
    if n_rows < 4:
        raise ConfigError(f"uma needs at least 4 windows to make 4 splits, found {n_rows}")
    split = SPLITS.get(kind)
    return split(n_rows, subjects, labels, seed, tuple(fractions), min_subjects, stratify)
