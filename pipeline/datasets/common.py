"""Helpers shared by adapters: IMU CSV reading, video probing, label lists, seeded splits."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from comodo.pipeline.datasets.base import ImuData
from comodo.stores.errors import InputDataError

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

EGO4D_COLUMNS = ("canonical_timestamp_ms", "accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z")
EGO4D_UNITS = ["m/s^2"] * 3 + ["rad/s"] * 3


def read_imu_csv(path: str | Path, columns: Sequence[str] = EGO4D_COLUMNS,
                 units: Sequence[str] = EGO4D_UNITS, time_scale: float = 1e-3) -> ImuData:
    """Read an IMU CSV whose first column is a timestamp; values as float64.

    ``time_scale`` converts the timestamp column to seconds (ms -> s by default).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"IMU file {path} does not exist; check the dataset root and file names")
    if path.stat().st_size == 0:
        raise InputDataError(f"IMU file {path} is empty (0 bytes); re-export or remove the recording")
    table = _read_with_polars(path, columns)
    return ImuData(
        t_s=table[:, 0] * time_scale,
        values=table[:, 1:],
        channels=list(columns[1:]),
        units=list(units),
    )


def _read_with_polars(path: Path, columns: Sequence[str]) -> np.ndarray:
    """The ``columns`` of a CSV as one (T, len(columns)) float64 array; empty cells, "nan",
    "NaN" and "NULL" become NaN (dropped later, counted, by ``signal.clean``)."""
    import polars as pl

    try:
        header = pl.read_csv(path, n_rows=0).columns
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputDataError(
                f"IMU file {path} lacks columns {missing}; expected {list(columns)}, found {header}")
        df = _numeric_csv(path, columns)
    except pl.exceptions.PolarsError as err:  # ComputeError, NoDataError ... for a broken file
        raise InputDataError(f"IMU file {path} could not be parsed as a numeric CSV: {err}") from None
    return df.select(columns).to_numpy().astype(np.float64, copy=False)


def _numeric_csv(path: Path, columns: Sequence[str]) -> pl.DataFrame:
    """The float64 ``columns``: polars reads "nan", "NaN" and "inf" itself and empty cells as
    null (NaN in numpy); only a file with "NULL"/"null" cells is read again declaring them
    (declaring them always costs about a fifth more CPU)."""
    import polars as pl

    schema = dict.fromkeys(columns, pl.Float64)
    try:
        return pl.read_csv(path, columns=list(columns), schema_overrides=schema)
    except pl.exceptions.ComputeError:
        return pl.read_csv(path, columns=list(columns), schema_overrides=schema,
                           null_values=["", "nan", "NaN", "NULL", "null"])


def probe_video(path: str | Path) -> tuple[float, float]:
    """(fps, duration_s) of a video file, read from its container and first stream."""
    import av  # here: a worker that only reads IMU does not load FFmpeg (~50 ms)

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InputDataError(f"video {path} is missing or empty; re-copy it or drop the recording")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = (stream.frames or 0) / fps if fps else 0.0
    except (av.error.FFmpegError, IndexError) as err:
        raise InputDataError(f"video {path} cannot be opened as a video: {err}") from None
    if fps <= 0 or duration <= 0:
        raise InputDataError(f"video {path} reports fps={fps} and duration={duration}s; it looks truncated")
    return fps, duration


def read_label_list(path: Path) -> dict[str, str]:
    """Read ``uid<TAB>label`` lines (blank lines and '#' comments ignored)."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise InputDataError(f"{path}:{n}: expected 'uid<TAB>label', found {line!r}")
        out[parts[0].strip()] = parts[1].strip()
    return out


def seeded_split(ids: Sequence[str], seed: int, fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
                 ) -> dict[str, str]:
    """A reproducible train/val/test assignment by recording id."""
    order = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(order))
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    names = ["train"] * n_train + ["val"] * n_val + ["test"] * (len(order) - n_train - n_val)
    return {order[i]: names[k] for k, i in enumerate(perm)}


def estimate_rate(t_s: np.ndarray) -> float:
    """Native sampling rate (Hz) from the median positive timestamp step."""
    steps = np.diff(t_s[np.isfinite(t_s)])
    steps = steps[steps > 0]
    return float(1.0 / np.median(steps)) if steps.size else float("nan")


def to_extra(**fields: object) -> str:
    return json.dumps(fields, sort_keys=True)
