"""Stage ``imu``: recordings -> imu.zarr (clean, canonical units, uniform rate) + imu.parquet.

Every recording is read by its dataset adapter, cleaned and resampled (``comodo.pipeline.
signal``); the segments are laid end to end along one sample axis in recording order. A
recording whose IMU cannot be read or is empty after cleaning is a counted reject, and so
is one whose channels or units differ from the first kept recording's. Every second a kept
recording loses to cleaning (non-finite rows, gaps, short segments) is counted per recording
in rejects/imu_samples.parquet (``pipeline.sample_accounting``).

Recordings are processed on threads of this process (``threads``: polars' reader and scipy's
filter release the GIL), a local process pool or a dask scheduler
(``pipeline.parallel.imap_ordered``) and come back in order, a bounded number in flight;
this process appends them to the store a chunk at a time (``RowAppender``), holding the
store's write lock, so memory stays bounded and every way writes the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from os import PathLike
from typing import Any, Literal

import polars as pl
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.parallel import imap_ordered
from comodo.pipeline.progress import progress
from comodo.pipeline.sample_accounting import IMU_SECONDS, imu_seconds
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects, output_config
from comodo.pipeline.stages.imu_worker import Cleaning, Job, Result, process_one
from comodo.pipeline.stages.ingest import make_adapter
from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ArraySpec
from comodo.stores.errors import InputDataError
from comodo.stores.index import read_table, write_table
from comodo.stores.lock import write_lock
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
    max_gap_s: float = Field(0.5, gt=0)  # seconds: a longer gap between samples splits a segment
    min_duration_s: float = Field(1.0, ge=0)  # seconds: shorter segments are dropped
    chunk_rows: int = Field(1_048_576, ge=1)  # samples per chunk file (24 MB of 6 float32 channels)
    codec: Literal["zstd", "blosc-lz4", "none"] = "none"  # resampled float32 IMU barely compresses
    max_reject_fraction: float = Field(0.2, ge=0.0, le=1.0)  # of the recordings; more fail the stage
    workers: int = Field(0, ge=0)  # processes or threads (0: one per core)
    threads: bool = True  # threads of this process on one machine (polars and scipy release the GIL)
    scheduler: str | None = None  # None | "local-cluster" | "tcp://HOST:PORT" (pipeline.parallel)


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
    jobs = [Job(reader, rec, cleaning) for rec in recs.iter_rows(named=True)]
    with write_lock(paths.imu_store, paths.options):
        index, seconds, n_rejected = _append_all(cfg, paths, jobs, dataset)
        write_table(index, paths.imu_index, **paths.options)
        _write_seconds(paths, seconds)
    n_kept = len(seconds)
    return StageSummary("imu", dataset, "recordings", len(jobs), n_kept, n_rejected)


def _write_seconds(paths: DatasetPaths, table: pl.DataFrame) -> None:
    """rejects/imu_samples.parquet: per kept recording, IMU seconds in = out + dropped by reason."""
    write_table(table, paths.rejects("imu_samples"), **paths.options)
    log.info("imu %s: %.1f s of IMU in = %.1f s resampled + %s; %d non-finite and %d duplicate rows",
             paths.dataset, table["seconds_in"].sum(), table["seconds_out"].sum(),
             " + ".join(f"{table[c].sum():.2f} s {c[:-2]}" for c in IMU_SECONDS),
             table["nonfinite_rows"].sum(), table["duplicate_rows"].sum())


def _seconds_row(result: Result) -> dict[str, Any]:
    """One row of rejects/imu_samples.parquet (``sample_accounting.IMU_SCHEMA``)."""
    r, n = result.report, sum(result.lengths)
    rate = result.segments[0].rate_hz
    return {"recording_id": result.recording_id, "rows_in": result.rows_in,
            "nonfinite_rows": r.dropped_nonfinite, "duplicate_rows": r.dropped_duplicates,
            "rate_hz": rate, "samples_out": n, "seconds_in": r.seconds_in,
            "seconds_out": sum(k / s.rate_hz for k, s in zip(result.lengths, result.segments)),
            "nonfinite_s": r.nonfinite_s, "gaps_s": r.gaps_s, "short_segment_s": r.short_s,
            "resampling_edge_s": r.edge_s}


def _provenance(cfg: ImuConfig, paths: DatasetPaths, first: Result) -> Provenance:
    return Provenance("imu", config_hash(output_config(cfg)), hash_file(paths.recordings, **paths.options),
                      details={"channels": first.channels, "units": first.units, "steps": first.report.steps,
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
                       attrs=attrs, storage_options=paths.options)


def _append_all(cfg: ImuConfig, paths: DatasetPaths, jobs: list[Job], dataset: str
                ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """imu.parquet, imu_samples.parquet and the number of rejects."""
    appender: RowAppender | None = None
    kept: list[Result] = []
    rejects: list[Reject] = []
    stream = imap_ordered(process_one, jobs, cfg.workers, cfg.scheduler, threads=cfg.threads)
    try:
        for out in progress(stream, desc="imu", total=len(jobs), unit="rec"):
            if isinstance(out, Reject):
                rejects.append(out)
                continue
            if appender is None:
                appender = _appender(cfg, paths, out)
            elif (out.channels, out.units) != (kept[0].channels, kept[0].units):
                rejects.append(_mixed(out, kept[0].channels))
                continue
            for seg in out.segments:
                appender.append({"imu": seg.values})
            out.segments = [replace(seg, values=seg.values[:0]) for seg in out.segments]  # memory
            kept.append(out)
        _finish_rejects(cfg, paths, rejects, len(jobs), len(kept), dataset)
        assert appender is not None  # made with the first kept recording
        appender.close()
    except BaseException:
        stream.close()  # cancels what is still queued
        if appender is not None:
            appender.abort()  # a failed stage leaves no half-written store behind
        raise
    return _segments_index(kept), imu_seconds([_seconds_row(r) for r in kept]), len(rejects)


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
