"""UTD-MHAD: wrist/thigh inertial sensor + Kinect depth (or RGB) video, 27 actions.

Expected files under ``root`` (the dataset's own folder and file names)::

    Inertial/a<A>_s<S>_t<T>_inertial.mat   d_iner (N, 6): acc x,y,z in g; gyro x,y,z in deg/s; 50 Hz
    Depth/a<A>_s<S>_t<T>_depth.mat         d_depth uint16 (240, 320, F) in mm, ~30 fps
    Skeleton/a<A>_s<S>_t<T>_skeleton.mat   d_skel (20, 3, F), optional (path kept in ``extra``)
    RGB/a<A>_s<S>_t<T>_color.avi           optional; when present it is the recording's video
    Action_List.txt                        optional; the 27 short names (built-in list otherwise)

``A`` is the action (1-27, the label), ``S`` the subject, ``T`` the trial. The label is the
action's short name; the official list's ``swipt_left``/``swipt_right`` are read as
``swipe_left``/``swipe_right`` so labels do not depend on whether the file is present.

Video: ``RGB/..._color.avi`` when present (``video_kind`` ``mp4``: any decodable video, fps and
duration from the container), else the depth .mat (``video_kind`` ``depth_mat``, fps 30,
``video_duration_s`` = F / 30, ``extra.depth_key`` = ``d_depth``). A recording with neither is
rejected.

Clock and alignment: IMU timestamps are i / 50 s from the trial's first inertial sample, and
the video starts at 0. At the nominal rates the inertial stream covers ~1.6x the depth
stream's duration although both span the same action, so ``extra.align`` = ``trial_span``:
the video's span [0, F/30] maps onto the IMU's whole span. Use the windows stage's ``whole``
mode (one window per trial), never fixed-length tiles matched by time.

Split (option ``split``): ``subject`` by default, subjects 1-3 train, 4 val, 5 test
(``val_subjects``/``test_subjects``); ``random`` gives a seeded split by recording.
Malformed file names, unknown actions and unreadable .mat headers are rejected at scan time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import probe_video, to_extra
from comodo.pipeline.datasets.readers import load_mat_array, mat_shapes, parse_extra, rate_times
from comodo.pipeline.datasets.splits import AdapterOptions, assign_splits, parse_options
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError

ACTIONS = (
    "swipe_left", "swipe_right", "wave", "clap", "throw", "arm_cross", "basketball_shoot",
    "draw_x", "draw_circle_CW", "draw_circle_CCW", "draw_triangle", "bowling", "boxing",
    "baseball_swing", "tennis_swing", "arm_curl", "tennis_serve", "push", "knock", "catch",
    "pickup_throw", "jog", "walk", "sit2stand", "stand2sit", "lunge", "squat",
)
SPELLING = {"swipt_left": "swipe_left", "swipt_right": "swipe_right"}
NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_inertial\.mat$")
LIST_LINE = re.compile(r"^\s*(\d+)\.\s+.*\((\w+)\)\s*$")
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
UNITS = ["g"] * 3 + ["deg/s"] * 3
IMU_KEY, DEPTH_KEY = "d_iner", "d_depth"


class UtdOptions(AdapterOptions):
    split: Literal["subject", "random"] = "subject"
    val_subjects: list[str] = Field(default_factory=lambda: ["4"])
    test_subjects: list[str] = Field(default_factory=lambda: ["5"])
    imu_rate_hz: float = Field(50.0, gt=0)
    depth_fps: float = Field(30.0, gt=0)


@DATASETS.register("utd_mhad")
class UtdMhad(DatasetAdapter):
    """UTD-MHAD: Inertial/*_inertial.mat + Depth/*_depth.mat (or RGB/*_color.avi), 27 actions."""

    name = "utd_mhad"
    layout = ("Inertial/a<A>_s<S>_t<T>_inertial.mat (d_iner N x 6) + Depth/a<A>_s<S>_t<T>_depth.mat "
              "(d_depth 240 x 320 x F) or RGB/a<A>_s<S>_t<T>_color.avi; optional Action_List.txt")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(UtdOptions, options, self.name, self.dataset)

    def actions(self) -> tuple[str, ...]:
        """The 27 short names, from Action_List.txt when it is present and complete."""
        path = self.root / "Action_List.txt"
        if not path.is_file():
            return ACTIONS
        found: dict[int, str] = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if m := LIST_LINE.match(line):
                found[int(m.group(1))] = SPELLING.get(m.group(2), m.group(2))
        if sorted(found) != list(range(1, len(found) + 1)) or not found:
            raise InputDataError(
                f"{path}: expected numbered lines 'N. description (short_name)' for actions "
                f"1..{len(ACTIONS)}, found numbers {sorted(found)[:30]}; fix or remove the file"
            )
        return tuple(found[i] for i in sorted(found))

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        inertial = self.require(self.root / "Inertial", "Inertial folder")
        actions = self.actions()
        keys, named_wrong = [], []
        for path in sorted(inertial.iterdir()):
            m = NAME.match(path.name)
            if m:
                keys.append(((path, actions, *(int(g) for g in m.groups())),
                             path.name.removesuffix("_inertial.mat")))
            elif path.suffix.lower() == ".mat":
                named_wrong.append(Reject("ingest", str(path), "file",
                                          "file name is not a<A>_s<S>_t<T>_inertial.mat"))
        recs, rejects = self.probe_each(keys, self._recording)
        assign_splits(recs, self.opts, self.opts.split)
        return recs, named_wrong + rejects

    def _recording(self, path: Path, actions: tuple[str, ...], action: int, subject: int,
                   trial: int) -> Recording:
        rid = f"a{action}_s{subject}_t{trial}"
        if not 1 <= action <= len(actions):
            raise InputDataError(f"{path.name}: unknown action {action}; known actions are "
                                 f"1..{len(actions)} ({', '.join(actions[:3])}, ...)")
        shape = mat_shapes(path).get(IMU_KEY)
        if shape is None or len(shape) != 2 or shape[1] != len(CHANNELS) or shape[0] < 2:
            raise InputDataError(f"{path}: expected variable {IMU_KEY!r} of shape (N, 6), "
                                 f"found {mat_shapes(path)}")
        extra: dict[str, Any] = {"trial": trial, "action_id": action, "align": "trial_span",
                                 "imu_samples": shape[0]}
        skeleton = self.root / "Skeleton" / f"{rid}_skeleton.mat"
        if skeleton.is_file():
            extra["skeleton_path"] = str(skeleton)
        video, kind, fps, duration = self._video(rid, extra)
        return Recording(
            recording_id=rid, dataset=self.dataset, label=actions[action - 1], split="",
            imu_path=str(path), imu_rate_hz=self.opts.imu_rate_hz, subject=str(subject),
            video_path=str(video), video_kind=kind, fps=fps, video_start_s=0.0,
            video_duration_s=duration, extra=to_extra(**extra),
        )

    def _video(self, rid: str, extra: dict[str, Any]) -> tuple[Path, str, float, float]:
        rgb = self.root / "RGB" / f"{rid}_color.avi"
        if rgb.is_file():
            fps, duration = probe_video(rgb)
            return rgb, "mp4", fps, duration
        depth = self.root / "Depth" / f"{rid}_depth.mat"
        if not depth.is_file():
            raise InputDataError(f"no video for {rid}: neither {rgb} nor {depth} exists")
        shape = mat_shapes(depth).get(DEPTH_KEY)
        if shape is None or len(shape) != 3 or shape[2] < 1:
            raise InputDataError(f"{depth}: expected variable {DEPTH_KEY!r} of shape (240, 320, F), "
                                 f"found {mat_shapes(depth)}")
        extra.update(depth_key=DEPTH_KEY, depth_frames=shape[2], frame_axis=2)
        return depth, "depth_mat", self.opts.depth_fps, shape[2] / self.opts.depth_fps

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        values = load_mat_array(path, IMU_KEY)
        if values.ndim != 2 or values.shape[1] != len(CHANNELS):
            raise InputDataError(f"{path}: {IMU_KEY!r} has shape {values.shape}; expected (N, 6) "
                                 f"with columns {CHANNELS}")
        rate = float(rec.get("imu_rate_hz") or self.opts.imu_rate_hz)
        return ImuData(t_s=rate_times(len(values), rate), values=values.astype("float64"),
                       channels=list(CHANNELS), units=list(UNITS),
                       meta={"source": str(path), "sensor_site": _site(rec)})


def _site(rec: dict[str, Any]) -> str:
    """The sensor is on the right wrist for actions 1-21 and on the right thigh for 22-27."""
    return "right_thigh" if parse_extra(rec).get("action_id", 0) >= 22 else "right_wrist"
