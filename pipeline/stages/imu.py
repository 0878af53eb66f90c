"""Stage ``imu``: recordings -> imu.zarr (clean, canonical units, uniform rate) + imu.parquet.

Every recording is read by its dataset adapter, cleaned and resampled (``comodo.pipeline.
signal``) in parallel; the segments are concatenated along one sample axis in recording
order. A recording whose IMU cannot be read or is empty after cleaning is a counted reject.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

import numpy as np
import polars as pl

from comodo.pipeline import signal
from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.parallel import map_parallel
from comodo.pipeline.stages.common import DatasetPaths, StageSummary, finish_rejects, output_config
from comodo.pipeline.stages.ingest import make_adapter
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import InputDataError
from comodo.stores.index import read_table, write_table
from comodo.stores.provenance import Provenance, config_hash, hash_file

log = logging.getLogger(__name__)


class ImuConfig(StageConfig):
    target_rate_hz: float | None = 200.0  # None: keep the native rate (e.g. MMEA)
    scale: Literal["none", "mmea"] = "none"
    max_gap_s: float = 0.5
    min_duration_s: float = 1.0
    chunk_rows: int = 65_536
    codec: Literal["zstd", "blosc-lz4", "none"] = "blosc-lz4"
    max_reject_fraction: float = 0.2
    workers: int = 0
    scheduler: str | None = None


@dataclass
class _Result:
    recording_id: str
    segments: list[signal.Segment]
    channels: list[str]
    units: list[str]
    steps: list[str]


def _process_one(args: tuple[Any, dict[str, Any], ImuConfig]) -> _Result | Reject:
    reader, rec, cfg = args
    rid = rec["recording_id"]
    try:
        imu = reader.load_imu(rec)
        segments, units, report = signal.process(imu, cfg.target_rate_hz, cfg.max_gap_s, cfg.scale)
    except InputDataError as err:
        return Reject("imu", rid, "recording", str(err))
    segments = [s for s in segments if len(s.values) / s.rate_hz >= cfg.min_duration_s]
    if not segments:
        return Reject("imu", rid, "recording",
                      f"no IMU segment of at least {cfg.min_duration_s}s after cleaning "
                      f"({report.dropped_nonfinite} non-finite rows, {report.gaps} gaps)")
    if report.dropped_nonfinite or report.dropped_duplicates or report.was_unsorted:
        log.info("%s: dropped %d non-finite and %d duplicate rows%s", rid, report.dropped_nonfinite,
                 report.dropped_duplicates, ", re-sorted" if report.was_unsorted else "")
    return _Result(rid, segments, imu.channels, units, report.steps)


def _check_channels(results: list[_Result]) -> tuple[list[str], list[str], list[Reject]]:
    """All kept recordings must share channels and units; the majority layout wins."""
    layouts = [(tuple(r.channels), tuple(r.units)) for r in results]
    common = max(set(layouts), key=layouts.count)
    rejects = [Reject("imu", r.recording_id, "recording",
                      f"channels {r.channels} in {r.units} differ from the dataset's {list(common[0])}")
               for r, lay in zip(results, layouts) if lay != common]
    return list(common[0]), list(common[1]), rejects


def run(cfg: ImuConfig, data_dir: str | PathLike[str], dataset: str, adapter: str, root: str,
        options: dict[str, Any], storage_options: dict[str, Any] | None = None) -> StageSummary:
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    recs = read_table(paths.recordings, **paths.options)
    reader = make_adapter(adapter, root, dataset, options)
    items = [(reader, rec, cfg) for rec in recs.iter_rows(named=True)]
    outputs = map_parallel(_process_one, items, cfg.workers, cfg.scheduler, desc="imu", unit="rec")
    rejects = [o for o in outputs if isinstance(o, Reject)]
    results = [o for o in outputs if isinstance(o, _Result)]
    if not results:
        finish_rejects(paths, "imu", rejects, len(items), 0.0)
        raise InputDataError(f"imu {dataset}: no recording has usable IMU; see {paths.rejects('imu')}")
    channels, units, mixed = _check_channels(results)
    rejects += mixed
    bad = {r.item for r in mixed}
    results = [r for r in results if r.recording_id not in bad]
    finish_rejects(paths, "imu", rejects, len(items), cfg.max_reject_fraction)
    index = _write(cfg, paths, results, channels, units)
    write_table(index, paths.imu_index, **paths.options)
    return StageSummary("imu", dataset, "recordings", len(items), len(results), len(rejects))


def _write(cfg: ImuConfig, paths: DatasetPaths, results: list[_Result], channels: list[str],
           units: list[str]) -> pl.DataFrame:
    rows, start = [], 0
    for r in results:
        for k, seg in enumerate(r.segments):
            rows.append({"recording_id": r.recording_id, "segment": k, "row_start": start,
                         "n_samples": len(seg.values), "t0_s": seg.t0_s, "rate_hz": seg.rate_hz})
            start += len(seg.values)
    values = np.concatenate([s.values for r in results for s in r.segments])
    inputs = hash_file(paths.recordings, **paths.options)
    prov = Provenance("imu", config_hash(output_config(cfg)), inputs, details={
        "channels": channels, "units": units, "steps": results[0].steps,
        "target_rate_hz": cfg.target_rate_hz, "scale": cfg.scale,
    })
    store = ChunkedStore.create(paths.imu_store, len(values), cfg.chunk_rows,
                                {"imu": ArraySpec((len(channels),), "float32", cfg.codec)}, prov,
                                attrs={"channels": channels, "units": units,
                                       "segments_index": "../imu.parquet"},
                                storage_options=paths.options)
    for chunk in store.pending_chunks():
        store.write_chunk(chunk, {"imu": values[store.chunk_slice(chunk)]})
    return pl.DataFrame(rows, schema={"recording_id": pl.String, "segment": pl.Int64,
                                      "row_start": pl.Int64, "n_samples": pl.Int64,
                                      "t0_s": pl.Float64, "rate_hz": pl.Float64})
