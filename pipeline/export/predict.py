"""Run a bundle on an IMU recording: read it as its layout does, resample it as the imu stage
does, slide windows, classify them.

A recording is read by the ``load_imu`` of a dataset adapter whose recordings are one table
file each (``TABLE_LAYOUTS``; by default the layout the bundle was trained on), then cleaned,
converted and resampled by ``signal.process`` with the bundle's settings: the very code the
imu stage runs, so a recording of the dataset gives the windows of windows.zarr bit for bit.

Windows (``tile`` bundles) start on the resampled grid ``hop_s`` apart within each gap-free
segment, the first at the first sample at or after ``from_s`` (the windows stage starts
where the video starts); the last partial window is dropped. ``whole`` bundles read one
window per recording, the longest segment zero-padded or cut to the window length, as the
windows stage cuts a trial. Times are seconds on the recording's clock.

``follow`` reads a file that a logger is still appending to: on every poll it reads the
complete lines written so far, and emits the windows that ended at least ``settle_s``
before the last sample (the resampling filter's end correction only reaches that far: its
half-length is 10 input samples or 10 output samples, whichever is longer, 0.1 s for
100 -> 200 Hz), once each, in order.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from comodo.pipeline import signal
from comodo.pipeline.datasets.base import ImuData
from comodo.pipeline.export.bundle import Bundle, Preprocessing, Ranked
from comodo.pipeline.stages.ingest import make_adapter
from comodo.stores.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

TABLE_LAYOUTS = ("ego4d", "egoexo4d", "manifest", "mmea")  # adapters reading one CSV/Parquet file
TOP_K = 3
EPS = 1e-6


@dataclass(frozen=True)
class Windows:
    """N windows of a recording: start and end times (N,) and samples (N, C, T)."""

    start_s: np.ndarray
    end_s: np.ndarray
    imu: np.ndarray


@dataclass(frozen=True)
class Reading:
    """How to read a recording: the layout (None: the bundle's), its options (over the
    bundle's when the layout is the bundle's), the native rate of a file without times."""

    layout: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    rate_hz: float | None = None


def read_recording(path: Path, prep: Preprocessing, reading: Reading = Reading()) -> ImuData:
    """One IMU file read by the layout's adapter (default: the bundle's own layout)."""
    layout = reading.layout or prep.layout
    if layout not in TABLE_LAYOUTS:
        raise ConfigError(f"layout {layout!r} does not read one CSV/Parquet file per recording; "
                          f"pass --layout with one of: {', '.join(TABLE_LAYOUTS)}")
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"IMU file {path} does not exist")
    options = {**(prep.layout_options if layout == prep.layout else {}), **reading.options}
    adapter = make_adapter(layout, str(path.parent), "predict", options)
    rec = {"recording_id": path.stem, "imu_path": str(path), "imu_rate_hz": reading.rate_hz,
           "extra": "{}", "label": None, "split": None}
    return adapter.load_imu(rec)


def segments_of(imu: ImuData, prep: Preprocessing, where: str) -> list[signal.Segment]:
    """The recording cleaned, converted and resampled as the imu stage does, with the
    bundle's channels picked as the windows stage picks them; their units must match."""
    missing = [c for c in prep.channels if c not in imu.channels]
    if missing:
        raise InputDataError(f"{where} has channels {imu.channels}, the bundle reads "
                             f"{prep.channels}; read it with the layout it was written in (--layout)")
    segments, units, _report = signal.process(imu, prep.rate_hz, prep.max_gap_s, prep.scale,
                                              prep.resampler, prep.counts)
    keep = [list(imu.channels).index(c) for c in prep.channels]
    if [units[i] for i in keep] != list(prep.units):
        raise InputDataError(f"{where} converts to units {[units[i] for i in keep]}, the bundle "
                             f"was trained on {prep.units}; give the channels' units in the "
                             f"layout's options")
    if not segments:
        raise InputDataError(f"{where} holds no usable IMU samples after cleaning (non-finite, "
                             f"duplicate or unsorted rows); check that the file is complete")
    if keep == list(range(len(imu.channels))):
        return segments
    return [signal.Segment(s.t0_s, s.rate_hz, s.values[:, keep]) for s in segments]


def tile(segments: list[signal.Segment], n_per: int, hop_s: float, from_s: float | None
         ) -> Windows:
    """Windows of ``n_per`` samples, ``hop_s`` apart, from ``from_s`` on, in every segment."""
    starts, windows = [], []
    for seg in segments:
        hop = max(1, round(hop_s * seg.rate_hz))
        first = 0 if from_s is None else max(0, math.ceil((from_s - seg.t0_s) * seg.rate_hz - EPS))
        for i in range(first, len(seg.values) - n_per + 1, hop):
            starts.append(seg.t0_s + i / seg.rate_hz)
            windows.append(seg.values[i:i + n_per].T)  # (C, T)
    rate = segments[0].rate_hz
    start = np.asarray(starts, np.float64)
    imu = np.stack(windows) if windows else np.zeros((0, segments[0].values.shape[1], n_per),
                                                      np.float32)
    return Windows(start, start + n_per / rate, imu.astype(np.float32))


def whole(segments: list[signal.Segment], n_per: int) -> Windows:
    """One window: the longest segment, zero-padded or cut to ``n_per`` samples."""
    seg = max(segments, key=lambda s: len(s.values))
    n_valid = min(len(seg.values), n_per)
    window = np.zeros((seg.values.shape[1], n_per), np.float32)  # (C, T)
    window[:, :n_valid] = seg.values[:n_valid].T
    return Windows(np.asarray([seg.t0_s]), np.asarray([seg.t0_s + n_valid / seg.rate_hz]),
                   window[None])


def cut_windows(segments: list[signal.Segment], prep: Preprocessing, hop_s: float,
                from_s: float | None, where: str) -> Windows:
    if prep.window_mode == "whole":
        return whole(segments, prep.window_samples)
    out = tile(segments, prep.window_samples, hop_s, from_s)
    if not len(out.start_s):
        spans = [(round(s.t0_s, 3), round(s.t0_s + len(s.values) / s.rate_hz, 3)) for s in segments]
        raise InputDataError(f"{where}: no full {prep.window_s:g} s window in its IMU segments "
                             f"{spans}{'' if from_s is None else f' from {from_s:g} s'}; "
                             f"the recording is shorter than one window or truncated")
    return out


def table(windows: Windows, ranked: Ranked, classes: list[str]) -> pl.DataFrame:
    """One row per window: start_s, end_s, label (top-1), then top1..3 with p1..p3."""
    names = np.asarray(classes, dtype=object)
    data: dict[str, object] = {"start_s": windows.start_s, "end_s": windows.end_s,
                               "label": names[ranked.classes[:, 0]].tolist()}
    for k in range(min(TOP_K, ranked.classes.shape[1])):
        data[f"top{k + 1}"] = names[ranked.classes[:, k]].tolist()
        data[f"p{k + 1}"] = ranked.probabilities[:, k].astype(np.float64)
    return pl.DataFrame(data, schema_overrides={"label": pl.String})


def predict_recording(bundle: Bundle, imu: ImuData, where: str, hop_s: float | None = None,
                      from_s: float | None = None) -> pl.DataFrame:
    """The table of one recording's windows (``hop_s`` default: the window length)."""
    hop = bundle.prep.window_s if hop_s is None else hop_s
    if hop <= 0:
        raise ConfigError(f"hop must be positive, got {hop} s")
    windows = cut_windows(segments_of(imu, bundle.prep, where), bundle.prep, hop, from_s, where)
    return table(windows, bundle.predict(windows.imu), bundle.classes)


def predict_file(bundle: Bundle, path: Path, hop_s: float | None = None,
                 from_s: float | None = None, reading: Reading = Reading()) -> pl.DataFrame:
    imu = read_recording(path, bundle.prep, reading)
    return predict_recording(bundle, imu, str(path), hop_s, from_s)


def complete_lines(path: Path, out: Path) -> int:
    """Copy the complete lines of the text file ``path`` to ``out``; returns their bytes."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    out.write_bytes(data[:end])
    return end


def follow(bundle: Bundle, path: Path, emit: Callable[[pl.DataFrame], None],
           hop_s: float | None = None, from_s: float | None = None,
           reading: Reading = Reading(), poll_s: float = 1.0, settle_s: float = 0.5,
           idle_exit_s: float | None = None) -> int:
    """Classify a growing CSV as windows complete; ``emit`` gets each new table.

    Runs until interrupted, or until the file has not grown for ``idle_exit_s``. A read that
    fails (a file still too short, a half-written header) is retried when the file grows; if
    the last read before an idle exit failed, its error is raised. Returns the number of
    windows emitted.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq") or bundle.prep.window_mode == "whole":
        raise ConfigError(f"--follow reads windows from a CSV that a logger appends to; {path} "
                          f"is Parquet (written whole) or the bundle reads one window per "
                          f"recording: run predict without --follow once the file is complete")
    state = _Following()
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / path.name
        while idle_exit_s is None or time.monotonic() - state.grown_at < idle_exit_s:
            size = os.path.getsize(path) if path.exists() else 0
            if size != state.size and complete_lines(path, snapshot) > 0:
                state.size, state.grown_at = size, time.monotonic()
                try:
                    rows = _settled_rows(bundle, snapshot, str(path), hop_s, from_s, reading,
                                         settle_s, state.emitted_until)
                    state.error = None
                except InputDataError as err:  # named by the file, not by its snapshot
                    state.error = InputDataError(str(err).replace(str(snapshot), str(path)))
                    log.debug("not readable yet: %s", state.error)
                    rows = pl.DataFrame()
                if len(rows):
                    emit(rows)
                    state.emitted_until = float(rows["start_s"].max())
                    state.n_emitted += len(rows)
            time.sleep(poll_s)
    if state.error is not None:
        raise state.error
    return state.n_emitted


@dataclass
class _Following:
    """What ``follow`` knows about the file between polls."""

    size: int = -1
    grown_at: float = field(default_factory=time.monotonic)
    emitted_until: float = -math.inf  # start of the last window emitted
    n_emitted: int = 0
    error: InputDataError | None = None


def _settled_rows(bundle: Bundle, snapshot: Path, where: str, hop_s: float | None,
                  from_s: float | None, reading: Reading, settle_s: float, after_s: float
                  ) -> pl.DataFrame:
    """The windows of the file so far that end ``settle_s`` before its last sample and
    start after ``after_s``; none while the file is still shorter than one window."""
    imu = read_recording(snapshot, bundle.prep, reading)
    segments = segments_of(imu, bundle.prep, where)
    last = max(s.t0_s + (len(s.values) - 1) / s.rate_hz for s in segments)
    hop = bundle.prep.window_s if hop_s is None else hop_s
    windows = tile(segments, bundle.prep.window_samples, hop, from_s)
    keep = (windows.end_s <= last - settle_s + EPS) & (windows.start_s > after_s + EPS)
    if not keep.any():
        return pl.DataFrame()
    picked = Windows(windows.start_s[keep], windows.end_s[keep], windows.imu[keep])
    return table(picked, bundle.predict(picked.imu), bundle.classes)
