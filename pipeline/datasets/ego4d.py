"""Ego4D (and anything written in its layout, e.g. the synthetic default).

Expected files under ``root``::

    videos/<uid>.mp4          one video per recording (option ``video_dir``)
    imu/<uid>.csv             canonical_timestamp_ms,accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z
                              (ms on the video's canonical clock; m/s^2 and rad/s)
    train.txt val.txt test.txt   lines ``uid<TAB>scenario`` (the label)
    labels.txt                only when no split lists exist: ``uid<TAB>scenario`` for every
                              uid; then a seeded 7:2:1 split by recording (option ``seed``)

Options (``Ego4DOptions``; any other key is an error): ``seed``, ``video_dir``, ``imu_dir``.

The native IMU rate is estimated from the first timestamps of each CSV. Recordings without
an IMU file or with an unreadable video are rejected with their reason; classes with too few
windows are dropped later by the windows stage (``windows.min_windows_per_class``).
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import (
    EGO4D_COLUMNS,
    estimate_rate,
    probe_video,
    read_imu_csv,
    read_label_list,
    seeded_split,
)
from comodo.pipeline.datasets.splits import parse_options
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

SPLITS = ("train", "val", "test")


class Ego4DOptions(StageConfig):
    seed: int = 0  # the seeded 7:2:1 split, when there are no split lists
    video_dir: str = "videos"  # folders under root
    imu_dir: str = "imu"


@DATASETS.register("ego4d")
class Ego4D(DatasetAdapter):
    """Ego4D layout: videos/<uid>.mp4, imu/<uid>.csv, train/val/test.txt of uid<TAB>scenario."""

    name = "ego4d"
    layout = "videos/<uid>.mp4, imu/<uid>.csv, train.txt/val.txt/test.txt (or labels.txt) of uid<TAB>label"

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(Ego4DOptions, options, self.name, self.dataset)

    def _labels_and_splits(self) -> dict[str, tuple[str, str]]:
        lists = {s: self.root / f"{s}.txt" for s in SPLITS}
        present = {s: p for s, p in lists.items() if p.is_file()}
        if present:
            out: dict[str, tuple[str, str]] = {}
            for split, path in present.items():
                for uid, label in read_label_list(path).items():
                    if uid in out:
                        raise InputDataError(f"{path}: uid {uid} also appears in {out[uid][1]}.txt")
                    out[uid] = (label, split)
            return out
        labels_path = self.root / "labels.txt"
        if not labels_path.is_file():
            raise LayoutError(
                f"ego4d: no split lists (train.txt/val.txt/test.txt) and no labels.txt in {self.root}; "
                f"expected {self.layout}; found {sorted(p.name for p in self.root.iterdir())[:10]}"
            )
        labels = read_label_list(labels_path)
        splits = seeded_split(list(labels), self.opts.seed)
        return {uid: (label, splits[uid]) for uid, label in labels.items()}

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        video_dir, imu_dir = self.root / self.opts.video_dir, self.root / self.opts.imu_dir
        if video_dir.is_dir() or imu_dir.is_dir() or not any(self.root.glob("*.txt")):
            self.require(video_dir, "video folder")  # a folder of split lists only: listed uids
            self.require(imu_dir, "IMU folder")  # without files are rejects, one by one
        listed = sorted(self._labels_and_splits().items())
        keys = [((uid, label, split), uid) for uid, (label, split) in listed]
        return self.probe_each(keys, partial(self._recording, video_dir, imu_dir))

    def _recording(self, video_dir: Path, imu_dir: Path, uid: str, label: str, split: str) -> Recording:
        imu_path, video_path = imu_dir / f"{uid}.csv", video_dir / f"{uid}.mp4"
        if not imu_path.is_file():
            raise InputDataError(f"no IMU file {imu_path}")
        fps, duration = probe_video(video_path)
        return Recording(
            recording_id=uid, dataset=self.dataset, label=label, split=split,
            imu_path=str(imu_path), imu_rate_hz=_peek_rate(imu_path), video_path=str(video_path),
            video_kind="mp4", fps=fps, video_start_s=0.0, video_duration_s=duration,
        )

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        return read_imu_csv(rec["imu_path"])

    def inventory(self) -> list[str]:
        listed = self._labels_and_splits().values()
        splits, labels = Counter(s for _, s in listed), Counter(label for label, _ in listed)
        return [f"listed: {len(listed)} uids ({', '.join(f'{s} {n}' for s, n in sorted(splits.items()))}), "
                f"{len(labels)} labels"]


def _peek_rate(path: Path, n_rows: int = 256) -> float:
    """Estimate the native rate from the first rows without reading the whole file."""
    import polars as pl  # here: a pool worker reading IMU files does not load polars

    if path.stat().st_size == 0:
        raise InputDataError(f"IMU file {path} is empty (0 bytes)")
    try:
        head = pl.read_csv(path, n_rows=n_rows, columns=[EGO4D_COLUMNS[0]])
    except Exception as err:
        raise InputDataError(
            f"IMU file {path} has no readable '{EGO4D_COLUMNS[0]}' column: {err}"
        ) from None
    rate = estimate_rate(head[EGO4D_COLUMNS[0]].cast(pl.Float64, strict=False).to_numpy() * 1e-3)
    if rate != rate:  # NaN: no two increasing timestamps
        raise InputDataError(f"IMU file {path}: cannot estimate a rate from its first {n_rows} timestamps")
    return rate
