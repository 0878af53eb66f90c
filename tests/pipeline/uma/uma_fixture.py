"""Tiny paired datasets with class structure, built in tmp_path through ChunkedStore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from comodo.pipeline.uma.data import UmaData
from comodo.pipeline.windowing import WINDOWS_SCHEMA
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.index import write_table
from comodo.stores.provenance import Provenance

N_CLASSES = 4
N_SUBJECTS = 10
PER_SUBJECT_CLASS = 5
CHANNELS, SAMPLES = 3, 64
FRAMES, DIM = 8, 16


def synthetic_arrays(seed: int = 0) -> UmaData:
    """Class c: IMU at frequency c + 1 on channel c % 3 and a class-specific video pattern."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(np.arange(N_CLASSES), PER_SUBJECT_CLASS), N_SUBJECTS)
    subjects = np.repeat([f"s{i}" for i in range(N_SUBJECTS)], N_CLASSES * PER_SUBJECT_CLASS)
    n = labels.size
    t = np.linspace(0, 1, SAMPLES, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, n)
    imu = 0.3 * rng.standard_normal((n, CHANNELS, SAMPLES))
    imu[np.arange(n), labels % CHANNELS] += np.sin(2 * np.pi * (labels[:, None] + 1) * t + phase[:, None])
    patterns = rng.standard_normal((N_CLASSES, FRAMES, DIM))
    video = patterns[labels] + 0.8 * rng.standard_normal((n, FRAMES, DIM))
    return UmaData(imu.astype(np.float32), video.astype(np.float32), labels.astype(np.int64),
                   subjects, [f"c{i}" for i in range(N_CLASSES)])


def write_dataset(data_dir: Path, dataset: str, data: UmaData, teacher_key: str) -> None:
    """windows.parquet + windows.zarr + features/<key>.zarr as the stages write them."""
    root = data_dir / dataset
    n = data.labels.size
    rows = [{"window_id": i, "recording_id": f"r{i}", "label": data.classes[data.labels[i]],
             "label_id": int(data.labels[i]), "subject": str(data.subjects[i]), "split": "train",
             "video_path": f"v{i}.mp4", "video_kind": "mp4", "video_start_s": 0.0, "video_end_s": 1.0,
             "imu_start_s": 0.0, "imu_end_s": 1.0, "n_valid": SAMPLES} for i in range(n)]
    write_table(pl.DataFrame(rows, schema=WINDOWS_SCHEMA), str(root / "windows.parquet"))
    win = ChunkedStore.create(str(root / "windows.zarr"), n, 64,
                              {"imu": ArraySpec((CHANNELS, SAMPLES), "float32")},
                              Provenance("windows", "cfg", "in"), index="../windows.parquet",
                              attrs={"classes": data.classes})
    feats = ChunkedStore.create(str(root / "features" / f"{teacher_key}.zarr"), n, 64,
                                {"pooled": ArraySpec((DIM,), "float16"),
                                 "frames": ArraySpec((FRAMES, DIM), "float16"),
                                 "valid": ArraySpec((), "uint8")},
                                Provenance("features", "cfg", "in"), index="../../windows.parquet")
    for chunk in range(win.n_chunks):
        rows_ = win.chunk_slice(chunk)
        win.write_chunk(chunk, {"imu": data.imu[rows_]})
        feats.write_chunk(chunk, {"pooled": data.video[rows_].mean(1), "frames": data.video[rows_],
                                  "valid": np.ones(rows_.stop - rows_.start, np.uint8)})
