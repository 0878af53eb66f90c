"""Stage ``imu``: recordings -> imu.zarr (clean, canonical units, uniform rate) + imu.parquet.

Every recording is read by its dataset adapter, cleaned and resampled (``comodo.pipeline.
signal``); the segments are laid end to end along one sample axis in recording order. A
recording whose IMU cannot be read or is empty after cleaning is a counted reject, and so
is one whose channels or units differ from the first kept recording's.

On this machine (in-process or the local process pool) recordings stream back in order,
a bounded number in flight, and this process appends them to the store a chunk at a time
(``RowAppender``): memory stays bounded. Pool workers hand their rows over through files in
memory (``comodo.pipeline.handoff``), not the pool's pipe. On a dask scheduler
the arrays never travel back to this process: each worker writes its recordings' samples to
a staging folder beside the store (``imu.staging/``, raw float32 rows, any fsspec URL) and
returns only their lengths; once every length is known the row layout is fixed, and workers
write the store's chunks from the staged rows. The staging folder is removed at the end.
Both ways write the same bytes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import partial
from os import PathLike
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from comodo.pipeline import handoff
from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.parallel import chunk_groups, iter_parallel, map_parallel, runs_in_process
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects, output_config
from comodo.pipeline.stages.imu_worker import Cleaning, Job, Result, process_one
from comodo.pipeline.stages.ingest import make_adapter
from comodo.stores import fs
from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import InputDataError
from comodo.stores.index import read_table, write_table
from comodo.stores.provenance import Provenance, config_hash, hash_file

log = logging.getLogger(__name__)


class ScaleFactors(StageConfig):
    """Divisors of raw sensor counts. COMODO's MMEA values: a ±2 g accelerometer (16384
    counts/g) and a ±2000 deg/s gyroscope (16.4 counts per deg/s). The UESTC-MMEA-CL
    loader itself divides the accelerometer by 8192 (±4 g): a factor 2 in acceleration."""

    acc: float = Field(16384.0, gt=0)
    gyro: float = Field(16.4, gt=0)


class ImuConfig(StageConfig):
    target_rate_hz: float | None = Field(200.0, gt=0)  # None: keep the native rate (e.g. MMEA)
    scale: Literal["none", "mmea"] = "none"
    resampler: Literal["polyphase", "reference"] = "polyphase"  # signal.RESAMPLERS
    scale_factors: ScaleFactors = ScaleFactors()  # raw counts per g / per deg/s (scale: mmea)
    units_check: Literal["reject", "error", "off"] = "reject"  # |acc| at rest must be ~1 g
    gravity_tolerance: float = Field(0.25, gt=0)  # in g, around 1 g
    quiet_cv: float = Field(0.05, gt=0)  # "at rest": a 1 s window whose |acc| std/mean is at most this
    max_gap_s: float = Field(0.5, gt=0)  # seconds; a longer gap splits a segment
    min_duration_s: float = Field(1.0, ge=0)  # seconds
    # 24 MB chunks of 6 float32 channels: 69 files for 100 h instead of 275 with 6 MB ones
    # (a file created right after the previous run's were deleted cost ext4 1-2 ms here)
    chunk_rows: int = Field(1_048_576, ge=1)
    codec: Literal["zstd", "blosc-lz4", "none"] = "none"  # resampled float32 IMU barely compresses
    direct_io: bool = False  # chunk files around the page cache (comodo.stores.directio)
    max_reject_fraction: float = Field(0.2, ge=0.0, le=1.0)
    workers: int = Field(0, ge=0)
    scheduler: str | None = None


def _check_channels(results: list[Result]) -> tuple[list[str], list[str], list[Reject]]:
    """All kept recordings must share channels and units: the first kept one's layout wins."""
    common = (tuple(results[0].channels), tuple(results[0].units))
    rejects = [_mixed(r, list(common[0])) for r in results
               if (tuple(r.channels), tuple(r.units)) != common]
    return list(common[0]), list(common[1]), rejects


def _finish_rejects(cfg: ImuConfig, paths: DatasetPaths, rejects: list[Reject], n_in: int,
                    n_kept: int, dataset: str) -> None:
    """Write the rejects table; fail when nothing is kept or too much was rejected."""
    if not n_kept:
        finish_rejects(paths, "imu", rejects, n_in, 0.0)
        raise InputDataError(f"imu {dataset}: no recording has usable IMU; see {paths.rejects('imu')}")
    finish_rejects(paths, "imu", rejects, n_in, cfg.max_reject_fraction)


def _mixed(result: Result, channels: list[str]) -> Reject:
    return Reject("imu", result.recording_id, "recording",
                  f"channels {result.channels} in {result.units} differ from the dataset's {channels}")


def run(cfg: ImuConfig, data_dir: str | PathLike[str], dataset: str, adapter: str, root: str,
        options: dict[str, Any], storage_options: dict[str, Any] | None = None) -> StageSummary:
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    recs = read_table(paths.recordings, **paths.options)
    reader = make_adapter(adapter, root, dataset, options)
    cleaning = Cleaning(cfg.target_rate_hz, cfg.max_gap_s, cfg.scale, cfg.min_duration_s, cfg.resampler,
                        counts=cfg.scale_factors.model_dump(), units_check=cfg.units_check,
                        gravity_tolerance=cfg.gravity_tolerance, quiet_cv=cfg.quiet_cv)
    jobs = [Job(reader, rec, cleaning, None, paths.options) for rec in recs.iter_rows(named=True)]
    if cfg.scheduler is None:
        index, n_kept, n_rejected = _stream(cfg, paths, jobs, dataset)
    else:
        index, n_kept, n_rejected = _staged(cfg, paths, jobs, dataset)
    write_table(index, paths.imu_index, **paths.options)
    return StageSummary("imu", dataset, "recordings", len(jobs), n_kept, n_rejected)


def _provenance(cfg: ImuConfig, paths: DatasetPaths, first: Result) -> Provenance:
    return Provenance("imu", config_hash(output_config(cfg)), hash_file(paths.recordings, **paths.options),
                      details={"channels": first.channels, "units": first.units, "steps": first.steps,
                               "target_rate_hz": cfg.target_rate_hz, "scale": cfg.scale,
                               "scale_factors": cfg.scale_factors.model_dump()})


def _store_layout(cfg: ImuConfig, channels: list[str], units: list[str]
                  ) -> tuple[dict[str, ArraySpec], dict[str, Any]]:
    """imu.zarr's arrays and attrs, whichever way it is written."""
    return ({"imu": ArraySpec((len(channels),), "float32", cfg.codec)},
            {"channels": channels, "units": units, "segments_index": "../imu.parquet"})


def _appender(cfg: ImuConfig, paths: DatasetPaths, first: Result) -> RowAppender:
    arrays, attrs = _store_layout(cfg, first.channels, first.units)
    return RowAppender(paths.imu_store, cfg.chunk_rows, arrays, _provenance(cfg, paths, first),
                       attrs=attrs, storage_options=paths.options, direct_io=cfg.direct_io)


def _stream(cfg: ImuConfig, paths: DatasetPaths, jobs: list[Job], dataset: str
            ) -> tuple[pl.DataFrame, int, int]:
    """Recordings in order from this process or the local pool, appended as they come."""
    if runs_in_process(cfg.workers, None, len(jobs)):
        return _append_all(cfg, paths, jobs, dataset)
    with handoff.folder() as folder:
        jobs = [replace(job, staged=os.path.join(folder, f"{i:08d}.f32"), options={}, handoff=True)
                for i, job in enumerate(jobs)]
        return _append_all(cfg, paths, jobs, dataset)


def _append(appender: RowAppender, reader: handoff.Reader, result: Result) -> None:
    """A result's segments' rows, end to end; when a pool worker left them in a hand-over
    file, the appender copies them from it into the chunk files (and hands it back)."""
    if result.staged is None:
        for seg in result.segments:
            appender.append({"imu": seg.values})
        return
    n_rows = sum(result.lengths)
    fh = reader.open(result.staged, n_rows, len(result.channels))  # the appender hands it back
    appender.append_file(fh, n_rows, on_done=partial(reader.close, result.staged, fh))


def _append_all(cfg: ImuConfig, paths: DatasetPaths, jobs: list[Job], dataset: str
                ) -> tuple[pl.DataFrame, int, int]:
    appender: RowAppender | None = None
    kept: list[Result] = []
    rejects: list[Reject] = []
    reader = handoff.Reader()
    stream = iter_parallel(process_one, jobs, cfg.workers, desc="imu", unit="rec")
    try:
        for out in stream:
            if isinstance(out, Reject):
                rejects.append(out)
                continue
            if appender is None:
                appender = _appender(cfg, paths, out)
            elif (out.channels, out.units) != (kept[0].channels, kept[0].units):
                rejects.append(_mixed(out, kept[0].channels))
                continue
            _append(appender, reader, out)
            kept.append(out)
        _finish_rejects(cfg, paths, rejects, len(jobs), len(kept), dataset)
        assert appender is not None  # made with the first kept recording
        appender.close()
    except BaseException:
        stream.close()  # cancels what is still queued
        if appender is not None:
            appender.abort()  # a failed stage leaves no half-written store behind
        raise
    return _segments_index(kept), len(kept), len(rejects)


def _staged(cfg: ImuConfig, paths: DatasetPaths, jobs: list[Job], dataset: str
            ) -> tuple[pl.DataFrame, int, int]:
    """On a dask scheduler: workers stage their rows, then write the chunks (module doc)."""
    staging = paths.imu_staging
    _remove(staging, paths.options)
    filesystem, path = fs.filesystem(staging, **paths.options)
    filesystem.makedirs(path, exist_ok=True)
    jobs = [Job(j.reader, j.rec, j.cleaning, fs.join(staging, f"{i:08d}.f32"), j.options)
            for i, j in enumerate(jobs)]
    try:
        outputs = map_parallel(process_one, jobs, cfg.workers, cfg.scheduler, desc="imu", unit="rec")
        rejects = [o for o in outputs if isinstance(o, Reject)]
        results = [o for o in outputs if isinstance(o, Result)]
        channels, units, mixed = _check_channels(results) if results else ([], [], [])
        rejects += mixed
        bad = {r.item for r in mixed}
        results = [r for r in results if r.recording_id not in bad]
        _finish_rejects(cfg, paths, rejects, len(jobs), len(results), dataset)
        _write_staged(cfg, paths, results, channels, units)
    finally:
        _remove(staging, paths.options)
    return _segments_index(results), len(results), len(rejects)


def _remove(url: str, options: dict[str, Any]) -> None:
    filesystem, path = fs.filesystem(url, **options)
    if filesystem.exists(path):
        filesystem.rm(path, recursive=True)


@dataclass(frozen=True)
class _Piece:
    """Rows ``[lo, hi)`` of one recording's samples (all its segments end to end)."""

    result: int
    lo: int
    hi: int


def _layout(results: list[Result], n_rows: int, chunk_rows: int) -> list[list[_Piece]]:
    """For every store chunk, the pieces of recordings that fill it, in row order."""
    starts = np.cumsum([0] + [sum(r.lengths) for r in results])
    chunks: list[list[_Piece]] = []
    for lo in range(0, max(n_rows, 1), chunk_rows):
        hi = min(lo + chunk_rows, n_rows)
        first = int(np.searchsorted(starts, lo, side="right")) - 1
        pieces = []
        for k in range(max(first, 0), len(results)):
            a, b = max(lo, int(starts[k])), min(hi, int(starts[k + 1]))
            if a >= hi:
                break
            if b > a:
                pieces.append(_Piece(k, a - int(starts[k]), b - int(starts[k])))
        chunks.append(pieces)
    return chunks


@dataclass(frozen=True)
class _ChunksJob:
    """Some chunks of imu.zarr and, for each, the staged rows that fill it."""

    url: str
    options: dict[str, Any]
    n_channels: int
    chunks: dict[int, list[tuple[str, int, int]]]  # chunk -> [(staged URL, row lo, row hi)]
    direct_io: bool = False


def _read_staged(url: str, lo: int, hi: int, n_channels: int, options: dict[str, Any]) -> np.ndarray:
    row_bytes = 4 * n_channels
    filesystem, path = fs.filesystem(url, **options)
    with filesystem.open(path, "rb") as fh:
        fh.seek(lo * row_bytes)
        return np.frombuffer(fh.read((hi - lo) * row_bytes), np.float32).reshape(-1, n_channels)


def _write_staged_chunks(job: _ChunksJob) -> None:
    """Assemble chunks from staged rows and write them; runs in any worker process."""
    store = ChunkedStore.open(job.url, mode="r+", storage_options=job.options, direct_io=job.direct_io)
    for chunk, sources in job.chunks.items():
        parts = [_read_staged(url, lo, hi, job.n_channels, job.options) for url, lo, hi in sources]
        store.write_chunk(chunk, {"imu": np.concatenate(parts) if parts else
                                  np.zeros((0, job.n_channels), np.float32)})


def _segments_index(results: list[Result]) -> pl.DataFrame:
    """imu.parquet: every segment's first row in the store, length, start time and rate."""
    rows, start = [], 0
    for r in results:
        for k, (seg, n) in enumerate(zip(r.segments, r.lengths)):
            rows.append({"recording_id": r.recording_id, "segment": k, "row_start": start,
                         "n_samples": n, "t0_s": seg.t0_s, "rate_hz": seg.rate_hz})
            start += n
    return pl.DataFrame(rows, schema={"recording_id": pl.String, "segment": pl.Int64,
                                      "row_start": pl.Int64, "n_samples": pl.Int64,
                                      "t0_s": pl.Float64, "rate_hz": pl.Float64})


def _write_staged(cfg: ImuConfig, paths: DatasetPaths, results: list[Result], channels: list[str],
                  units: list[str]) -> None:
    n_rows = sum(sum(r.lengths) for r in results)
    arrays, attrs = _store_layout(cfg, channels, units)
    store = ChunkedStore.create(paths.imu_store, n_rows, cfg.chunk_rows, arrays,
                                _provenance(cfg, paths, results[0]), attrs=attrs,
                                storage_options=paths.options, direct_io=cfg.direct_io)
    layout = _layout(results, n_rows, cfg.chunk_rows)
    sources = {c: [(str(results[p.result].staged), p.lo, p.hi) for p in layout[c]]
               for c in store.pending_chunks()}
    jobs = [_ChunksJob(paths.imu_store, paths.options, len(channels), {c: sources[c] for c in group},
                       cfg.direct_io)
            for group in chunk_groups(list(sources), cfg.workers)]
    map_parallel(_write_staged_chunks, jobs, cfg.workers, cfg.scheduler, desc="imu store", unit="job")
