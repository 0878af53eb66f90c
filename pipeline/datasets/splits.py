"""Adapter options and train/val/test assignment shared by the dataset adapters.

Every adapter validates its ``options`` (``datasets.<name>.options`` in params.yaml) into a
frozen pydantic model derived from ``AdapterOptions``: unknown keys are an error that lists
the valid ones. Split modes (``split``):

- ``files``: the dataset's own split files decide (adapters that have them);
- ``auto``: ``files`` when the dataset's split files exist, otherwise ``random``;
- ``random``: a seeded assignment by recording id (``val_fraction``, ``test_fraction``);
- ``subject``: subject-disjoint. Subjects in ``test_subjects``/``val_subjects`` go there and
  all others to train; with both lists empty, whole subjects are drawn with ``seed`` so that
  about ``val_fraction``/``test_fraction`` of the subjects land in val/test.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field, model_validator

from comodo.pipeline.config import StageConfig, build, with_nearest
from comodo.pipeline.datasets.base import Recording
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SplitMode = Literal["auto", "files", "random", "subject"]

OptionsT = TypeVar("OptionsT", bound=StageConfig)


class AdapterOptions(StageConfig):
    """Options every adapter understands; subclasses add theirs and change defaults."""

    split: SplitMode = "auto"
    seed: int = 0
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    val_subjects: list[str] = Field(default_factory=list)
    test_subjects: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _subjects_as_strings(cls, values: Any) -> Any:
        """``test_subjects: [8]`` and ``["8"]`` name the same subject (ids are strings)."""
        if not isinstance(values, dict):
            return values
        return {k: [str(s) for s in v] if k.endswith("_subjects") and isinstance(v, list) else v
                for k, v in values.items()}


def parse_options(model: type[OptionsT], options: dict[str, Any], adapter: str, dataset: str) -> OptionsT:
    """Validate ``options``; the error names the dataset and lists the valid keys."""
    unknown = sorted(set(options) - set(model.model_fields))
    if unknown:
        named = with_nearest(unknown, model.model_fields)
        raise ConfigError(
            f"datasets.{dataset}.options: unknown option(s) {named} for adapter {adapter!r}; "
            f"valid options: {', '.join(sorted(model.model_fields))}"
        )
    return build(model, options, f"datasets.{dataset}.options (adapter {adapter!r})")


def random_split(ids: list[str], seed: int, val_fraction: float, test_fraction: float
                 ) -> dict[str, str]:
    """A reproducible assignment of ids: a seeded permutation of the sorted ids is cut."""
    order = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(order))
    n_test = round(test_fraction * len(order))
    n_val = round(val_fraction * len(order))
    names = ["test"] * n_test + ["val"] * n_val + ["train"] * (len(order) - n_test - n_val)
    return {order[i]: names[k] for k, i in enumerate(perm)}


def subject_split(subjects: list[str], opts: AdapterOptions) -> dict[str, str]:
    """Subject -> split, from the configured lists or a seeded draw of whole subjects."""
    both = set(opts.val_subjects) & set(opts.test_subjects)
    if both:
        raise ConfigError(f"subjects {sorted(both)} are listed in both val_subjects and test_subjects")
    if opts.val_subjects or opts.test_subjects:
        missing = sorted(set(opts.val_subjects + opts.test_subjects) - set(subjects))
        if missing:
            log.warning("split subjects %s have no recordings (found subjects %s)", missing,
                        sorted(subjects))
        return {s: "test" if s in opts.test_subjects else "val" if s in opts.val_subjects
                else "train" for s in subjects}
    return random_split(sorted(set(subjects)), opts.seed, opts.val_fraction, opts.test_fraction)


def assign_splits(recs: list[Recording], opts: AdapterOptions, mode: str) -> None:
    """Fill ``split`` of every recording by ``mode`` (``random`` or ``subject``)."""
    if mode == "subject":
        unknown = [r.recording_id for r in recs if not r.subject]
        if unknown:
            raise ConfigError(
                f"split: subject needs a subject for every recording; {len(unknown)} have none "
                f"(e.g. {unknown[:3]}); use split: random instead"
            )
        by_subject = subject_split(sorted({r.subject for r in recs if r.subject}), opts)
        for r in recs:
            r.split = by_subject[r.subject or ""]
        return
    by_id = random_split([r.recording_id for r in recs], opts.seed, opts.val_fraction,
                         opts.test_fraction)
    for r in recs:
        r.split = by_id[r.recording_id]


def resolve_mode(opts: AdapterOptions, have_files: bool, fallback: str = "random") -> str:
    """The effective split mode: ``auto`` picks ``files`` when split files exist."""
    if opts.split == "auto":
        return "files" if have_files else fallback
    return opts.split
