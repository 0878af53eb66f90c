"""Arrays for UMA read from the store, and the views that decide what training may see.

``train_view`` is the only place that picks training arrays: the video and labels of D_HAR,
the video and IMU of D_Align. The IMU of D_HAR and the labels of D_Align are not in it, so no
method can read them. Normalisation statistics come from the same view (IMU statistics from
D_Align alone), over valid samples only: padding never counts and stays zero.

Time base: in ``whole`` windows a trial's IMU fills ``n_valid`` samples of the window and the
rest is zero padding, while the video frames are sampled over the whole trial. ``stretch``
resamples each trial's valid IMU to the full window length, so position p of t_rec covers the
same share of the trial in both modalities (identity for windows that have no padding);
``pad`` keeps the padded layout and masks the padding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.uma.splits import UmaSplits
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, StoreIntegrityError
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
    n_valid: np.ndarray | None = None  # (N,) valid IMU samples per window; None: all valid

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
    align_valid: np.ndarray | None = None  # (N_align,) valid IMU samples; None: all valid


@dataclass(frozen=True)
class EvalView:
    """Both modalities and labels of evaluation rows (validation or test)."""

    imu: np.ndarray  # (N, C, T)
    video: np.ndarray  # (N, F, D)
    labels: np.ndarray  # (N,)


def valid_mask(n_valid: np.ndarray, samples: int) -> np.ndarray:
    """(N, 1, T) True on each window's first ``n_valid`` samples."""
    return (np.arange(samples)[None, :] < np.asarray(n_valid)[:, None])[:, None, :]


def stretch_valid(imu: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """Each window's first ``n_valid`` samples linearly resampled to the window length T.

    The first and last valid samples land on the first and last positions; a window with
    ``n_valid == T`` is returned unchanged.
    """
    n, channels, samples = imu.shape  # (N, C, T)
    out = imu.copy()
    target = np.arange(samples, dtype=np.float64)
    for i in np.flatnonzero(np.asarray(n_valid) < samples):
        k = max(int(n_valid[i]), 1)
        source = target * (k - 1) / (samples - 1)  # positions in the valid part
        out[i] = np.stack([np.interp(source, np.arange(k), imu[i, c, :k]) for c in range(channels)])
    return out


TIME_BASES = ("stretch", "pad")


def with_time_base(data: UmaData, time_base: str) -> UmaData:
    """``stretch``: valid IMU resampled to the trial span, no padding left; ``pad``: as stored."""
    if time_base not in TIME_BASES:
        raise ConfigError(f"uma.time_base: unknown {time_base!r}; valid: {', '.join(TIME_BASES)}")
    if time_base == "pad" or data.n_valid is None:
        return data
    return replace(data, imu=stretch_valid(data.imu, data.n_valid), n_valid=None)


@dataclass(frozen=True)
class Normalizer:
    """Per-channel IMU (valid samples only) and per-dimension video statistics of the training view."""

    imu_mean: np.ndarray  # (C, 1)
    imu_std: np.ndarray  # (C, 1)
    video_mean: np.ndarray  # (D,)
    video_std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, view: TrainView) -> Normalizer:
        n_align, channels, samples = view.align_imu.shape
        valid = np.full(n_align, samples) if view.align_valid is None else view.align_valid
        mask = np.broadcast_to(valid_mask(valid, samples), view.align_imu.shape)  # (N, C, T)
        imu = view.align_imu.transpose(1, 0, 2)[mask.transpose(1, 0, 2)].reshape(channels, -1)  # (C, n)
        video = np.concatenate([view.har_video, view.align_video]).reshape(-1, view.har_video.shape[-1])
        return cls(imu.mean(1, keepdims=True), imu.std(1, keepdims=True) + EPS,
                   video.mean(0), video.std(0) + EPS)

    def imu(self, imu: np.ndarray, n_valid: np.ndarray | None = None) -> np.ndarray:
        """Normalised IMU; padding past ``n_valid`` stays zero."""
        out = (imu - self.imu_mean) / self.imu_std
        if n_valid is not None:
            out = out * valid_mask(n_valid, imu.shape[-1])
        return out.astype(np.float32)

    def video(self, video: np.ndarray) -> np.ndarray:
        return ((video - self.video_mean) / self.video_std).astype(np.float32)


def train_view(data: UmaData, splits: UmaSplits) -> TrainView:
    return TrainView(
        har_video=data.video[splits.har],
        har_labels=data.labels[splits.har],
        align_video=data.video[splits.align],
        align_imu=data.imu[splits.align],
        n_classes=data.n_classes,
        align_valid=None if data.n_valid is None else data.n_valid[splits.align],
    )


def normalized(view: TrainView, norm: Normalizer) -> TrainView:
    return replace(view, har_video=norm.video(view.har_video), align_video=norm.video(view.align_video),
                   align_imu=norm.imu(view.align_imu, view.align_valid))


def eval_view(data: UmaData, rows: np.ndarray, norm: Normalizer) -> EvalView:
    n_valid = None if data.n_valid is None else data.n_valid[rows]
    return EvalView(norm.imu(data.imu[rows], n_valid), norm.video(data.video[rows]), data.labels[rows])


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
    n_valid, samples = None, imu.shape[-1]
    if "n_valid" in index.columns:
        n_valid = np.clip(index["n_valid"].fill_null(samples).to_numpy().astype(np.int64), 1, samples)
    return UmaData(
        imu=imu[keep], video=video[keep],
        labels=index["label_id"].to_numpy().astype(np.int64)[keep],
        subjects=None if subjects is None else subjects[keep], classes=classes,
        n_valid=None if n_valid is None else n_valid[keep],
    )
