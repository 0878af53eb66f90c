"""The four UMA splits: D_HAR, D_Align, validation and test, seeded and subject-disjoint.

D_HAR (video + labels), D_Align (video + IMU, no labels), validation and test (IMU + labels).
The split of a row depends only on its subject (or its row number when there are too few
subjects) and the seed, never on labels, so poisoning labels cannot move rows between splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comodo.stores.errors import ConfigError

SPLIT_NAMES = ("har", "align", "val", "test")
DEFAULT_FRACTIONS = (0.4, 0.4, 0.1, 0.1)


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
    order = np.argsort(-(raw - np.floor(raw)))
    i = 0
    while counts.sum() < n_items:
        counts[order[i % len(order)]] += 1
        i += 1
    while counts.sum() > n_items:  # minimum of 1 overshot: take from the largest split
        counts[int(np.argmax(counts))] -= 1
    return counts.tolist()


def make_splits(
    n_rows: int,
    subjects: np.ndarray | None,
    seed: int,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    min_subjects: int = 4,
) -> UmaSplits:
    """Split ``n_rows`` rows; by subject when at least ``min_subjects`` distinct subjects exist."""
    if len(fractions) != 4 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"uma split fractions must be 4 positive numbers summing to 1 (har, align, val, "
            f"test), got {list(fractions)}; e.g. [0.4, 0.4, 0.1, 0.1]"
        )
    if n_rows < 4:
        raise ConfigError(f"uma needs at least 4 windows to make 4 splits, found {n_rows}")
    rng = np.random.default_rng(seed)
    names = None if subjects is None else np.asarray(subjects).astype(str)
    distinct = [] if names is None else sorted(set(names.tolist()) - {"None", ""})
    by_subject = len(distinct) >= min_subjects and not (names == "None").any()
    if by_subject:
        groups = np.asarray(distinct)[rng.permutation(len(distinct))]
        counts = _allocate(len(groups), fractions)
        bounds = np.cumsum([0, *counts])
        parts = [np.flatnonzero(np.isin(names, groups[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        perm = rng.permutation(n_rows)
        bounds = np.cumsum([0, *_allocate(n_rows, fractions)])
        parts = [np.sort(perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return UmaSplits(*parts, by_subject=by_subject)
