"""IMU cleaning, unit conversion and polyphase resampling onto a uniform 200 Hz grid.

Adapters read raw IMU; this module turns it into clean, canonical segments:
1. drop rows with a missing timestamp or non-finite value, sort by time, drop duplicate
   timestamps (first kept);
2. split at gaps longer than ``max_gap_s``;
3. convert units to the canonical set (g, deg/s) — or apply the MMEA sensitivity scaling
   (acc counts / 16384 -> g, gyro counts / 16.4 -> deg/s);
4. resample each segment: linear interpolation onto a uniform grid at the nearest whole
   native rate ``r`` starting on a multiple of ``1/target`` seconds, then
   ``scipy.signal.resample_poly`` with exact rational factors ``target/r`` reduced (its
   default Kaiser-windowed filter, designed once per factor pair and applied in float32).
   Input already on that grid (uniform clocks) skips the interpolation.
   Output sample ``j`` of a segment lies at ``t0 + j/target`` on the canonical clock, where
   ``t0`` is a multiple of ``1/target``: windows can be cut by time with integer indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.signal import firwin, resample_poly

from comodo.pipeline.datasets.base import ImuData
from comodo.stores.errors import InputDataError

G = 9.80665
ACC_UNITS = {"g": 1.0, "m/s^2": 1.0 / G, "mg": 1e-3}
GYRO_UNITS = {"deg/s": 1.0, "rad/s": 180.0 / math.pi}
MMEA_SCALE = {"acc": 1.0 / 16384.0, "gyro": 1.0 / 16.4}


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


def clean(imu: ImuData, max_gap_s: float) -> tuple[list[tuple[np.ndarray, np.ndarray]], CleanReport]:
    """Drop bad rows, sort, de-duplicate and split at gaps; returns [(t_s, values)] pieces."""
    report = CleanReport()
    t, x = np.asarray(imu.t_s, dtype=np.float64), np.asarray(imu.values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(x).all(axis=1)
    report.dropped_nonfinite = int((~ok).sum())
    t, x = t[ok], x[ok]
    if t.size and np.any(np.diff(t) < 0):
        report.was_unsorted = True
        order = np.argsort(t, kind="stable")
        t, x = t[order], x[order]
    keep = np.concatenate([[True], np.diff(t) > 0]) if t.size else np.zeros(0, bool)
    report.dropped_duplicates = int((~keep).sum())
    t, x = t[keep], x[keep]
    cuts = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    report.gaps = int(cuts.size)
    pieces = [(tp, xp) for tp, xp in zip(np.split(t, cuts), np.split(x, cuts)) if tp.size >= 2]
    return pieces, report


def unit_factors(units: list[str], channels: list[str], scale: str) -> tuple[np.ndarray, list[str]]:
    """Per-channel multipliers to canonical units, and the resulting unit names."""
    factors, out = [], []
    for unit, channel in zip(units, channels):
        if unit == "count":
            if scale != "mmea":
                raise InputDataError(
                    f"channel {channel} is in raw counts; set 'imu.scale: mmea' (or convert the input)"
                )
            kind = "gyro" if "gyro" in channel.lower() else "acc"
            factors.append(MMEA_SCALE[kind])
            out.append("deg/s" if kind == "gyro" else "g")
        elif unit in ACC_UNITS:
            factors.append(ACC_UNITS[unit])
            out.append("g")
        elif unit in GYRO_UNITS:
            factors.append(GYRO_UNITS[unit])
            out.append("deg/s")
        else:  # unknown units are kept as they are and recorded
            factors.append(1.0)
            out.append(unit)
    return np.asarray(factors), out


@lru_cache(maxsize=64)
def _filter(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s default anti-aliasing filter for ``up/down`` (before its gain
    ``up``, which ``resample_poly`` applies), in float32 so the filtering runs in float32."""
    max_rate = max(up, down)
    return firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)).astype(np.float32)


def _on_grid(t: np.ndarray, grid: np.ndarray, rate: float) -> bool:
    """Whether the timestamps already are the grid (to a millionth of a sample period)."""
    return len(t) == len(grid) and float(np.max(np.abs(t - grid))) <= 1e-6 / rate


def resample(t: np.ndarray, x: np.ndarray, target_hz: float) -> Segment:
    """Uniform-grid polyphase resampling of one gap-free piece (see module docstring)."""
    native = 1.0 / float(np.median(np.diff(t)))
    r = max(1, round(native))
    t0 = math.ceil(t[0] * target_hz - 1e-9) / target_hz
    n_in = int(math.floor((t[-1] - t0) * r + 1e-9)) + 1
    if n_in < 2:
        return Segment(t0, target_hz, np.zeros((0, x.shape[1]), np.float32))
    grid = t0 + np.arange(n_in) / r
    if _on_grid(t, grid, r):
        uniform = x.astype(np.float32)
    else:
        uniform = np.stack([np.interp(grid, t, x[:, c]) for c in range(x.shape[1])], axis=1,
                           dtype=np.float32)
    ratio = Fraction(target_hz).limit_denominator(10_000) / r
    if ratio == 1:
        return Segment(t0, float(target_hz), uniform)
    up, down = ratio.numerator, ratio.denominator
    out = resample_poly(uniform, up, down, axis=0, window=_filter(up, down), padtype="line")
    n_out = int(math.floor((n_in - 1) * float(ratio))) + 1
    return Segment(t0, float(target_hz), np.ascontiguousarray(out[:n_out], dtype=np.float32))


def process(imu: ImuData, target_hz: float | None, max_gap_s: float, scale: str
            ) -> tuple[list[Segment], list[str], CleanReport]:
    """Clean, convert and (optionally) resample one recording; returns segments and units."""
    pieces, report = clean(imu, max_gap_s)
    factors, units = unit_factors(imu.units, imu.channels, scale)
    segments = []
    for t, x in pieces:
        x = x * factors
        if target_hz is None:
            rate = 1.0 / float(np.median(np.diff(t)))
            segments.append(Segment(float(t[0]), rate, x.astype(np.float32)))
        else:
            segments.append(resample(t, x, target_hz))
    report.steps = ["clean", f"units->{sorted(set(units))}"]
    if target_hz:
        report.steps.append(f"resample->{target_hz}Hz")
    return [s for s in segments if len(s.values)], units, report
