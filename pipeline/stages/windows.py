"""Stage ``windows``: imu.zarr + recordings -> windows.parquet + windows.zarr (N, C, T).

``tile`` mode cuts non-overlapping windows of ``window_s`` over the part of each IMU
segment that the video covers, on the canonical clock (pairing by timestamp, never by array
index); the partial last window is dropped and counted, with every other sample left out,
per recording in ``rejects/windows_samples.parquet`` (``pipeline.sample_accounting``).
``whole`` mode keeps one window per recording (e.g. one UTD-MHAD trial) paired with the
whole video (trial-span alignment), on one of two time bases (``time_base``): ``stretch``
(default) resamples the whole IMU segment to ``whole_length`` samples, so the IMU and the
video frames cover the same span of the trial; ``pad`` keeps the IMU rate, zero-padded or
cut to ``whole_length`` samples, and ``n_valid`` says how many samples are real (consumers
read only those).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.parallel import chunk_groups, map_parallel, map_threads
from comodo.pipeline.sample_accounting import REASONS, account_samples
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects, output_config
from comodo.pipeline.windowing import (
    WINDOWS_SCHEMA,
    cut_tiles,
    cut_whole,
    drop_small_classes,
    stretch_windows,
)
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import InputDataError
from comodo.stores.index import read_table, write_table
from comodo.stores.lock import write_lock
from comodo.stores.provenance import Provenance, config_hash, hash_file

log = logging.getLogger(__name__)


class WindowsConfig(StageConfig):
    mode: Literal["tile", "whole"] = "tile"
    window_s: float = Field(5.0, gt=0)  # seconds per window (tile mode)
    whole_length: int | None = Field(None, ge=1)  # samples per window in whole mode; None: longest recording
    # whole mode: "stretch" = each trial's IMU resampled to whole_length samples over the
    # trial's span (the span the video frames are sampled over); "pad" = the IMU rate kept,
    # zero-padded to whole_length (n_valid real samples). Tile mode ignores it.
    time_base: Literal["stretch", "pad"] = "stretch"
    min_windows_per_class: int = Field(0, ge=0)
    # keep only these IMU channels, in this order (e.g. [acc_x, acc_y, acc_z] to pair with an
    # accelerometer-only dataset); None: all of imu.zarr's channels
    channels: list[str] | None = None
    chunk_rows: int = Field(1024, ge=1)  # windows per chunk file (24 MB of 5 s, 6-channel, 200 Hz windows)
    codec: Literal["zstd", "blosc-lz4", "none"] = "none"  # resampled float32 IMU barely compresses
    max_reject_fraction: float = Field(0.2, ge=0.0, le=1.0)  # of the recordings; more fail the stage
    workers: int = Field(0, ge=0)  # threads writing chunks (0: one per core); processes on dask
    scheduler: str | None = None  # None | "local-cluster" | "tcp://HOST:PORT" (pipeline.parallel)


def run(cfg: WindowsConfig, data_dir: str | PathLike[str], dataset: str,
        storage_options: dict[str, Any] | None = None) -> StageSummary:
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    recs = read_table(paths.recordings, **paths.options)
    segs = read_table(paths.imu_index, **paths.options)
    imu = ChunkedStore.open(paths.imu_store, expect={"stage": "imu"}, storage_options=paths.options)
    imu.require_complete()
    rate = float(segs["rate_hz"][0]) if len(segs) else 0.0
    # offered: the recordings the imu stage kept (its rejects are counted there, not here)
    recs = recs.filter(pl.col("recording_id").is_in(segs["recording_id"].unique().implode()))
    if cfg.mode == "tile":
        n_per = round(cfg.window_s * rate)
        cut, rejects = cut_tiles(recs, segs, cfg.window_s, n_per)
    else:
        n_per = cfg.whole_length or int(segs["n_samples"].max())
        cut, rejects = cut_whole(recs, segs, n_per, cfg.time_base)
    in_recordings = len(recs)
    kept_recordings = cut["recording_id"].n_unique()
    rows, class_rejects = drop_small_classes(cut, cfg.min_windows_per_class)
    rejects += class_rejects
    _write_accounting(paths, account_samples(recs, segs, cut, rows, cfg.mode, n_per))
    finish_rejects(paths, "windows", rejects, in_recordings, cfg.max_reject_fraction)
    if not len(rows):
        raise InputDataError(f"windows {dataset}: no window could be cut; see {paths.rejects('windows')}")
    classes = sorted(rows["label"].unique().to_list())
    index = _index_frame(rows, classes)
    with write_lock(paths.windows_store, paths.options):
        _write_store(cfg, paths, imu, rows, n_per, rate, classes)
        write_table(index, paths.windows_index, **paths.options)
    dropped = in_recordings - kept_recordings
    log.info("windows %s: %d windows from %d recordings, %d classes",
             dataset, len(rows), kept_recordings, len(classes))
    return StageSummary("windows", dataset, "recordings", in_recordings, in_recordings - dropped, dropped)


def _write_accounting(paths: DatasetPaths, table: pl.DataFrame) -> None:
    """rejects/windows_samples.parquet: per recording, IMU samples in = in windows + trimmed."""
    write_table(table, paths.rejects("windows_samples"), **paths.options)
    log.info("windows %s: %.1f s of IMU in = %.1f s in windows + %.1f s trimmed (%s)",
             paths.dataset, table["samples_in_s"].sum(), table["samples_in_windows_s"].sum(),
             table["trimmed_s"].sum(), ", ".join(f"{r} {table[r].sum()}" for r in REASONS
                                                 if table[r].sum()) or "none")


def _index_frame(rows: pl.DataFrame, classes: list[str]) -> pl.DataFrame:
    label_id = pl.col("label").replace_strict(classes, list(range(len(classes))), return_dtype=pl.Int64)
    return rows.with_columns(window_id=pl.int_range(len(rows), dtype=pl.Int64), label_id=label_id).select(
        [pl.col(k).cast(t) for k, t in WINDOWS_SCHEMA.items()])


def _write_store(cfg: WindowsConfig, paths: DatasetPaths, imu: ChunkedStore, rows: pl.DataFrame,
                 n_per: int, rate: float, classes: list[str]) -> None:
    all_channels = list(imu.group.attrs["channels"])
    keep = _kept_channels(cfg.channels, all_channels, paths.imu_store)
    kept = range(len(all_channels)) if keep is None else keep
    channels = [all_channels[i] for i in kept]
    units = [imu.group.attrs["units"][i] for i in kept]
    prov = Provenance("windows", config_hash(output_config(cfg)), hash_file(paths.imu_index, **paths.options),
                      details={"imu_config_hash": imu.provenance.config_hash, "rate_hz": rate,
                               "window_s": cfg.window_s, "mode": cfg.mode, "channels": channels,
                               "time_base": cfg.time_base if cfg.mode == "whole" else "tile",
                               "units": units})
    store = ChunkedStore.create(  # a store smaller than one chunk is one chunk of its size, not padded
        paths.windows_store, len(rows), min(cfg.chunk_rows, len(rows)),
        {"imu": ArraySpec((len(channels), n_per), "float32", cfg.codec)}, prov,
        index="../windows.parquet",
        attrs={"channels": channels, "units": units, "rate_hz": rate,
               "time_base": cfg.time_base if cfg.mode == "whole" else "tile",
               "window_s": cfg.window_s if cfg.mode == "tile" else n_per / rate, "classes": classes},
        storage_options=paths.options,
    )
    spans = list(zip(rows["sample_start"].to_list(), rows["n_source"].to_list()))
    stretch = cfg.mode == "whole" and cfg.time_base == "stretch"
    jobs = [_ChunksJob(paths.windows_store, paths.imu_store, paths.options, len(all_channels), n_per,
                       {c: spans[store.chunk_slice(c)] for c in group}, keep, stretch)
            for group in chunk_groups(store.pending_chunks(), cfg.workers)]
    if cfg.scheduler is None:  # reads, copies and writes: threads, no process to start
        map_threads(_write_chunks, jobs, cfg.workers, desc="windows", unit="job")
    else:
        map_parallel(_write_chunks, jobs, cfg.workers, cfg.scheduler, desc="windows", unit="job")


@dataclass(frozen=True)
class _ChunksJob:
    """Some chunks of windows.zarr: for each, its windows' (sample_start, n_source) in imu.zarr;
    ``stretch``: each window's n_source samples are resampled to n_per, else zero-padded."""

    windows_url: str
    imu_url: str
    options: dict[str, Any]
    n_channels: int
    n_per: int
    chunks: dict[int, list[tuple[int, int]]]
    keep: tuple[int, ...] | None = None  # the imu.zarr channels written, in order; None: all
    stretch: bool = False


def _write_chunks(job: _ChunksJob) -> None:
    """Cut each chunk's windows from the IMU store and write them, in a thread or any worker."""
    imu = ChunkedStore.open(job.imu_url, storage_options=job.options)
    store = ChunkedStore.open(job.windows_url, mode="r+", storage_options=job.options)
    spans = {chunk: (min(start for start, _ in s), max(start + n for start, n in s))
             for chunk, s in job.chunks.items()}
    most = max((len(s) for s in job.chunks.values()), default=0)
    widest = max((hi - lo for lo, hi in spans.values()), default=0)
    width = job.n_channels if job.keep is None else len(job.keep)
    buffer = np.empty((most, width, job.n_per), np.float32)
    samples = np.empty((widest, job.n_channels), np.float32)
    for chunk, windows in job.chunks.items():
        lo, hi = spans[chunk]
        rows = imu.read_span("imu", lo, hi, samples)  # (hi - lo, C)
        block = buffer[:len(windows)]  # (windows, C, T)
        for k, n, start, n_valid in _runs(windows, job.n_per):
            # k..k+n: n windows of n_valid samples back to back from ``start``
            span = rows[start - lo : start - lo + n * n_valid].reshape(n, n_valid, job.n_channels)
            span = span if job.keep is None else span[:, :, job.keep]
            if job.stretch:  # whole mode, one time base: the trial resampled to n_per samples
                block[k : k + n] = stretch_windows(span, job.n_per)
                continue
            block[k : k + n, :, :n_valid] = span.transpose(0, 2, 1)
            block[k : k + n, :, n_valid:] = 0.0  # zero padding (whole mode)
        store.write_chunk(chunk, {"imu": block})


def _kept_channels(wanted: list[str] | None, channels: list[str], store: str) -> tuple[int, ...] | None:
    """Indices of ``wanted`` among imu.zarr's channels (None: all of them)."""
    if wanted is None:
        return None
    missing = [c for c in wanted if c not in channels]
    if missing or not wanted:
        raise InputDataError(f"windows.channels {wanted}: {missing or 'none'} not in {store}'s channels "
                             f"{channels}; list some of those")
    return tuple(channels.index(c) for c in wanted)


def _runs(windows: list[tuple[int, int]], n_per: int) -> list[tuple[int, int, int, int]]:
    """(first window, count, sample_start, n_valid) of the runs of windows that follow one
    another without a gap in the IMU samples: each run is cut by one reshape, not per window."""
    runs: list[list[int]] = []
    for k, (start, n_valid) in enumerate(windows):
        last = runs[-1] if runs else None
        if last is not None and last[3] == n_valid == n_per and last[2] + last[1] * n_valid == start:
            last[1] += 1
        else:
            runs.append([k, 1, start, n_valid])
    return [(k, n, start, n_valid) for k, n, start, n_valid in runs]
