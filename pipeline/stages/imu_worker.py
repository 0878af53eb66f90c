"""What a worker runs for the imu stage: one recording read, cleaned and resampled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from comodo.pipeline import signal, units_check
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.units_check import QUIET_CV
from comodo.stores.errors import InputDataError, UnitsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cleaning:
    """The ``ImuConfig`` fields a worker needs (a plain dataclass: no pydantic to unpickle)."""

    target_rate_hz: float | None
    max_gap_s: float
    scale: str
    min_duration_s: float
    resampler: str = "polyphase"
    counts: dict[str, float] | None = None  # counts per g / deg/s for raw counts
    units_check: str = "reject"  # reject | error | off (ImuConfig)
    gravity_tolerance: float = 0.25
    quiet_cv: float = QUIET_CV


@dataclass(frozen=True)
class Job:
    reader: Any
    rec: dict[str, Any]
    cleaning: Cleaning


@dataclass
class Result:
    recording_id: str
    segments: list[signal.Segment]
    lengths: list[int]
    channels: list[str]
    units: list[str]
    report: signal.CleanReport  # the cleaning steps and what they dropped
    rows_in: int  # rows read


def process_one(job: Job) -> Result | Reject:
    cfg, rid = job.cleaning, job.rec["recording_id"]
    try:
        imu = job.reader.load_imu(job.rec)
        segments, units, report = signal.process(imu, cfg.target_rate_hz, cfg.max_gap_s, cfg.scale,
                                                 cfg.resampler, cfg.counts)
        check_units(cfg, rid, imu.units, imu.channels, units, segments)
    except InputDataError as err:
        return Reject("imu", rid, "recording", str(err))
    segments = signal.drop_short(segments, report, cfg.min_duration_s)
    if not segments:
        return Reject("imu", rid, "recording",
                      f"no IMU segment of at least {cfg.min_duration_s}s after cleaning "
                      f"({report.seconds_in:.3f} s in, {report.dropped_nonfinite} non-finite rows, "
                      f"{report.gaps} gaps)")
    if report.dropped_nonfinite or report.dropped_duplicates or report.was_unsorted:
        log.info("%s: dropped %d non-finite and %d duplicate rows%s", rid, report.dropped_nonfinite,
                 report.dropped_duplicates, ", re-sorted" if report.was_unsorted else "")
    lengths = [len(s.values) for s in segments]
    return Result(rid, segments, lengths, imu.channels, units, report, len(imu.t_s))


def check_units(cfg: Cleaning, rid: str, raw_units: list[str], channels: list[str], units: list[str],
                segments: list[signal.Segment]) -> None:
    """Gravity at rest must read ~1 g (``units_check``); a reject or a ``UnitsError``."""
    acc = [i for i, (c, u) in enumerate(zip(channels, units)) if u == "g" and c.lower().startswith("acc")]
    if cfg.units_check == "off" or len(acc) != 3 or not segments:
        return
    longest = max(segments, key=lambda s: len(s.values))
    from_counts = raw_units[acc[0]] == "count"
    counts_per_g = (cfg.counts or signal.MMEA_COUNTS)["acc"] if from_counts else None
    columns = slice(acc[0], acc[0] + 3) if acc == list(range(acc[0], acc[0] + 3)) else acc  # a view if it can
    verdict = units_check.gravity_check(longest.values[:, columns], longest.rate_hz, cfg.gravity_tolerance,
                                        counts_per_g, quiet_cv=cfg.quiet_cv)
    if verdict is None or verdict.ok:
        return
    text = f"units check failed: {verdict.message(cfg.gravity_tolerance)}"
    if cfg.units_check == "error":
        raise UnitsError(f"imu: recording {rid}: {text}; or set imu.units_check: reject (or off)")
    raise InputDataError(text)
