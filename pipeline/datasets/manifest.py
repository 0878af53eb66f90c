"""Any paired (or IMU-only) dataset described by a manifest table.

Expected files under ``root``::

    manifest.csv (or .parquet; option ``manifest``)   one row per recording:
        imu_path       required; CSV, Parquet or NPY file with the IMU
        label          required; the class name
        recording_id   optional; default: imu_path without its suffix (must be unique)
        video_path     optional; a decodable video (``mp4``) or a depth ``.mat`` (``depth_mat``)
        split          optional; train | val | test (all rows, or none)
        subject        optional; enables ``split: subject``
        imu_rate_hz    optional; the native rate (required for NPY and for tables without time)
        imu_start_s    optional; canonical time of the IMU file's time 0 (default 0)
        video_start_s  optional; canonical time of the video's first frame (default 0)
        fps            optional; the video's frame rate (else read from the video)

Relative paths are relative to the manifest's folder. IMU tables (CSV/Parquet): a time
column ``t_s`` (seconds) or ``timestamp_ms``/``canonical_timestamp_ms`` (milliseconds), or none
when the rate is given; every other column is a channel, except ``component_idx`` and
``component_timestamp_ms`` (option ``ignore_columns``). NPY: a (T, C) array, channels named by
option ``channels`` (default ch0..), the rate from the row or option ``rate_hz``. Canonical
IMU time = file time + ``imu_start_s`` (or ``imu_start_s`` + i / rate without a time column).

Units: option ``units`` maps channel names to units (g, m/s^2, mg, deg/s, rad/s are converted
by the imu stage; count, a.u. and deg are kept as declared); unmapped channels get
``default_unit`` (a.u.). A unit the imu stage does not know is a config error at once (ingest
stops, naming the channel, the unit and the known ones), not a reject of every recording.

Split: the ``split`` column when present (``auto``/``files``), else a seeded split by
recording (``random``) or by subject (``split: subject``). Rows with missing files, a bad
split value or a duplicate id are rejected at scan time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from comodo.pipeline.config import nearest
from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import estimate_rate, probe_video, to_extra
from comodo.pipeline.datasets.readers import (
    check_file,
    mat_shapes,
    numeric_columns,
    parse_extra,
    rate_times,
    read_table,
    require_rows,
)
from comodo.pipeline.datasets.splits import SPLITS, AdapterOptions, assign_splits, parse_options, resolve_mode
from comodo.pipeline.registry import DATASETS
from comodo.pipeline.signal import KNOWN_UNITS
from comodo.stores.errors import InputDataError, LayoutError

TIME_COLUMNS = {"t_s": 1.0, "timestamp_ms": 1e-3, "canonical_timestamp_ms": 1e-3}
REQUIRED = ("imu_path", "label")


class ManifestOptions(AdapterOptions):
    manifest: str = "manifest.csv"
    rate_hz: float | None = Field(None, gt=0)
    channels: list[str] | None = None
    units: dict[str, str] = Field(default_factory=dict)
    default_unit: str = "a.u."
    ignore_columns: list[str] = Field(default_factory=lambda: ["component_idx", "component_timestamp_ms"])
    probe_video: bool = True

    @field_validator("units")
    @classmethod
    def _known_units(cls, units: dict[str, str]) -> dict[str, str]:
        for channel, unit in units.items():
            _check_unit(unit, f"channel {channel}")
        return units

    @field_validator("default_unit")
    @classmethod
    def _known_default(cls, unit: str) -> str:
        return _check_unit(unit, "the unmapped channels")


def _check_unit(unit: str, what: str) -> str:
    """``unit`` when the imu stage converts or keeps it, else the error naming the known ones."""
    if unit not in KNOWN_UNITS:
        raise ValueError(f"{what} declared in unknown unit {unit!r}{nearest(unit, KNOWN_UNITS)}; "
                         f"known units: {', '.join(KNOWN_UNITS)}")
    return unit


@DATASETS.register("manifest")
class Manifest(DatasetAdapter):
    """Any dataset listed in a manifest CSV/Parquet (imu_path, label, optional video_path, split...)."""

    name = "manifest"
    layout = ("manifest.csv/.parquet with columns imu_path, label and optional recording_id, video_path, "
              "split, subject, imu_rate_hz, imu_start_s, video_start_s, fps (paths relative to it)")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(ManifestOptions, options, self.name, self.dataset)

    def rows(self) -> tuple[Path, list[dict[str, Any]]]:
        path = self.require(self.root / self.opts.manifest, "manifest")
        table = read_table(path)
        missing = [c for c in REQUIRED if c not in table.columns]
        if missing:
            raise LayoutError(f"{path} lacks column(s) {missing}; found {table.columns}; "
                              f"expected {self.layout}")
        return path.parent, list(table.iter_rows(named=True))

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        base, rows = self.rows()
        has_split = any(row.get("split") for row in rows)
        mode = resolve_mode(self.opts, has_split)
        keys = []
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            rid = str(row.get("recording_id") or Path(str(row["imu_path"] or "")).with_suffix("").as_posix())
            keys.append(((base, number, rid, row, mode), rid or f"row {number}"))
        recs: list[Recording] = []
        rejects: list[Reject] = []
        seen: set[str] = set()
        for ((_, number, rid, _, _), item), out in zip(keys, self.probe_all(keys, self._row)):
            if rid in seen:  # a later row of a recording already kept
                out = Reject("ingest", item, "recording", f"row {number}: duplicate recording_id {rid!r}")
            if isinstance(out, Reject):
                rejects.append(out)
                continue
            seen.add(rid)
            recs.append(out)
        if mode != "files":
            assign_splits(recs, self.opts, mode)
        return recs, rejects

    def _row(self, base: Path, number: int, rid: str, row: dict[str, Any], mode: str) -> Recording:
        """One manifest row (line ``number``) probed; errors name the row."""
        try:
            return self._recording(base, rid, row, mode)
        except InputDataError as err:
            raise InputDataError(f"row {number}: {err}") from None

    def _recording(self, base: Path, rid: str, row: dict[str, Any], mode: str) -> Recording:
        split = str(row.get("split") or "")
        if mode == "files" and split not in SPLITS:
            raise InputDataError(f"split {split!r} is not one of {SPLITS}")
        if not row.get("label"):
            raise InputDataError("empty label")
        imu = resolve(base, row["imu_path"])
        check_file(imu)
        start = float(row.get("imu_start_s") or 0.0)
        rate = row.get("imu_rate_hz") or self.opts.rate_hz or self._estimate(imu)
        extra: dict[str, Any] = {"imu_start_s": start}
        video, kind, fps, duration = self._video(base, row, extra)
        subject = row.get("subject")
        return Recording(
            recording_id=rid, dataset=self.dataset, label=str(row["label"]), split=split,
            imu_path=str(imu), imu_rate_hz=float(rate), subject=None if subject is None else str(subject),
            video_path=video, video_kind=kind, fps=fps,
            video_start_s=float(row.get("video_start_s") or 0.0), video_duration_s=duration,
            extra=to_extra(**extra),
        )

    def _estimate(self, path: Path) -> float:
        if path.suffix.lower() == ".npy":
            raise InputDataError(f"{path}: an NPY file needs the rate; add an imu_rate_hz column or "
                                 f"option rate_hz")
        table = read_table(path)
        column = next((c for c in TIME_COLUMNS if c in table.columns), None)
        if column is None:
            raise InputDataError(f"{path} has no time column ({', '.join(TIME_COLUMNS)}) and no rate is "
                                 f"given; add one or set imu_rate_hz / option rate_hz")
        rate = estimate_rate(numeric_columns(table, [column], path)[:, 0] * TIME_COLUMNS[column])
        if rate != rate:
            raise InputDataError(f"{path}: column {column!r} has no two increasing timestamps")
        return rate

    def _video(self, base: Path, row: dict[str, Any], extra: dict[str, Any]
               ) -> tuple[str | None, str, float | None, float | None]:
        if not row.get("video_path"):
            return None, "none", None, None
        video = check_file(resolve(base, row["video_path"]))
        if video.suffix.lower() == ".mat":
            shapes = {k: s for k, s in mat_shapes(video).items() if len(s) == 3}
            if len(shapes) != 1:
                raise InputDataError(f"{video}: expected one (H, W, F) depth array, "
                                     f"found {mat_shapes(video)}")
            (key, shape), = shapes.items()
            fps = float(row.get("fps") or 30.0)
            extra.update(depth_key=key, depth_frames=shape[2], frame_axis=2)
            return str(video), "depth_mat", fps, shape[2] / fps
        if not self.opts.probe_video:
            return str(video), "mp4", row.get("fps"), None
        fps, duration = probe_video(video)
        return str(video), "mp4", float(row.get("fps") or fps), duration

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        start = float(parse_extra(rec).get("imu_start_s", 0.0))
        rate = float(rec.get("imu_rate_hz") or 0.0)  # given, or estimated from the time column
        if path.suffix.lower() == ".npy":
            return self._npy(path, rate, start)
        table = read_table(path)
        column = next((c for c in TIME_COLUMNS if c in table.columns), None)
        channels = [c for c in table.columns if c != column and c not in self.opts.ignore_columns]
        values = numeric_columns(table, channels, path)
        require_rows(values, path)
        if column is not None:
            t = numeric_columns(table, [column], path)[:, 0] * TIME_COLUMNS[column] + start
        else:
            t = rate_times(len(values), rate, start)
        return self._imu(t, values, channels, path)

    def _npy(self, path: Path, rate: float, start: float) -> ImuData:
        try:
            values = np.load(check_file(path), allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputDataError(f"{path} could not be read as an NPY array: {err}") from None
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise InputDataError(f"{path}: expected a numeric (T, C) array, found "
                                 f"{values.dtype} {values.shape}")
        require_rows(values, path)
        channels = self.opts.channels or [f"ch{i}" for i in range(values.shape[1])]
        if len(channels) != values.shape[1]:
            raise InputDataError(f"{path} has {values.shape[1]} columns but option channels names "
                                 f"{len(channels)}: {channels}")
        return self._imu(rate_times(len(values), rate, start), values.astype(np.float64), channels, path)

    def _imu(self, t: np.ndarray, values: np.ndarray, channels: list[str], path: Path) -> ImuData:
        units = [self.opts.units.get(c, self.opts.default_unit) for c in channels]
        return ImuData(t_s=t, values=values, channels=list(channels), units=units,
                       meta={"source": str(path)})


def resolve(base: Path, value: Any) -> Path:
    """A manifest path: absolute as given, relative to the manifest's folder otherwise."""
    path = Path(str(value).strip())
    return path if path.is_absolute() else base / path
