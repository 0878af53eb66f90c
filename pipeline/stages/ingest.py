"""Stage ``ingest``: a dataset's native layout -> recordings.parquet (+ rejects/ingest.parquet).

Adapters that open each recording to describe it (video fps and duration, IMU rate) spread
that probing over ``workers`` local processes or a dask ``scheduler``
(``DatasetAdapter.probe_each``); the table is the same whichever runs it.
"""

from __future__ import annotations

import logging
from collections import Counter
from os import PathLike
from typing import Any

from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Recording
from comodo.pipeline.datasets.tables import recordings_frame
from comodo.pipeline.registry import DATASETS, load_plugins
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects
from comodo.stores.errors import ConfigError, InputDataError
from comodo.stores.index import write_table

log = logging.getLogger(__name__)


class IngestConfig(StageConfig):
    max_reject_fraction: float = Field(0.2, ge=0.0, le=1.0)
    workers: int = Field(1, ge=0)  # probing processes (1: this process; 0: all cores, many videos)
    scheduler: str | None = None  # None | "local-cluster" | "tcp://HOST:PORT" (pipeline.parallel)
    require_splits: list[str] = Field(default_factory=lambda: ["train", "test"])  # [] for none


def make_adapter(adapter: str, root: str, dataset: str, options: dict[str, Any]):
    load_plugins("datasets")
    return DATASETS.get(adapter)(root, dataset=dataset, **options)


def check_splits(recs: list[Recording], required: list[str], dataset: str, adapter: str) -> None:
    """Fail now, not at evaluate, when a required split got no recording."""
    counts = Counter(r.split for r in recs)
    missing = [s for s in required if not counts.get(s)]
    if not missing:
        return
    subjects = sorted({str(r.subject) for r in recs if r.subject})
    found = ", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"
    raise ConfigError(
        f"ingest {dataset}: no recording is in split(s) {missing} (recordings per split: "
        f"{found}); set datasets.{dataset}.options (adapter {adapter!r}): "
        + (f"test_subjects / val_subjects, e.g. [{subjects[-1]}] (subjects found: "
           f"{', '.join(subjects)}), or " if subjects else "")
        + "split: random with test_fraction / val_fraction; or list the splits you need in "
        "ingest.require_splits (README, 'Datasets')")


def run(cfg: IngestConfig, data_dir: str | PathLike[str], dataset: str, adapter: str, root: str,
        options: dict[str, Any], storage_options: dict[str, Any] | None = None) -> StageSummary:
    """Raw inputs stay where ``root`` says (local); outputs go under ``data_dir`` (any URL)."""
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    reader = make_adapter(adapter, root, dataset, options)
    reader.spread = (cfg.workers, cfg.scheduler)
    recs, rejects = reader.scan()
    total = len(recs) + len(rejects)
    if not recs:
        raise InputDataError(
            f"ingest {dataset}: no usable recordings under {root} ({len(rejects)} rejected); "
            f"expected {reader.layout}"
        )
    finish_rejects(paths, "ingest", rejects, total, cfg.max_reject_fraction)
    check_splits(recs, cfg.require_splits, dataset, adapter)
    write_table(recordings_frame(recs), paths.recordings, **paths.options)
    return StageSummary("ingest", dataset, "recordings", total, len(recs), len(rejects))
