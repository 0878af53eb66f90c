"""GoPro MP4s with embedded GPMF telemetry: the camera's own accelerometer and gyroscope.

Expected files under ``root``::

    **/*.mp4 (or .MP4)   one recording per file, straight from the camera; each must hold the
                         "GoPro MET" data track (GPMF) with ACCL and GYRO streams
    labels.csv           optional: columns ``file,label`` and optionally ``split``; ``file`` is
                         the path relative to ``root`` (or the bare file name)

Recordings without a labels.csv row get option ``label`` (default ``unlabelled``). The
recording id is the path relative to ``root`` without the suffix.

IMU: ACCL (m/s^2) and GYRO (rad/s) samples divided by SCAL, units from SIUN. Timestamps
come from the container: each telemetry packet's samples are spread uniformly over the
packet's [pts, pts + duration) on the MP4 clock, and the first video frame is 0, so
``video_start_s`` = 0 and the IMU is on the video's own clock. The native rate recorded at
scan time is samples / telemetry duration (~197 Hz on a GoPro MAX). When GYRO has a
different sample count than ACCL in a packet it is interpolated onto the ACCL times.

Axes (option ``axes``): ``camera`` (default) reorders the columns by the stream's ORIN so
that acc_x/y/z and gyro_x/y/z are the camera's X, Y, Z (ORIN letters name the axis of each
stored column; lower case means negated: "XzY" -> x = col0, y = col2, z = -col1). ``raw``
keeps the stored column order. Files without ORIN (HERO5-7) keep the stored order and say
so in the IMU's ``meta``. MTRX/ORIO are not applied.

Split: ``labels.csv``'s ``split`` column when present (``auto``/``files``), otherwise a
seeded split by recording (``random``). Unreadable or truncated MP4s and files without
telemetry are rejected at scan time with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import to_extra
from comodo.pipeline.datasets.gpmf import GpmfError, orient, sensor_blocks
from comodo.pipeline.datasets.readers import check_file, read_table
from comodo.pipeline.datasets.splits import SPLITS, AdapterOptions, assign_splits, parse_options, resolve_mode
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

SENSORS = ("ACCL", "GYRO")
PREFIX = {"ACCL": "acc", "GYRO": "gyro"}
HANDLER = "GoPro MET"


class GoProOptions(AdapterOptions):
    label: str = "unlabelled"
    axes: Literal["camera", "raw"] = "camera"
    recursive: bool = True


@dataclass
class Telemetry:
    t_s: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    units: dict[str, str]
    orin: str
    fps: float
    video_duration_s: float
    span_s: float


@DATASETS.register("gopro")
class GoPro(DatasetAdapter):
    """GoPro MP4s with GPMF telemetry (ACCL m/s^2, GYRO rad/s), one recording per file."""

    name = "gopro"
    layout = ("*.mp4 files with a 'GoPro MET' GPMF track (ACCL + GYRO); "
              "optional labels.csv (file,label[,split])")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(GoProOptions, options, self.name, self.dataset)

    def _labels(self) -> dict[str, dict[str, str]]:
        path = self.root / "labels.csv"
        if not path.is_file():
            return {}
        table = read_table(path)
        if not {"file", "label"} <= set(table.columns):
            raise LayoutError(f"{path}: expected columns file,label[,split], found {table.columns}")
        return {str(row["file"]).strip(): row for row in table.iter_rows(named=True)}

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        pattern = "**/*" if self.opts.recursive else "*"
        files = sorted(p for p in self.root.glob(pattern) if p.suffix.lower() == ".mp4" and p.is_file())
        if not files:
            self.require(self.root / "<name>.mp4", "GoPro .mp4 file")
        labels = self._labels()
        keys = []
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            keys.append(((path, rel, labels.get(rel) or labels.get(path.name) or {}), rel))
        recs, rejects = self.probe_each(keys, self._recording)
        mode = resolve_mode(self.opts, any("split" in row for row in labels.values()))
        if mode == "files":
            bad = [r.recording_id for r in recs if r.split not in SPLITS]
            if bad:
                raise LayoutError(f"{self.root / 'labels.csv'}: split must be one of {SPLITS} for every "
                                  f"file (or drop the split column); missing or invalid for {bad[:5]}")
        else:
            assign_splits(recs, self.opts, mode)
        return recs, rejects

    def _recording(self, path: Path, rel: str, row: dict[str, Any]) -> Recording:
        tel = read_telemetry(path)
        n = len(tel.t_s["ACCL"])
        return Recording(
            recording_id=rel.rsplit(".", 1)[0], dataset=self.dataset,
            label=str(row.get("label") or self.opts.label), split=str(row.get("split") or ""),
            imu_path=str(path), imu_rate_hz=n / tel.span_s, video_path=str(path), video_kind="mp4",
            fps=tel.fps, video_start_s=0.0, video_duration_s=tel.video_duration_s,
            extra=to_extra(orin=tel.orin, imu_samples=n, clock="video"),
        )

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        tel = read_telemetry(path)
        t = tel.t_s["ACCL"]
        columns, channels, units = [], [], []
        for key in SENSORS:
            values = tel.values[key]
            if len(tel.t_s[key]) != len(t) or not np.array_equal(tel.t_s[key], t):
                values = np.stack([np.interp(t, tel.t_s[key], values[:, c]) for c in range(3)], axis=1)
            if self.opts.axes == "camera" and tel.orin:
                values = _orient(values, tel.orin, path)
            columns.append(values)
            channels += [f"{PREFIX[key]}_{a}" for a in "xyz"]
            units += [tel.units[key]] * 3
        axes = "camera (ORIN)" if self.opts.axes == "camera" and tel.orin else "as stored"
        return ImuData(t_s=t, values=np.concatenate(columns, axis=1), channels=channels, units=units,
                       meta={"source": str(path), "orin": tel.orin, "axes": axes})


def _orient(values: np.ndarray, orin: str, path: Path) -> np.ndarray:
    try:
        return orient(values, orin)
    except GpmfError as err:
        raise InputDataError(f"{path}: {err}; set option axes: raw to keep the stored order") from None


def read_telemetry(path: Path) -> Telemetry:
    """ACCL/GYRO samples and their times (video clock, first frame = 0) of one GoPro MP4."""
    import av  # here: importing the adapters does not load FFmpeg

    check_file(path)
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            meta = [s for s in container.streams.data
                    if HANDLER in (s.metadata.get("handler_name") or "")]
            if video is None or not meta:
                handlers = [s.metadata.get("handler_name", "").strip("\x0b ") for s in container.streams]
                raise InputDataError(f"{path}: no video stream or no '{HANDLER}' telemetry track (GPMF); "
                                     f"found tracks {handlers}; is this an unedited GoPro file?")
            start = float((video.start_time or 0) * video.time_base) if video.time_base else 0.0
            fps = float(video.average_rate or video.guessed_rate or 0)
            duration = float(video.duration * video.time_base) if video.duration else 0.0
            return _collect(container, meta[0], start, fps, duration, path)
    except (av.error.FFmpegError, OSError) as err:
        raise InputDataError(f"{path} cannot be read as an MP4 (truncated or not a video?): {err}") from None


def _collect(container: Any, stream: Any, start: float, fps: float, duration: float,
             path: Path) -> Telemetry:
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in SENSORS}
    units: dict[str, str] = {}
    sticky: dict[str, dict] = {}
    orin, span = "", 0.0
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        t0, dt = float(packet.pts * packet.time_base), float((packet.duration or 0) * packet.time_base)
        try:
            blocks = sensor_blocks(bytes(packet), SENSORS, sticky)
        except GpmfError as err:
            raise InputDataError(f"{path}: telemetry packet at {t0:.3f}s is malformed: {err}") from None
        span += dt
        for key, block in blocks.items():
            n = len(block.values)
            parts[key].append((t0 - start + dt * np.arange(n) / max(n, 1), block.values))
            units[key], orin = block.unit, block.orin or orin
    missing = [k for k in SENSORS if not parts[k]]
    if missing or span <= 0:
        raise InputDataError(f"{path}: the GPMF track has no {missing or 'timed'} samples; "
                             f"expected ACCL and GYRO streams")
    t_s = {k: np.concatenate([p[0] for p in parts[k]]) for k in SENSORS}
    values = {k: np.concatenate([p[1] for p in parts[k]]) for k in SENSORS}
    bad = [k for k in SENSORS if values[k].shape[1] != 3]
    if bad:
        axes = [values[k].shape[1] for k in bad]
        raise InputDataError(f"{path}: {bad} samples have {axes} axes; expected 3")
    return Telemetry(t_s, values, units, orin, fps, duration or span, span)
