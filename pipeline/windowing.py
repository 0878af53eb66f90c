"""Cutting windows from resampled IMU segments, by time on the canonical clock."""

from __future__ import annotations

import math
from collections import Counter

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


def tile_segment(rec: dict, seg: dict, window_s: float, n_per: int) -> list[dict]:
    """Non-overlapping windows over the part of one segment the video covers."""
    rate, t0, n = seg["rate_hz"], seg["t0_s"], seg["n_samples"]
    lo, hi = t0, t0 + n / rate
    video = _video_span(rec)
    if video is not None:
        lo, hi = max(lo, video[0]), min(hi, video[1])
    first = math.ceil((lo - t0) * rate - EPS)
    out = []
    for i in range(first, n - n_per + 1, n_per):
        start = t0 + i / rate
        if start + window_s > hi + EPS:
            break
        v0 = video[0] if video is not None else None
        out.append(_base(rec) | {
            "imu_start_s": start, "imu_end_s": start + window_s,
            "video_start_s": None if v0 is None else start - v0,
            "video_end_s": None if v0 is None else start + window_s - v0,
            "n_valid": n_per, "sample_start": seg["row_start"] + i,
        })
    return out


def cut_tiles(recs: pl.DataFrame, segs: pl.DataFrame, window_s: float, n_per: int
              ) -> tuple[list[dict], list[Reject]]:
    by_rec: dict[str, list[dict]] = {}
    for seg in segs.iter_rows(named=True):
        by_rec.setdefault(seg["recording_id"], []).append(seg)
    rows: list[dict] = []
    rejects: list[Reject] = []
    for rec in recs.iter_rows(named=True):
        segments = by_rec.get(rec["recording_id"], [])
        cut = [w for seg in segments for w in tile_segment(rec, seg, window_s, n_per)]
        if not cut:
            spans = [(round(s["t0_s"], 3), round(s["t0_s"] + s["n_samples"] / s["rate_hz"], 3))
                     for s in segments]
            rejects.append(Reject("windows", rec["recording_id"], "recording",
                                  f"no full {window_s}s window where IMU {spans} and video "
                                  f"{_video_span(rec)} overlap"))
        rows.extend(cut)
    return rows, rejects


def cut_whole(recs: pl.DataFrame, segs: pl.DataFrame, n_per: int) -> tuple[list[dict], list[Reject]]:
    """One window per recording: its longest segment, paired with the whole video."""
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
        n_valid = min(seg["n_samples"], n_per)
        video = _video_span(rec)
        rows.append(_base(rec) | {
            "imu_start_s": seg["t0_s"], "imu_end_s": seg["t0_s"] + n_valid / seg["rate_hz"],
            "video_start_s": 0.0 if video else None,
            "video_end_s": rec["video_duration_s"] if video else None,
            "n_valid": n_valid, "sample_start": seg["row_start"],
        })
    return rows, rejects


def drop_small_classes(rows: list[dict], min_windows: int) -> tuple[list[dict], list[Reject]]:
    counts = Counter(r["label"] for r in rows)
    small = {c for c, n in counts.items() if n < min_windows}
    rejects = [Reject("windows", c, "class",
                      f"{counts[c]} windows < min_windows_per_class={min_windows}") for c in sorted(small)]
    return [r for r in rows if r["label"] not in small], rejects
