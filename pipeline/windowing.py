"""Cutting windows from resampled IMU segments, by time on the canonical clock."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from comodo.pipeline.datasets.base import Reject

WINDOWS_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Int64,
    "recording_id": pl.String,
    "label": pl.String,
    "label_id": pl.Int64,
    "subject": pl.String,
    "split": pl.String,
    "video_path": pl.String,
    "video_kind": pl.String,
    "video_start_s": pl.Float64,
    "video_end_s": pl.Float64,
    "imu_start_s": pl.Float64,
    "imu_end_s": pl.Float64,
    "n_valid": pl.Int64,
}

WINDOW_COLUMNS: dict[str, pl.DataType] = {
    k: v for k, v in WINDOWS_SCHEMA.items() if k not in ("window_id", "label_id")
} | {"sample_start": pl.Int64,  # the first sample's row in imu.zarr
     "n_source": pl.Int64}  # how many samples from there the window is made of

TIME_BASES = ("stretch", "pad")

EPS = 1e-6


def _base(rec: dict) -> dict:
    return {
        "recording_id": rec["recording_id"],
        "label": rec["label"] if rec["label"] is not None else "unlabelled",
        "subject": rec["subject"],
        "split": rec["split"],
        "video_path": rec["video_path"],
        "video_kind": rec["video_kind"],
    }


def _video_span(rec: dict) -> tuple[float, float] | None:
    if rec["video_kind"] == "none" or rec["video_duration_s"] is None:
        return None
    return rec["video_start_s"], rec["video_start_s"] + rec["video_duration_s"]


def tile_segment(rec: dict, seg: dict, window_s: float, n_per: int) -> dict[str, np.ndarray]:
    """Non-overlapping windows over the part of one segment the video covers, as columns
    (``imu_start_s``, ``imu_end_s``, ``video_start_s``, ``video_end_s``, ``sample_start``)."""
    rate, t0, n = seg["rate_hz"], seg["t0_s"], seg["n_samples"]
    lo, hi = t0, t0 + n / rate
    video = _video_span(rec)
    if video is not None:
        lo, hi = max(lo, video[0]), min(hi, video[1])
    first = math.ceil((lo - t0) * rate - EPS)
    i = np.arange(max(first, 0), n - n_per + 1, n_per, dtype=np.int64)
    start = t0 + i / rate
    keep = start + window_s <= hi + EPS  # starts grow: the kept ones are a prefix
    i, start = i[keep], start[keep]
    end = start + window_s
    no_video = np.full(len(i), np.nan)
    return {"imu_start_s": start, "imu_end_s": end,
            "video_start_s": no_video if video is None else start - video[0],
            "video_end_s": no_video if video is None else end - video[0],
            "sample_start": seg["row_start"] + i}


def _frame(parts: list[tuple[dict, dict[str, np.ndarray]]], n_per: int) -> pl.DataFrame:
    """One row per window from (recording fields, window columns) pairs."""
    if not parts:
        return pl.DataFrame(schema=WINDOW_COLUMNS)
    counts = [len(cols["sample_start"]) for _, cols in parts]
    data: dict[str, object] = {k: np.repeat([base[k] for base, _ in parts], counts).tolist()
                               for k in parts[0][0]}  # the recording fields of ``_base``
    for k in parts[0][1]:
        data[k] = np.concatenate([cols[k] for _, cols in parts])
    data["n_valid"] = np.full(sum(counts), n_per, np.int64)
    data["n_source"] = data["n_valid"]
    return pl.DataFrame(data, strict=False).with_columns(
        pl.col("video_start_s", "video_end_s").fill_nan(None)).select(
        [pl.col(k).cast(t) for k, t in WINDOW_COLUMNS.items()])


def cut_tiles(recs: pl.DataFrame, segs: pl.DataFrame, window_s: float, n_per: int
              ) -> tuple[pl.DataFrame, list[Reject]]:
    by_rec: dict[str, list[dict]] = {}
    for seg in segs.iter_rows(named=True):
        by_rec.setdefault(seg["recording_id"], []).append(seg)
    parts: list[tuple[dict, dict[str, np.ndarray]]] = []
    rejects: list[Reject] = []
    for rec in recs.iter_rows(named=True):
        segments = by_rec.get(rec["recording_id"], [])
        cut = [tile_segment(rec, seg, window_s, n_per) for seg in segments]
        cut = [c for c in cut if len(c["sample_start"])]
        if not cut:
            spans = [(round(s["t0_s"], 3), round(s["t0_s"] + s["n_samples"] / s["rate_hz"], 3))
                     for s in segments]
            rejects.append(Reject("windows", rec["recording_id"], "recording",
                                  f"no full {window_s}s window where IMU {spans} and video "
                                  f"{_video_span(rec)} overlap"))
        parts.extend((_base(rec), c) for c in cut)
    return _frame(parts, n_per), rejects


def cut_whole(recs: pl.DataFrame, segs: pl.DataFrame, n_per: int, time_base: str = "stretch"
              ) -> tuple[pl.DataFrame, list[Reject]]:
    """One window per recording: its longest segment, paired with the whole video.

    ``stretch``: the whole segment, resampled to ``n_per`` samples (``stretch_windows``), so
    sample k covers the k-th ``1/n_per`` of the trial, as the video frames sampled over the
    whole clip do; every sample is valid. ``pad``: the first ``n_per`` samples at the IMU
    rate, zero-padded to ``n_per``; ``n_valid`` says how many are real."""
    if time_base not in TIME_BASES:
        raise ValueError(f"unknown time_base {time_base!r}; valid: {', '.join(TIME_BASES)}")
    longest: dict[str, dict] = {}
    for seg in segs.iter_rows(named=True):
        best = longest.get(seg["recording_id"])
        if best is None or seg["n_samples"] > best["n_samples"]:
            longest[seg["recording_id"]] = seg
    rows, rejects = [], []
    for rec in recs.iter_rows(named=True):
        seg = longest.get(rec["recording_id"])
        if seg is None:
            rejects.append(Reject("windows", rec["recording_id"], "recording", "no IMU segment"))
            continue
        n_source = seg["n_samples"] if time_base == "stretch" else min(seg["n_samples"], n_per)
        video = _video_span(rec)
        rows.append(_base(rec) | {
            "imu_start_s": seg["t0_s"], "imu_end_s": seg["t0_s"] + n_source / seg["rate_hz"],
            "video_start_s": 0.0 if video else None,
            "video_end_s": rec["video_duration_s"] if video else None,
            "n_valid": n_per if time_base == "stretch" else n_source,
            "sample_start": seg["row_start"], "n_source": n_source,
        })
    return pl.DataFrame(rows, schema=WINDOW_COLUMNS), rejects


def stretch_windows(samples: np.ndarray, n_per: int) -> np.ndarray:
    """(n, n_source, C) samples -> (n, C, n_per), linearly interpolated over the same span.

    Source sample i sits at ``i / n_source`` of the span, output sample k at ``k / n_per``
    (both on the left edge of their share of the span), so the output covers exactly the
    time the source covers; the last output samples past source sample ``n_source - 1``
    hold its value. No anti-alias filter: meant for ``n_per >= n_source``."""
    n, n_source, channels = samples.shape
    position = np.arange(n_per, dtype=np.float64) * n_source / n_per  # (n_per,) source index
    lo = np.minimum(np.floor(position).astype(np.int64), n_source - 1)  # (n_per,)
    hi = np.minimum(lo + 1, n_source - 1)
    w = (position - lo).astype(np.float32)[None, :, None]  # (1, n_per, 1)
    out = samples[:, lo] * (1 - w) + samples[:, hi] * w  # (n, n_per, C)
    return np.ascontiguousarray(out.transpose(0, 2, 1), dtype=np.float32)  # (n, C, n_per)


def drop_small_classes(windows: pl.DataFrame, min_windows: int) -> tuple[pl.DataFrame, list[Reject]]:
    counts = dict(windows["label"].value_counts().iter_rows())
    small = {c for c, n in counts.items() if n < min_windows}
    rejects = [Reject("windows", c, "class",
                      f"{counts[c]} windows < min_windows_per_class={min_windows}") for c in sorted(small)]
    return windows.filter(~pl.col("label").is_in(sorted(small))), rejects


def valid_mask(n_valid: np.ndarray, n_samples: int) -> np.ndarray:
    """(N, T) bool: True at the first ``n_valid[i]`` samples of window i."""
    return np.arange(n_samples)[None, :] < np.asarray(n_valid, np.int64)[:, None]


def pooled_channel_stats(imu: np.ndarray, n_valid: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std (C, 1) pooled over the valid samples of every
    window of ``imu`` (N, C, T): a dataset-level normaliser that never counts padding."""
    n, channels, samples = imu.shape
    if n_valid is None:
        n_valid = np.full(n, samples)
    mask = valid_mask(n_valid, samples)  # (N, T)
    values = imu.transpose(1, 0, 2)[:, mask].astype(np.float64)  # (C, sum of n_valid)
    return values.mean(axis=1, keepdims=True), values.std(axis=1, keepdims=True)
