"""What every stage shares: dataset paths, the rejects table and the reject limit."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.datasets.tables import rejects_frame
from comodo.stores import fs
from comodo.stores.errors import RejectLimitError
from comodo.stores.index import write_table

log = logging.getLogger(__name__)


EXECUTION_FIELDS = frozenset({"workers", "scheduler"})  # how a stage runs, never what it writes


def output_config(cfg: StageConfig) -> dict[str, Any]:
    """The config fields that shape a stage's output: what its provenance hashes, so a run on
    a dask cluster and a single-process run write the same bytes."""
    return cfg.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))


@dataclass(frozen=True)
class DatasetPaths:
    """Where a dataset's stage outputs live: ``<data_dir>/<dataset>/...``, as URL strings.

    ``data_dir`` is a local folder or any fsspec URL (``s3://bucket/prefix``);
    ``storage_options`` go to every read and write (an S3 endpoint also comes from
    ``AWS_ENDPOINT_URL`` / ``FSSPEC_S3_ENDPOINT_URL``, see ``comodo.stores.fs``).
    """

    data_dir: str | PathLike[str]
    dataset: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.storage_options)

    @property
    def root(self) -> str:
        return fs.join(os.fspath(self.data_dir), self.dataset)

    @property
    def recordings(self) -> str:
        return fs.join(self.root, "recordings.parquet")

    @property
    def imu_store(self) -> str:
        return fs.join(self.root, "imu.zarr")

    @property
    def imu_index(self) -> str:
        return fs.join(self.root, "imu.parquet")

    @property
    def windows_store(self) -> str:
        return fs.join(self.root, "windows.zarr")

    @property
    def windows_index(self) -> str:
        return fs.join(self.root, "windows.parquet")

    def rejects(self, stage: str) -> str:
        return fs.join(self.root, "rejects", f"{stage}.parquet")

    def features(self, teacher_key: str) -> str:
        return fs.join(self.root, "features", f"{teacher_key}.zarr")

    def exists(self, url: str) -> bool:
        return fs.exists(url, **self.options)


@dataclass(frozen=True)
class StageSummary:
    """``ingested = kept + rejected``, reconciled and printed at the end of every stage."""

    stage: str
    dataset: str
    unit: str
    ingested: int
    kept: int
    rejected: int

    def __post_init__(self) -> None:
        if self.ingested != self.kept + self.rejected:
            raise RuntimeError(f"{self}: counts do not reconcile")  # a bug, not user input

    def line(self) -> str:
        return (f"{self.stage} {self.dataset}: {self.ingested} {self.unit} in = "
                f"{self.kept} kept + {self.rejected} rejected")


def finish_rejects(paths: DatasetPaths, stage: str, rejects: list[Reject], total: int,
                   max_fraction: float) -> None:
    """Log and write every reject, then fail if too many inputs were skipped."""
    for r in rejects:
        log.warning("%s rejected %s %s: %s", stage, r.kind, r.item, r.reason)
    write_table(rejects_frame(rejects), paths.rejects(stage), **paths.options)
    counted = [r for r in rejects if r.kind != "class"]
    if total and len(counted) / total > max_fraction:
        raise RejectLimitError(
            f"{stage} for dataset {paths.dataset}: rejected {len(counted)} of {total} "
            f"({len(counted) / total:.0%}) > max_reject_fraction={max_fraction}; see "
            f"{paths.rejects(stage)} for the reasons, fix the inputs or raise the limit"
        )
