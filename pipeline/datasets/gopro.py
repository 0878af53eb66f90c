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
``video_start_s`` = 0 and the IMU is on the video's own clock. ACCL and GYRO keep their own
clocks (a HERO5 records ACCL at ~200 Hz and GYRO at ~400 Hz): each is resampled on its own
onto the ``rate_hz`` grid (default 200 Hz, ``signal.resample``), and the rows where both
exist are kept. The native rate recorded at scan time is ACCL samples / telemetry duration.

Body frame (option ``axes``): ``camera`` (default) maps each stream's stored columns onto
GoPro's camera axes, x = right/left, y = forward/back (the lens axis), z = up/down, so that
a camera standing upright and still reads acc_z = +9.8 m/s^2 (checked on a HERO5 and a
GoPro MAX clip). The order comes from the stream's ORIN when present (HERO8 and later;
letters name the axis of each stored column, lower case = negated: "XzY" -> x = col0,
y = col2, z = -col1), else from the order its name (STNM) declares (HERO5:
"Accelerometer (up/down, right/left, forward/back)" and "Gyroscope (z,x,y)" -> "ZXY").
A stream that declares neither keeps its stored order; ``meta["axes"]`` says which. ``raw``
keeps the stored order. MTRX/ORIO are not applied.

Split: ``labels.csv``'s ``split`` column when present (``auto``/``files``), otherwise a
seeded split by recording (``random``). Unreadable or truncated MP4s and files without
telemetry are rejected at scan time with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline import signal
from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import to_extra
from comodo.pipeline.datasets.gpmf import GpmfError, order_from_name, orient, sensor_blocks
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
    rate_hz: float = Field(200.0, gt=0)  # ACCL and GYRO are each resampled onto this grid
    recursive: bool = True


@dataclass
class Telemetry:
    t_s: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    units: dict[str, str]
    orin: str
    order: dict[str, str]  # per sensor: ORIN, or the order its stream name declares, or ""
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
        segments = {}
        for key in SENSORS:  # each sensor from its own clock onto the same grid
            values = tel.values[key]
            if self.opts.axes == "camera" and tel.order[key]:
                values = _orient(values, tel.order[key], path)
            segments[key] = signal.resample(tel.t_s[key], values, self.opts.rate_hz)
        t_s, values = _on_one_grid(segments, self.opts.rate_hz, path)
        channels = [f"{PREFIX[k]}_{a}" for k in SENSORS for a in "xyz"]
        units = [tel.units[k] for k in SENSORS for _ in "xyz"]
        axes = {k: (f"camera from {tel.order[k]}" if self.opts.axes == "camera" and tel.order[k]
                    else "as stored") for k in SENSORS}
        return ImuData(t_s=t_s, values=values, channels=channels, units=units,
                       meta={"source": str(path), "orin": tel.orin, "axes": axes})


def _on_one_grid(segments: dict[str, signal.Segment], rate_hz: float, path: Path
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The rows where every sensor's resampled segment has a sample (starts are on the grid)."""
    t0 = max(seg.t0_s for seg in segments.values())
    starts = {k: int(round((t0 - seg.t0_s) * rate_hz)) for k, seg in segments.items()}
    n = min(len(seg.values) - starts[k] for k, seg in segments.items())
    if n < 2:
        raise InputDataError(f"{path}: ACCL and GYRO do not overlap in time")
    values = np.concatenate([seg.values[starts[k]:starts[k] + n] for k, seg in segments.items()], axis=1)
    return t0 + np.arange(n) / rate_hz, values.astype(np.float64)


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
    order = {k: "" for k in SENSORS}
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
            order[key] = block.orin or order_from_name(block.name) or order[key]
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
    return Telemetry(t_s, values, units, orin, order, fps, duration or span, span)
