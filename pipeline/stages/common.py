"""What every stage shares: dataset paths, the rejects table and the reject limit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from comodo.pipeline.datasets.base import Reject, rejects_frame
from comodo.stores.errors import RejectLimitError
from comodo.stores.index import write_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetPaths:
    """Where a dataset's stage outputs live: ``<data_dir>/<dataset>/...``."""

    data_dir: Path
    dataset: str

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.dataset

    @property
    def recordings(self) -> Path:
        return self.root / "recordings.parquet"

    @property
    def imu_store(self) -> Path:
        return self.root / "imu.zarr"

    @property
    def imu_index(self) -> Path:
        return self.root / "imu.parquet"

    @property
    def windows_store(self) -> Path:
        return self.root / "windows.zarr"

    @property
    def windows_index(self) -> Path:
        return self.root / "windows.parquet"

    def rejects(self, stage: str) -> Path:
        return self.root / "rejects" / f"{stage}.parquet"

    def features(self, teacher_key: str) -> Path:
        return self.root / "features" / f"{teacher_key}.zarr"


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
    write_table(rejects_frame(rejects), str(paths.rejects(stage)))
    counted = [r for r in rejects if r.kind != "class"]
    if total and len(counted) / total > max_fraction:
        raise RejectLimitError(
            f"{stage} for dataset {paths.dataset}: rejected {len(counted)} of {total} "
            f"({len(counted) / total:.0%}) > max_reject_fraction={max_fraction}; see "
            f"{paths.rejects(stage)} for the reasons, fix the inputs or raise the limit"
        )
