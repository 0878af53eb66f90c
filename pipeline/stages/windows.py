"""Stage ``windows``: imu.zarr + recordings -> windows.parquet + windows.zarr (N, C, T).

``tile`` mode cuts non-overlapping windows of ``window_s`` over the part of each IMU
segment that the video covers, on the canonical clock (pairing by timestamp, never by array
index); the partial last window is dropped. ``whole`` mode keeps one window per recording
(e.g. one UTD-MHAD trial): the whole IMU segment, zero-padded or cut to ``whole_length``
samples, paired with the whole video (trial-span alignment); ``n_valid`` says how many
samples are real.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from comodo.pipeline.config import StageConfig
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects
from comodo.pipeline.windowing import WINDOWS_SCHEMA, cut_tiles, cut_whole, drop_small_classes
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import InputDataError
from comodo.stores.index import read_table, write_table
from comodo.stores.provenance import Provenance, config_hash, hash_file

log = logging.getLogger(__name__)


class WindowsConfig(StageConfig):
    mode: Literal["tile", "whole"] = "tile"
    window_s: float = 5.0
    whole_length: int | None = None  # samples per window in whole mode; None: longest recording
    min_windows_per_class: int = 0
    chunk_rows: int = 256
    codec: Literal["zstd", "blosc-lz4", "none"] = "blosc-lz4"
    max_reject_fraction: float = 0.2


def run(cfg: WindowsConfig, data_dir: Path, dataset: str) -> StageSummary:
    paths = DatasetPaths(Path(data_dir), dataset)
    recs = read_table(str(paths.recordings))
    segs = read_table(str(paths.imu_index))
    imu = ChunkedStore.open(str(paths.imu_store), expect={"stage": "imu"})
    imu.require_complete()
    samples = np.asarray(imu.array("imu")[:])  # (S, C)
    rate = float(segs["rate_hz"][0]) if len(segs) else 0.0
    if cfg.mode == "tile":
        n_per = round(cfg.window_s * rate)
        rows, rejects = cut_tiles(recs, segs, cfg.window_s, n_per)
    else:
        n_per = cfg.whole_length or int(segs["n_samples"].max())
        rows, rejects = cut_whole(recs, segs, n_per)
    recs = recs.filter(pl.col("recording_id").is_in(segs["recording_id"].unique().implode()))
    in_recordings = len(recs)
    kept_recordings = len({r["recording_id"] for r in rows})
    rows, class_rejects = drop_small_classes(rows, cfg.min_windows_per_class)
    rejects += class_rejects
    finish_rejects(paths, "windows", rejects, in_recordings, cfg.max_reject_fraction)
    if not rows:
        raise InputDataError(f"windows {dataset}: no window could be cut; see {paths.rejects('windows')}")
    classes = sorted({r["label"] for r in rows})
    index = _index_frame(rows, classes)
    _write_store(cfg, paths, imu, samples, rows, n_per, rate, classes)
    write_table(index, str(paths.windows_index))
    dropped = in_recordings - kept_recordings
    log.info("windows %s: %d windows from %d recordings, %d classes",
             dataset, len(rows), kept_recordings, len(classes))
    return StageSummary("windows", dataset, "recordings", in_recordings, in_recordings - dropped, dropped)


def _index_frame(rows: list[dict], classes: list[str]) -> pl.DataFrame:
    label_id = {c: i for i, c in enumerate(classes)}
    table = [{k: r[k] for k in WINDOWS_SCHEMA if k not in ("window_id", "label_id")}
             | {"window_id": i, "label_id": label_id[r["label"]]} for i, r in enumerate(rows)]
    return pl.DataFrame(table, schema=WINDOWS_SCHEMA).select(list(WINDOWS_SCHEMA))


def _write_store(cfg: WindowsConfig, paths: DatasetPaths, imu: ChunkedStore, samples: np.ndarray,
                 rows: list[dict], n_per: int, rate: float, classes: list[str]) -> None:
    channels = imu.group.attrs["channels"]
    prov = Provenance("windows", config_hash(cfg), hash_file(str(paths.imu_index)), details={
        "imu_config_hash": imu.provenance.config_hash, "rate_hz": rate, "window_s": cfg.window_s,
        "mode": cfg.mode, "channels": channels, "units": imu.group.attrs["units"],
    })
    store = ChunkedStore.create(
        str(paths.windows_store), len(rows), cfg.chunk_rows,
        {"imu": ArraySpec((len(channels), n_per), "float32", cfg.codec)}, prov,
        index="../windows.parquet",
        attrs={"channels": channels, "units": imu.group.attrs["units"], "rate_hz": rate,
               "window_s": cfg.window_s if cfg.mode == "tile" else n_per / rate, "classes": classes},
    )
    for chunk in store.pending_chunks():
        block = np.zeros((len(range(*store.chunk_slice(chunk).indices(len(rows)))),
                          len(channels), n_per), np.float32)
        for k, r in enumerate(rows[store.chunk_slice(chunk)]):
            piece = samples[r["sample_start"] : r["sample_start"] + r["n_valid"]]  # (n_valid, C)
            block[k, :, : len(piece)] = piece.T
        store.write_chunk(chunk, {"imu": block})

