"""Arrays for UMA read from the store, and the views that decide what training may see.

``train_view`` is the only place that picks training arrays: the video and labels of D_HAR,
the video and IMU of D_Align. The IMU of D_HAR and the labels of D_Align are not in it, so no
method can read them. Normalisation statistics come from the same view (IMU statistics from
D_Align alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.uma.splits import UmaSplits
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import StoreIntegrityError
from comodo.stores.index import read_table

EPS = 1e-6


@dataclass(frozen=True)
class UmaData:
    """Every window's IMU, per-frame video features, label and subject, rows aligned."""

    imu: np.ndarray  # (N, C, T) float32
    video: np.ndarray  # (N, F, D) float32
    labels: np.ndarray  # (N,) int64
    subjects: np.ndarray | None  # (N,) str
    classes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class TrainView:
    """What UMA training may read; nothing else reaches a method's ``fit``."""

    har_video: np.ndarray  # (N_har, F, D)
    har_labels: np.ndarray  # (N_har,)
    align_video: np.ndarray  # (N_align, F, D)
    align_imu: np.ndarray  # (N_align, C, T)
    n_classes: int


@dataclass(frozen=True)
class EvalView:
    """Both modalities and labels of evaluation rows (validation or test)."""

    imu: np.ndarray  # (N, C, T)
    video: np.ndarray  # (N, F, D)
    labels: np.ndarray  # (N,)


@dataclass(frozen=True)
class Normalizer:
    """Per-channel IMU and per-dimension video statistics of the training view."""

    imu_mean: np.ndarray  # (C, 1)
    imu_std: np.ndarray  # (C, 1)
    video_mean: np.ndarray  # (D,)
    video_std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, view: TrainView) -> Normalizer:
        imu = view.align_imu.transpose(1, 0, 2).reshape(view.align_imu.shape[1], -1)  # (C, N*T)
        video = np.concatenate([view.har_video, view.align_video]).reshape(-1, view.har_video.shape[-1])
        return cls(imu.mean(1, keepdims=True), imu.std(1, keepdims=True) + EPS,
                   video.mean(0), video.std(0) + EPS)

    def imu(self, imu: np.ndarray) -> np.ndarray:
        return ((imu - self.imu_mean) / self.imu_std).astype(np.float32)

    def video(self, video: np.ndarray) -> np.ndarray:
        return ((video - self.video_mean) / self.video_std).astype(np.float32)


def train_view(data: UmaData, splits: UmaSplits) -> TrainView:
    return TrainView(
        har_video=data.video[splits.har],
        har_labels=data.labels[splits.har],
        align_video=data.video[splits.align],
        align_imu=data.imu[splits.align],
        n_classes=data.n_classes,
    )


def normalized(view: TrainView, norm: Normalizer) -> TrainView:
    return TrainView(norm.video(view.har_video), view.har_labels, norm.video(view.align_video),
                     norm.imu(view.align_imu), view.n_classes)


def eval_view(data: UmaData, rows: np.ndarray, norm: Normalizer) -> EvalView:
    return EvalView(norm.imu(data.imu[rows]), norm.video(data.video[rows]), data.labels[rows])


def load_uma_data(data_dir: str | Path, dataset: str, teacher_key: str,
                  storage_options: dict[str, Any] | None = None) -> UmaData:
    """Read windows.parquet, windows.zarr ``imu`` and features/<key>.zarr ``frames``
    (``data_dir`` a folder or an fsspec URL)."""
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    index = read_table(paths.windows_index, **paths.options).sort("window_id")
    windows = ChunkedStore.open(paths.windows_store, expect={"stage": "windows"},
                                storage_options=paths.options)
    feats = ChunkedStore.open(paths.features(teacher_key), expect={"stage": "features"},
                              storage_options=paths.options)
    for store in (windows, feats):
        if store.n_rows != len(index):
            raise StoreIntegrityError(
                f"store {store.url} has {store.n_rows} rows but {paths.windows_index} has "
                f"{len(index)} windows; re-run the stage '{store.provenance.stage}' for {dataset}"
            )
        store.require_complete()
    imu = np.asarray(windows.read("imu"), dtype=np.float32)  # (N, C, T)
    video = np.asarray(feats.read("frames"), dtype=np.float32)  # (N, F, D)
    keep = np.ones(len(index), dtype=bool)
    if "valid" in feats.names:
        keep = np.asarray(feats.read("valid")).astype(bool)
    classes = list(windows.attrs.get("classes") or sorted(set(index["label"].to_list())))
    subjects = index["subject"].cast(str).to_numpy() if "subject" in index.columns else None
    return UmaData(
        imu=imu[keep], video=video[keep],
        labels=index["label_id"].to_numpy().astype(np.int64)[keep],
        subjects=None if subjects is None else subjects[keep], classes=classes,
    )
