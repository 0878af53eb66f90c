"""Small paired stores (windows.zarr + features/<teacher>.zarr + windows.parquet) from numbers.

For tests and benchmarks of the trainer before real stores exist; the layout follows
docs/CONTRACTS.md. Two kinds of content:

- ``random``: IMU and teacher features are independent Gaussian noise (throughput/memory).
- ``hidden_class``: each class owns a frequency, present in every channel as a weak tone
  under a strong class-independent random walk, offset and trend; the teacher feature is
  the class's random prototype plus noise. The class is plain in the teacher features but
  hard to see in raw IMU (a randomly initialised encoder + SVM stays near chance), so a
  student has something to learn from the teacher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from comodo.pipeline.windowing import WINDOWS_SCHEMA
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.index import write_table
from comodo.stores.provenance import Provenance

KINDS = ("random", "hidden_class")


def write_paired_stores(
    root: Path,
    n_windows: int,
    n_channels: int = 6,
    n_samples: int = 200,
    teacher_dim: int = 64,
    n_classes: int = 4,
    chunk_rows: int = 64,
    teacher_key: str = "teacher",
    kind: str = "random",
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    valid_fraction: float | None = None,
) -> None:
    """Write ``root``/windows.parquet, windows.zarr and features/``teacher_key``.zarr.

    ``valid_fraction`` adds a ``valid`` (N,) array to the feature store with that share of
    rows marked valid (the rest count as rejected windows).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_windows)
    split = rng.choice(["train", "val", "test"], size=n_windows, p=list(splits))
    root.mkdir(parents=True, exist_ok=True)
    write_table(_index(labels, split, n_classes, n_samples), str(root / "windows.parquet"))
    windows, features = _create_stores(root, n_windows, chunk_rows, (n_channels, n_samples),
                                       teacher_dim, n_classes, teacher_key, seed,
                                       valid_fraction is not None)
    prototypes = rng.normal(size=(n_classes, teacher_dim)).astype(np.float32)
    freqs = np.linspace(4, n_samples / 8, n_classes)
    for chunk in range(windows.n_chunks):
        sl = windows.chunk_slice(chunk)
        chunk_rng = np.random.default_rng([seed, chunk])
        ys = labels[sl]
        if kind == "random":
            imu = chunk_rng.normal(size=(len(ys), n_channels, n_samples)).astype(np.float32)
            feat = chunk_rng.normal(size=(len(ys), teacher_dim)).astype(np.float32)
        else:
            imu = _hidden_class_imu(chunk_rng, freqs[ys], n_channels, n_samples)
            feat = prototypes[ys] + 0.3 * chunk_rng.normal(size=(len(ys), teacher_dim))
        windows.write_chunk(chunk, {"imu": imu})
        block = {"pooled": feat}
        if valid_fraction is not None:
            block["valid"] = chunk_rng.random(len(ys)) < valid_fraction
        features.write_chunk(chunk, block)


def _create_stores(root: Path, n_windows: int, chunk_rows: int, window: tuple[int, int],
                   teacher_dim: int, n_classes: int, teacher_key: str, seed: int,
                   with_valid: bool) -> tuple[ChunkedStore, ChunkedStore]:
    windows = ChunkedStore.create(
        str(root / "windows.zarr"), n_windows, chunk_rows,
        {"imu": ArraySpec(window, "float32", "none")},
        Provenance("windows", "synthetic", f"seed{seed}"), index="../windows.parquet",
        attrs={"classes": [f"class{k}" for k in range(n_classes)], "rate_hz": 200.0},
    )
    arrays = {"pooled": ArraySpec((teacher_dim,), "float16", "none")}
    if with_valid:
        arrays["valid"] = ArraySpec((), "bool", "none")
    features = ChunkedStore.create(
        str(root / "features" / f"{teacher_key}.zarr"), n_windows, chunk_rows, arrays,
        Provenance("features", "synthetic", f"seed{seed}"), index="../../windows.parquet",
    )
    return windows, features


def _hidden_class_imu(rng: np.random.Generator, class_freq: np.ndarray, n_channels: int,
                      n_samples: int) -> np.ndarray:
    """(n, C, T): a weak class tone under a strong random walk, offset and trend."""
    n = len(class_freq)
    t = np.arange(n_samples) / n_samples  # one window = 1 time unit
    phase = rng.uniform(0, 2 * np.pi, (n, n_channels, 1))
    tone = 0.5 * np.sin(2 * np.pi * class_freq[:, None, None] * t + phase)  # (n, C, T)
    walk = np.cumsum(rng.normal(size=(n, n_channels, n_samples)), axis=-1)
    walk *= rng.uniform(0.05, 0.4, (n, n_channels, 1))
    offset = rng.uniform(-3, 3, (n, n_channels, 1)) + rng.uniform(-3, 3, (n, n_channels, 1)) * t
    noise = rng.normal(scale=0.3, size=tone.shape)
    return (tone + walk + offset + noise).astype(np.float32)


def _index(labels: np.ndarray, split: np.ndarray, n_classes: int, n_samples: int) -> pl.DataFrame:
    n = len(labels)
    names = [f"class{k}" for k in range(n_classes)]
    columns = {
        "window_id": np.arange(n),
        "recording_id": [f"rec{i // 4}" for i in range(n)],
        "label": [names[k] for k in labels],
        "label_id": labels.astype(np.int64),
        "subject": ["s1"] * n,
        "split": split.tolist(),
        "video_path": [""] * n,
        "video_kind": ["none"] * n,
        "video_start_s": np.zeros(n),
        "video_end_s": np.full(n, 5.0),
        "imu_start_s": np.zeros(n),
        "imu_end_s": np.full(n, 5.0),
        "n_valid": np.full(n, n_samples),  # every sample is real
    }
    return pl.DataFrame(columns, schema=WINDOWS_SCHEMA)
