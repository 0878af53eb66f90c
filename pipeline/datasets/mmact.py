"""MMAct (trimmed clips): smartwatch + smartphone inertial sensors and one camera view, 37 actions.

Expected files under ``root`` (folders as in the release; ``sensor_dir``/``video_dir`` options
point at e.g. ``trimmed/sensor`` or ``Sensor_trimmed`` when the copy nests them)::

    sensor/acc_watch_clip/subject<N>/scene<K>/session<M>/<action>.csv   watch accelerometer
    sensor/acc_phone_clip/subject<N>/scene<K>/session<M>/<action>.csv   phone accelerometer
    sensor/gyro_clip/subject<N>/scene<K>/session<M>/<action>.csv        phone gyroscope
    sensor/orientation_clip/subject<N>/scene<K>/session<M>/<action>.csv phone orientation
    video/subject<N>/cam<C>/scene<K>/session<M>/<action>.mp4            camera views 1-4

Each sensor CSV has no header: a wall-clock time ``YYYYMMDD_HH:MM:SS[.fff]`` (a numeric first
column is read as milliseconds) and three values: x, y, z in m/s^2 for the accelerometers and
rad/s for the gyroscope (Android sensor units), azimuth, pitch, roll in degrees for the
orientation. The 12 channels are watch_acc_*, phone_acc_*, phone_gyro_*, orientation_* (option
``streams`` selects and orders them); the first stream is the reference clock: the others are
interpolated onto its timestamps, cut to the span all cover, and time 0 is its first kept
sample. Clips of different streams are matched by subject/scene/session/action, the action
name compared case-insensitively; the label is the lower-cased action name.

Video: ``cam<C>`` from option ``camera`` (default cam1). Trimmed video and sensor clips cover
the same action, but the video carries no sensor-clock time, so ``video_start_s`` = 0 and
``extra.align`` = ``trial_span``. A clip missing any selected stream or the video is rejected.

Split: subject-disjoint by default (``test_subjects``/``val_subjects`` such as ["17", "18",
"19", "20"], or with both empty a seeded draw of whole subjects); ``split: random`` by clip.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import estimate_rate, probe_video, to_extra
from comodo.pipeline.datasets.readers import (
    merge_streams,
    numeric_columns,
    parse_extra,
    read_table,
    require_rows,
)
from comodo.pipeline.datasets.splits import AdapterOptions, assign_splits, parse_options
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError

STREAMS: dict[str, tuple[list[str], str]] = {
    "acc_watch_clip": (["watch_acc_x", "watch_acc_y", "watch_acc_z"], "m/s^2"),
    "acc_phone_clip": (["phone_acc_x", "phone_acc_y", "phone_acc_z"], "m/s^2"),
    "gyro_clip": (["phone_gyro_x", "phone_gyro_y", "phone_gyro_z"], "rad/s"),
    "orientation_clip": (["orientation_azimuth", "orientation_pitch", "orientation_roll"], "deg"),
}
TIME_FORMAT = "%Y%m%d_%H:%M:%S%.f"
PARTS = re.compile(r"^subject(\d+)/(scene\d+)/(session\d+)/([^/]+)$")
StreamName = Literal["acc_watch_clip", "acc_phone_clip", "gyro_clip", "orientation_clip"]


class MmactOptions(AdapterOptions):
    split: Literal["subject", "random"] = "subject"
    streams: list[StreamName] = Field(default_factory=lambda: list(STREAMS), min_length=1)
    camera: str = "cam1"
    sensor_dir: str = "sensor"
    video_dir: str = "video"
    probe_video: bool = True


@DATASETS.register("mmact")
class Mmact(DatasetAdapter):
    """MMAct trimmed clips: watch/phone acc, phone gyro + orientation (12 channels), one camera."""

    name = "mmact"
    layout = ("sensor/{acc_watch_clip,acc_phone_clip,gyro_clip,orientation_clip}/subject<N>/"
              "scene<K>/session<M>/<action>.csv + video/subject<N>/cam<C>/scene<K>/session<M>/<action>.mp4")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(MmactOptions, options, self.name, self.dataset)

    def _clips(self, stream: str) -> dict[str, Path]:
        """lower-cased ``subject<N>/scene<K>/session<M>/<action>`` -> CSV path of one stream."""
        folder = self.require(self.root / self.opts.sensor_dir / stream, f"{stream} folder")
        return {p.relative_to(folder).with_suffix("").as_posix().lower(): p
                for p in sorted(folder.glob("subject*/scene*/session*/*.csv"))}

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        self.require(self.root / self.opts.video_dir, "video folder")
        clips = {s: self._clips(s) for s in self.opts.streams}
        keys = [((key, [clips[s].get(key) for s in self.opts.streams]), key)
                for key in sorted(set().union(*clips.values()))]
        recs, rejects = self.probe_each(keys, self._clip)
        assign_splits(recs, self.opts, self.opts.split)
        return recs, rejects

    def _clip(self, key: str, paths: list[Path | None]) -> Recording:
        missing = [s for s, path in zip(self.opts.streams, paths) if path is None]
        if missing:
            raise InputDataError(f"no {missing} CSV for this clip (other streams have it)")
        return self._recording(key, [path for path in paths if path is not None])

    def _recording(self, key: str, paths: list[Path]) -> Recording:
        match = PARTS.match(key)
        if not match:
            raise InputDataError(f"path {key!r} is not subject<N>/scene<K>/session<M>/<action>")
        subject, scene, session, action = match.groups()
        empty = [str(p) for p in paths if p.stat().st_size == 0]
        if empty:
            raise InputDataError(f"empty (0 bytes) sensor CSV {empty}")
        video = self._video(paths[0], subject, scene, session)
        rate = estimate_rate(read_stream(paths[0])[0])
        if rate != rate:  # NaN: no two increasing timestamps
            raise InputDataError(f"{paths[0]}: no two increasing timestamps to estimate the rate from")
        fps, duration = probe_video(video) if self.opts.probe_video else (None, None)
        return Recording(
            recording_id=key, dataset=self.dataset, label=action, split="", subject=subject,
            imu_path=str(paths[0]), imu_rate_hz=rate, video_path=str(video), video_kind="mp4",
            fps=fps, video_start_s=0.0, video_duration_s=duration,
            extra=to_extra(scene=scene, session=session, camera=self.opts.camera, align="trial_span",
                           streams=[[s, str(p)] for s, p in zip(self.opts.streams, paths)]),
        )

    def _video(self, sensor_csv: Path, subject: str, scene: str, session: str) -> Path:
        folder = self.root / self.opts.video_dir / f"subject{subject}" / self.opts.camera / scene / session
        exact = folder / f"{sensor_csv.stem}.mp4"
        if exact.is_file():
            return exact
        stem = sensor_csv.stem.lower()
        loose = [p for p in sorted(folder.glob("*.mp4")) if p.stem.lower() == stem] if folder.is_dir() else []
        if not loose:
            raise InputDataError(f"no video {exact} (camera {self.opts.camera})")
        return loose[0]

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        streams = dict(parse_extra(rec).get("streams") or [])  # [[name, csv path], ...] in order
        if list(streams) != list(self.opts.streams):
            raise InputDataError(f"recording {rec.get('recording_id')}: ingested with streams "
                                 f"{list(streams)}, options ask for {self.opts.streams}; re-run ingest")
        parts = [read_stream(Path(p)) for p in streams.values()]
        t, values = merge_streams(parts, Path(rec["imu_path"]))
        channels = [c for s in streams for c in STREAMS[s][0]]
        units = [STREAMS[s][1] for s in streams for _ in range(3)]
        return ImuData(t_s=t, values=values, channels=channels, units=units,
                       meta={"source": rec["imu_path"], "reference": next(iter(streams))})


def read_stream(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, (T, 3) values) of one sensor CSV; unparseable times become NaN (kept for cleaning)."""
    table = read_table(path, has_header=False)
    if table.width != 4:
        raise InputDataError(f"{path}: expected 4 columns (time, x, y, z), found {table.width}")
    first = table.columns[0]
    if table.schema[first] == pl.String:
        stamps = table[first].str.strip_chars().str.to_datetime(TIME_FORMAT, strict=False, time_unit="us")
        if len(table) and stamps.null_count() == len(table):
            raise InputDataError(f"{path}: first column holds no times like 20181017_14:22:32.123 "
                                 f"(found {table[first][0]!r})")
        t = stamps.dt.epoch("us").cast(pl.Float64).fill_null(np.nan).to_numpy() * 1e-6
    else:
        t = table[first].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy() * 1e-3
    values = numeric_columns(table, table.columns[1:], path)
    require_rows(values, path)
    return t, values
