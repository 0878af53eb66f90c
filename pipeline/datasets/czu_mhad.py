"""CZU-MHAD: 10 body-worn IMUs (MPU9250) + Kinect v2 depth video, 22 actions, 5 subjects.

Expected files under ``root`` (the .mat release of the dataset)::

    sensor_mat/<subj>_a<A>_t<T>.mat     variable ``sensor``: a 10 x 1 cell array, one (N, 7)
                                        matrix per sensor pi00..pi09: acc x,y,z (g), gyro x,y,z
                                        (deg/s), timestamp; ~50 Hz
    depth_mat/<subj>_a<A>_t<T>.mat      one (H, W, F) depth array (its single 3-D variable, or
                                        option ``depth_key``), frames on the last axis, 30 fps
    skeleton_mat/<subj>_a<A>_t<T>.mat   optional; its path is kept in ``extra``

``subj`` is the subject's initials (cx, cyy, myj, qyh, zyh), ``A`` the action 1-22 (the
label, as a short name), ``T`` the repetition. Channels are ``pi00_acc_x`` ... ``pi09_gyro_z``
(60), named by the dataset's own sensor ids; third-party code reads pi00..pi09 as chest,
abdomen, left/right elbow, left/right wrist, left/right knee, left/right ankle, unverified here.

Timestamps (option ``timestamp``): ``packed`` (default) reads the 7th column as the dataset's
packed wall-clock MMDDhhmmss followed by 6 digits of microseconds (723150846409936 = July 23,
15:08:46.409936), which is not linear in time; ``us`` reads it as microseconds; ``rate``
ignores it and uses i / ``rate_hz``. Sensor pi00 is the reference: the other nine are linearly
interpolated onto its timestamps and the reference is cut to the span all ten cover; time 0
is the first kept sample.

Video: the depth .mat (``video_kind`` depth_mat, fps 30, ``video_duration_s`` = F / 30). The
depth frames carry no timestamps in the .mat, so ``extra.align`` = ``trial_span``: the video's
span maps onto the IMU's span (use the windows stage's ``whole`` mode).

Split: subject-disjoint by default (``val_subjects`` [qyh], ``test_subjects`` [zyh]);
``split: random`` for a seeded split by recording.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import to_extra
from comodo.pipeline.datasets.readers import (
    load_mat_array,
    mat_shapes,
    merge_streams,
    parse_extra,
    rate_times,
)
from comodo.pipeline.datasets.splits import AdapterOptions, assign_splits, parse_options
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError

ACTIONS = (
    "right_high_wave", "left_high_wave", "right_horizontal_wave", "left_horizontal_wave",
    "hammer_right_hand", "grasp_right_hand", "draw_fork_right_hand", "draw_fork_left_hand",
    "draw_circle_right_hand", "draw_circle_left_hand", "right_foot_kick_forward",
    "left_foot_kick_forward", "right_foot_kick_side", "left_foot_kick_side", "clap", "bend_down",
    "wave_up_and_down", "march_in_place", "left_body_turning", "right_body_turning",
    "left_lateral_movement", "right_lateral_movement",
)
N_SENSORS = 10
NAME = re.compile(r"^([A-Za-z]+)_a(\d+)_t(\d+)\.mat$")
SENSOR_KEY = "sensor"
CHANNELS = [f"pi{s:02d}_{kind}_{axis}"
            for s in range(N_SENSORS) for kind in ("acc", "gyro") for axis in "xyz"]
UNITS = (["g"] * 3 + ["deg/s"] * 3) * N_SENSORS


class CzuOptions(AdapterOptions):
    split: Literal["subject", "random"] = "subject"
    val_subjects: list[str] = Field(default_factory=lambda: ["qyh"])
    test_subjects: list[str] = Field(default_factory=lambda: ["zyh"])
    timestamp: Literal["packed", "us", "rate"] = "packed"
    rate_hz: float = Field(50.0, gt=0)
    depth_fps: float = Field(30.0, gt=0)
    depth_key: str | None = None


@DATASETS.register("czu_mhad")
class CzuMhad(DatasetAdapter):
    """CZU-MHAD: sensor_mat/*.mat (10 IMUs -> 60 channels) + depth_mat/*.mat, 22 actions."""

    name = "czu_mhad"
    layout = ("sensor_mat/<subj>_a<A>_t<T>.mat (variable 'sensor': 10 cells of N x 7) + "
              "depth_mat/<subj>_a<A>_t<T>.mat (H x W x F depth)")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(CzuOptions, options, self.name, self.dataset)

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        sensors = self.require(self.root / "sensor_mat", "sensor_mat folder")
        self.require(self.root / "depth_mat", "depth_mat folder")
        keys, named_wrong = [], []
        for path in sorted(sensors.glob("*.mat")):
            match = NAME.match(path.name)
            if match:
                keys.append(((path, match.group(1), int(match.group(2)), int(match.group(3))), path.stem))
            else:
                named_wrong.append(Reject("ingest", str(path), "file",
                                          "file name is not <subj>_a<A>_t<T>.mat"))
        recs, rejects = self.probe_each(keys, self._recording)
        assign_splits(recs, self.opts, self.opts.split)
        return recs, named_wrong + rejects

    def _recording(self, path: Path, subject: str, action: int, trial: int) -> Recording:
        if not 1 <= action <= len(ACTIONS):
            raise InputDataError(f"{path.name}: unknown action {action}; known actions are 1..{len(ACTIONS)}")
        shape = mat_shapes(path).get(SENSOR_KEY)
        if shape is None or sorted(shape) != [1, N_SENSORS]:
            raise InputDataError(f"{path}: expected variable {SENSOR_KEY!r} of shape (10, 1), "
                                 f"found {mat_shapes(path)}")
        depth = self.root / "depth_mat" / path.name
        key, frames = self._depth(depth)
        extra: dict[str, Any] = {"trial": trial, "action_id": action, "align": "trial_span",
                                 "depth_key": key, "depth_frames": frames, "frame_axis": 2}
        skeleton = self.root / "skeleton_mat" / path.name
        if skeleton.is_file():
            extra["skeleton_path"] = str(skeleton)
        return Recording(
            recording_id=path.stem, dataset=self.dataset, label=ACTIONS[action - 1], split="",
            imu_path=str(path), imu_rate_hz=self.opts.rate_hz, subject=subject,
            video_path=str(depth), video_kind="depth_mat", fps=self.opts.depth_fps,
            video_start_s=0.0, video_duration_s=frames / self.opts.depth_fps, extra=to_extra(**extra),
        )

    def _depth(self, path: Path) -> tuple[str, int]:
        if not path.is_file():
            raise InputDataError(f"no depth video {path}")
        shapes = mat_shapes(path)
        cubes = {k: s for k, s in shapes.items() if len(s) == 3}
        key = self.opts.depth_key or (next(iter(cubes)) if len(cubes) == 1 else None)
        if key is None or len(shapes.get(key, ())) != 3:
            raise InputDataError(f"{path}: expected one (H, W, F) depth variable (or option depth_key), "
                                 f"found {shapes}")
        return key, shapes[key][2]

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        cells = load_mat_array(path, SENSOR_KEY).reshape(-1)
        if len(cells) != N_SENSORS:
            raise InputDataError(f"{path}: {SENSOR_KEY!r} holds {len(cells)} sensors; expected {N_SENSORS}")
        streams = []
        for index, cell in enumerate(cells):
            block = np.asarray(cell, dtype=np.float64)
            if block.ndim != 2 or block.shape[1] != 7 or len(block) < 2:
                raise InputDataError(f"{path}: sensor pi{index:02d} has shape {block.shape}; expected (N, 7) "
                                     f"(acc x,y,z, gyro x,y,z, timestamp)")
            streams.append((self._times(block[:, 6], path, index), block[:, :6]))
        t, values = merge_streams(streams, path)
        extra = parse_extra(rec)
        return ImuData(t_s=t, values=values, channels=list(CHANNELS), units=list(UNITS),
                       meta={"source": str(path), "reference": "pi00", "timestamp": self.opts.timestamp,
                             "trial": extra.get("trial")})

    def _times(self, raw: np.ndarray, path: Path, index: int) -> np.ndarray:
        if self.opts.timestamp == "rate":
            return rate_times(len(raw), self.opts.rate_hz)
        if self.opts.timestamp == "us":
            return raw * 1e-6
        return unpack_wallclock(raw, f"{path} sensor pi{index:02d}")


def unpack_wallclock(raw: np.ndarray, where: str) -> np.ndarray:
    """Seconds from packed MMDDhhmmss + 6-digit microsecond stamps (month counted as 31 days)."""
    value = np.asarray(raw, dtype=np.float64)
    finite = np.isfinite(value)
    v = np.where(finite, value, 0).astype(np.int64)
    usec, rest = v % 1_000_000, v // 1_000_000
    sec, minute, hour = rest % 100, rest // 100 % 100, rest // 10_000 % 100
    day, month = rest // 1_000_000 % 100, rest // 100_000_000
    ok = (sec < 60) & (minute < 60) & (hour < 24) & (day >= 1) & (day <= 31) & (month >= 1) & (month <= 12)
    if not np.all(ok | ~finite):
        bad = value[finite & ~ok][:3]
        raise InputDataError(f"{where}: timestamps {bad.tolist()} are not packed MMDDhhmmss+microseconds; "
                             f"set option timestamp: us or timestamp: rate")
    seconds = (((month * 31 + day) * 24 + hour) * 60 + minute) * 60 + sec + usec * 1e-6
    return np.where(finite, seconds, np.nan)
