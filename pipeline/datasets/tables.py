"""The recordings and rejects tables: the polars schema of ``base.Recording`` and
``base.Reject`` rows, and the frames written to recordings.parquet and rejects.parquet."""

from __future__ import annotations

from dataclasses import asdict

import polars as pl

from comodo.pipeline.datasets.base import Recording, Reject

RECORDINGS_SCHEMA: dict[str, pl.DataType] = {
    "recording_id": pl.String,
    "dataset": pl.String,
    "label": pl.String,
    "subject": pl.String,
    "split": pl.String,
    "imu_path": pl.String,
    "imu_rate_hz": pl.Float64,
    "video_path": pl.String,
    "video_kind": pl.String,
    "fps": pl.Float64,
    "video_start_s": pl.Float64,
    "video_duration_s": pl.Float64,
    "extra": pl.String,  # JSON: adapter-specific fields (trial, scenario, ...)
}

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.String,
    "item": pl.String,  # recording id, window id, class name or file
    "kind": pl.String,  # recording | window | class | file
    "reason": pl.String,
}


def recordings_frame(recs: list[Recording]) -> pl.DataFrame:
    return pl.DataFrame([asdict(r) for r in recs], schema=RECORDINGS_SCHEMA)


def rejects_frame(rejects: list[Reject]) -> pl.DataFrame:
    return pl.DataFrame([asdict(r) for r in rejects], schema=REJECTS_SCHEMA)
