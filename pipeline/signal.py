"""IMU cleaning, unit conversion and polyphase resampling onto a uniform 200 Hz grid.

Adapters read raw IMU; this module turns it into clean, canonical segments:
1. drop rows with a missing timestamp or non-finite value, sort by time, drop duplicate
   timestamps (first kept); a recording with none of these is not copied;
2. split at gaps longer than ``max_gap_s``;
3. convert units to the canonical set (g, deg/s) — or apply the MMEA sensitivity scaling
   (acc counts / 16384 -> g, gyro counts / 16.4 -> deg/s by default, ``imu.scale_factors``);
   the factors multiply the float64 values just before their float32 cast;
4. resample each segment: linear interpolation onto a uniform grid at the nearest whole
   native rate ``r`` starting on a multiple of ``1/target`` seconds, then polyphase
   filtering with exact rational factors ``target/r`` reduced: ``scipy.signal.resample_poly``
   with its default Kaiser filter and ``padtype="line"``, in float32.
   Input already on that grid (uniform clocks) skips the interpolation.
   Output sample ``j`` of a segment lies at ``t0 + j/target`` on the canonical clock, where
   ``t0`` is a multiple of ``1/target``: windows can be cut by time with integer indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.signal

from comodo.pipeline.datasets.base import ImuData
from comodo.pipeline.resamplers import reference_resample
from comodo.stores.errors import InputDataError

G = 9.80665
ACC_UNITS = {"g": 1.0, "m/s^2": 1.0 / G, "mg": 1e-3}
GYRO_UNITS = {"deg/s": 1.0, "rad/s": 180.0 / math.pi}
MMEA_COUNTS = {"acc": 16384.0, "gyro": 16.4}  # counts per g and per deg/s (COMODO's MMEA factors)
MMEA_SCALE = {kind: 1.0 / per for kind, per in MMEA_COUNTS.items()}  # the multipliers
KEPT_UNITS = ("a.u.", "deg")  # declared as they are: arbitrary units, orientation angles
KNOWN_UNITS = ("count", *ACC_UNITS, *GYRO_UNITS, *KEPT_UNITS)  # what ``unit_factors`` accepts


@dataclass
class Segment:
    """A gap-free piece of a recording's IMU on a uniform grid: (T, C) values from ``t0_s``."""

    t0_s: float
    rate_hz: float
    values: np.ndarray


@dataclass
class CleanReport:
    dropped_nonfinite: int = 0
    dropped_duplicates: int = 0
    was_unsorted: bool = False
    gaps: int = 0
    steps: list[str] = field(default_factory=list)
    # Seconds on the recording's clock, one mean sample period ``period_s`` per sample:
    # seconds_in = nonfinite_s + gaps_s + short_s + sum(pieces_s), and once ``drop_short``
    # has run, sum(pieces_s) = the kept segments' seconds + edge_s.
    period_s: float = 0.0  # mean step between samples inside the pieces
    seconds_in: float = 0.0  # last - first finite timestamp, plus one period
    nonfinite_s: float = 0.0  # lost at the ends with rows of non-finite values
    gaps_s: float = 0.0  # gaps longer than max_gap_s, each less the one period its samples cover
    short_s: float = 0.0  # pieces too short to keep (one sample, no resampled sample, < min_duration_s)
    edge_s: float = 0.0  # kept pieces' seconds beyond their samples / rate after resampling
    pieces_s: list[float] = field(default_factory=list)  # each piece's span + one period, in order


def clean(imu: ImuData, max_gap_s: float) -> tuple[list[tuple[np.ndarray, np.ndarray]], CleanReport]:
    """Drop bad rows, sort, de-duplicate and split at gaps; returns [(t_s, values)] pieces
    (views of the input arrays when no row had to go)."""
    report = CleanReport()
    t, x = np.asarray(imu.t_s, dtype=np.float64), np.asarray(imu.values, dtype=np.float64)
    t_in = t
    t, x, report.dropped_nonfinite = _finite_rows(t, x)
    dt = np.diff(t)  # (T-1,)
    if dt.size and dt.min() < 0:
        report.was_unsorted = True
        order = np.argsort(t, kind="stable")
        t, x = t[order], x[order]
        dt = np.diff(t)
    if dt.size and dt.min() <= 0:
        keep = np.concatenate([[True], dt > 0])
        report.dropped_duplicates = int((~keep).sum())
        t, x = t[keep], x[keep]
        dt = np.diff(t)
    cuts = np.flatnonzero(dt > max_gap_s) + 1
    report.gaps = int(cuts.size)
    _count_seconds(report, t_in, t, cuts)
    pieces = [(tp, xp) for tp, xp in zip(np.split(t, cuts), np.split(x, cuts)) if tp.size >= 2]
    return pieces, report


def _count_seconds(report: CleanReport, t_in: np.ndarray, t: np.ndarray, cuts: np.ndarray) -> None:
    """The seconds fields of ``report`` from the raw and the cleaned timestamps and the gap
    cuts: a few operations per piece, none per sample (``t_in`` is scanned only when rows
    had to go)."""
    if not t.size:
        return
    bounds = np.concatenate([[0], cuts, [t.size]])
    rows = np.diff(bounds)  # (pieces,)
    spans = t[bounds[1:] - 1] - t[bounds[:-1]]  # (pieces,)
    multi = rows >= 2
    period = float(spans[multi].sum() / (rows[multi] - 1).sum()) if multi.any() else 0.0
    span = raw_span = float(t[-1] - t[0])
    if report.dropped_nonfinite:
        finite = t_in[np.isfinite(t_in)]
        raw_span = float(finite.max() - finite.min())
    report.period_s, report.seconds_in, report.nonfinite_s = period, raw_span + period, raw_span - span
    report.gaps_s = float((t[cuts] - t[cuts - 1]).sum()) - cuts.size * period
    report.short_s = float((~multi).sum()) * period
    report.pieces_s = (spans[multi] + period).tolist()


def drop_short(segments: list[Segment], report: CleanReport, min_duration_s: float) -> list[Segment]:
    """The segments of at least ``min_duration_s``; the seconds of the others go to
    ``report.short_s``, and the kept ones' span beyond their samples to ``report.edge_s``."""
    kept, kept_s = [], []
    for segment, piece_s in zip(segments, report.pieces_s):
        seconds = len(segment.values) / segment.rate_hz
        if seconds >= min_duration_s:
            kept.append(segment)
            kept_s.append(piece_s)
            report.edge_s += piece_s - seconds
        else:
            report.short_s += piece_s
    report.pieces_s = kept_s
    return kept


def _finite_rows(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The rows with a finite timestamp and finite values, and how many were dropped;
    the arrays themselves when every row is finite (the common case, checked in one pass)."""
    if np.isfinite(t).all() and np.isfinite(x).all():
        return t, x, 0
    ok = np.isfinite(t) & np.isfinite(x).all(axis=1)  # (T,)
    return t[ok], x[ok], int((~ok).sum())


def unit_factors(units: list[str], channels: list[str], scale: str,
                 counts: dict[str, float] | None = None) -> tuple[np.ndarray, list[str]]:
    """Per-channel multipliers to canonical units, and the resulting unit names; raw counts
    are divided by ``counts`` (counts per g / per deg/s; default ``MMEA_COUNTS``)."""
    factors, out = [], []
    for unit, channel in zip(units, channels):
        if unit == "count":
            if scale != "mmea":
                raise InputDataError(
                    f"channel {channel} is in raw counts; set 'imu.scale: mmea' (or convert the input)"
                )
            kind = "gyro" if "gyro" in channel.lower() else "acc"
            factors.append(1.0 / counts[kind] if counts else MMEA_SCALE[kind])
            out.append("deg/s" if kind == "gyro" else "g")
        elif unit in ACC_UNITS:
            factors.append(ACC_UNITS[unit])
            out.append("g")
        elif unit in GYRO_UNITS:
            factors.append(GYRO_UNITS[unit])
            out.append("deg/s")
        elif unit in KEPT_UNITS:
            factors.append(1.0)
            out.append(unit)
        else:
            raise InputDataError(f"channel {channel} has unknown unit {unit!r}; known units: "
                                 f"{', '.join(KNOWN_UNITS)}; convert the input or map the unit in its "
                                 "adapter")
    return np.asarray(factors), out


def _resample_poly(x: np.ndarray, up: int, down: int, gain: np.ndarray | None = None
                   ) -> np.ndarray:
    """``scipy.signal.resample_poly`` of ``x * gain`` (scaled in float64, filtered in
    float32) with its default Kaiser filter and ``padtype="line"``: (n_in, C) ->
    (ceil(n_in * up / down), C) float32."""
    if gain is None:
        scaled = np.asarray(x, dtype=np.float32)
    else:  # multiplied in float64, each product cast to float32 as it is stored: no float64 copy
        scaled = np.multiply(x, gain, out=np.empty(x.shape, np.float32), casting="same_kind")
    if up == down == 1:
        return scaled
    return scipy.signal.resample_poly(scaled, up, down, axis=0, padtype="line").astype(np.float32, copy=False)


# imu.resampler: the filter that takes a uniform grid at the native rate to the target rate
RESAMPLERS = {"polyphase": _resample_poly, "reference": reference_resample}


def _native_rate(dt: np.ndarray) -> int:
    """The whole rate nearest ``1 / median(dt)``; the median is skipped when the smallest
    and largest step already round to the same rate (it lies between them)."""
    shortest, longest = float(dt.min()), float(dt.max())
    if shortest > 0 and round(1.0 / shortest) == round(1.0 / longest):
        return max(1, round(1.0 / longest))
    return max(1, round(1.0 / float(np.median(dt))))


def _on_grid(t: np.ndarray, grid: np.ndarray, rate: float) -> bool:
    """Whether the timestamps already are the grid (to a millionth of a sample period)."""
    if len(t) != len(grid):
        return False
    err = t - grid
    return max(float(err.max()), -float(err.min())) <= 1e-6 / rate


def _interpolated(t: np.ndarray, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``x`` (T, C) at times ``t`` linearly interpolated at ``grid`` (G,): (G, C) float32."""
    columns = np.ascontiguousarray(x.T)  # (C, T): np.interp then reads each channel in order
    out = np.empty((len(grid), x.shape[1]), np.float32)
    for c, column in enumerate(columns):
        out[:, c] = np.interp(grid, t, column)
    return out


def resample(t: np.ndarray, x: np.ndarray, target_hz: float, gain: np.ndarray | None = None,
             resampler: str = "polyphase") -> Segment:
    """Uniform-grid polyphase resampling of one gap-free piece (see module docstring) of
    ``x * gain`` (``gain`` (C,): unit factors, applied in float64 before the float32 cast)."""
    r = _native_rate(np.diff(t))
    t0 = math.ceil(t[0] * target_hz - 1e-9) / target_hz
    n_in = int(math.floor((t[-1] - t0) * r + 1e-9)) + 1
    if n_in < 2:
        return Segment(t0, target_hz, np.zeros((0, x.shape[1]), np.float32))
    grid = np.arange(n_in, dtype=np.float64)
    grid /= r
    grid += t0  # (n_in,) == t0 + arange(n_in) / r, without temporaries
    if _on_grid(t, grid, r):
        uniform = x  # scaled and cast to float32 by the filter
    else:
        uniform, gain = _interpolated(t, x if gain is None else x * gain, grid), None
    ratio = Fraction(target_hz).limit_denominator(10_000) / r
    if ratio == 1:
        return Segment(t0, float(target_hz), _resample_poly(uniform, 1, 1, gain))
    out = RESAMPLERS[resampler](uniform, ratio.numerator, ratio.denominator, gain)
    n_out = int(math.floor((n_in - 1) * float(ratio))) + 1
    return Segment(t0, float(target_hz), out[:n_out])


def process(imu: ImuData, target_hz: float | None, max_gap_s: float, scale: str,
            resampler: str = "polyphase", counts: dict[str, float] | None = None
            ) -> tuple[list[Segment], list[str], CleanReport]:
    """Clean, convert and (optionally) resample one recording; returns segments and units."""
    pieces, report = clean(imu, max_gap_s)
    factors, units = unit_factors(imu.units, imu.channels, scale, counts)
    segments = []
    for t, x in pieces:
        if target_hz is None:
            rate = 1.0 / float(np.median(np.diff(t)))
            segments.append(Segment(float(t[0]), rate, (x * factors).astype(np.float32)))
        else:
            segments.append(resample(t, x, target_hz, factors, resampler))
    report.steps = ["clean", f"units->{sorted(set(units))}"]
    if target_hz:
        report.steps.append(f"resample->{target_hz}Hz")
    report.short_s += sum(p for s, p in zip(segments, report.pieces_s) if not len(s.values))
    report.pieces_s = [p for s, p in zip(segments, report.pieces_s) if len(s.values)]
    return [s for s in segments if len(s.values)], units, report
