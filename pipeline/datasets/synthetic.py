"""The synthetic paired video + IMU dataset: the embedded default for the demo pipeline.

Each recording is one textured disc doing one class of motion in front of a static camera
(see ``synthetic_motion`` for the physics and ``synthetic_render`` for the camera). The IMU
is the physical motion of that same pose: specific force and body angular velocity, plus
white noise, a per-channel gain (1 +- ``gain_spread``) and bias. The IMU runs on its own
clock at ``imu_rate_hz`` with timestamp jitter; it starts ``imu_start_s`` after the video's
first frame on the canonical clock (negative: before it) and lasts about as long.

Written in the raw layout the Ego4D adapter reads::

    <root>/videos/<uid>.mp4      H.264 yuv420p, size x size RGB, fps frames/s
    <root>/imu/<uid>.csv         canonical_timestamp_ms,accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z
                                 (ms on the canonical clock, video frame 0 = 0; m/s^2, rad/s)
    <root>/{train,val,test}.txt  lines ``uid<TAB>label``, split by recording within each class
    <root>/truth.json            per uid: label, seed, motion parameters, IMU start, gains, biases

Everything is a deterministic function of ``SynthConfig.seed``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.synthetic_motion import CLASSES, Trajectory, sample_params
from comodo.pipeline.datasets.synthetic_render import (
    SCENES,
    Camera,
    background,
    encode_mp4,
    render_frames,
)
from comodo.pipeline.progress import progress
from comodo.stores.errors import ConfigError

__all__ = ["CLASSES", "IMU_COLUMNS", "SynthConfig", "SyntheticRecording", "generate",
           "make_recording", "run", "write_recording"]

log = logging.getLogger(__name__)

IMU_COLUMNS = ("canonical_timestamp_ms", "accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z")
SPLITS = ("train", "val", "test")


class SynthConfig(StageConfig):
    """Config of the synthetic dataset (params.yaml section ``synth``)."""

    seed: int = 0
    n_classes: int = Field(6, description=f"first n of {len(CLASSES)} motion classes")
    recordings_per_class: int = 8
    duration_s: float = Field(30.0, description="video length, s")
    fps: float = 10.0
    size: int = Field(224, description="frame height = width, px")
    imu_rate_hz: float = 100.0
    imu_jitter_s: float = Field(0.0005, description="std of the IMU timestamp jitter, s")
    max_clock_offset_s: float = Field(1.5, description="IMU start drawn from [-max, max] s")
    imu_start_overrides: dict[str, float] = Field(default_factory=dict,
                                                  description="uid -> IMU start, s")
    accel_noise: float = Field(0.05, description="white noise std, m/s^2")
    gyro_noise: float = Field(0.005, description="white noise std, rad/s")
    accel_bias: float = Field(0.1, description="bias std, m/s^2")
    gyro_bias: float = Field(0.01, description="bias std, rad/s")
    gain_spread: float = Field(0.05, description="gains drawn from 1 +- spread")
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    crf: int = Field(18, description="x264 constant rate factor")

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        _require("n_classes", self.n_classes, 2, len(CLASSES),
                 f"the available motions are {', '.join(CLASSES)}")
        _require("recordings_per_class", self.recordings_per_class, 3, None,
                 "every class needs a recording in train, val and test")
        _require("duration_s", self.duration_s, 1.0, None, "")
        _require("fps", self.fps, 1.0, 120.0, "")
        _require("size", self.size, 32, 1024, "")
        if self.size % 2:
            raise ConfigError(f"synth config: size={self.size} is odd; expected an even number "
                              "(H.264 yuv420p halves the chroma planes)")
        _require("imu_rate_hz", self.imu_rate_hz, 10.0, 2000.0, "")
        _require("imu_jitter_s", self.imu_jitter_s, 0.0, 0.25 / self.imu_rate_hz,
                 "jitter must keep the timestamps increasing")
        _require("crf", self.crf, 0, 51, "")
        for name in ("max_clock_offset_s", "accel_noise", "gyro_noise", "accel_bias", "gyro_bias"):
            _require(name, getattr(self, name), 0.0, None, "")
        _require("gain_spread", self.gain_spread, 0.0, 0.5, "")
        for name in ("val_fraction", "test_fraction"):
            _require(name, getattr(self, name), 0.0, 0.45, "")
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES[: self.n_classes]


def _require(name: str, value: float, lo: float, hi: float | None, why: str) -> None:
    """Raise ConfigError naming ``name`` unless ``lo <= value <= hi``."""
    if value >= lo and (hi is None or value <= hi):
        return
    expected = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    hint = f" ({why})" if why else ""
    raise ConfigError(f"synth config: {name}={value} is out of range; expected {expected}{hint}")


@dataclass
class SyntheticRecording:
    """One rendered recording: video frames, noisy IMU and the ground truth that made them."""

    label: str
    seed: int
    trajectory: Trajectory
    camera: Camera
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB; frame i at canonical time i / fps
    fps: float
    imu_t_s: np.ndarray  # (T,) canonical-clock seconds
    imu: np.ndarray  # (T, 6) accl xyz m/s^2, gyro xyz rad/s, with noise, gain, bias
    imu_start_s: float  # nominal first IMU sample on the canonical clock, s
    gains: np.ndarray  # (6,)
    biases: np.ndarray  # (6,) m/s^2 x3, rad/s x3

    def motion(self, t_s: np.ndarray) -> np.ndarray:
        """(T,) canonical s -> (T, 6) noise-free specific force (m/s^2) and body rate (rad/s)."""
        return self.trajectory.motion(np.asarray(t_s, dtype=np.float64))

    def project(self, t_s: np.ndarray) -> np.ndarray:
        """(T,) s -> (T, 4): disc centre u, v (px), apparent radius (px), in-plane angle (rad)."""
        t = np.asarray(t_s, dtype=np.float64)
        pos, _ = self.trajectory.pose(t)
        uv = self.camera.project(pos)
        radius_px = self.camera.focal_px * self.trajectory.params["radius_m"] / pos[:, 2]
        return np.column_stack([uv, radius_px, self.trajectory.angles(t)[:, 0]])

    @property
    def frame_t_s(self) -> np.ndarray:
        """(F,) canonical time of each frame, s."""
        return np.arange(len(self.frames)) / self.fps

    def truth(self) -> dict[str, Any]:
        """JSON-ready ground truth of this recording."""
        return {"label": self.label, "seed": self.seed, "params": self.trajectory.params,
                "imu_start_s": self.imu_start_s, "imu_rate_hz": _rate(self.imu_t_s),
                "fps": self.fps, "n_frames": len(self.frames), "size": self.camera.size,
                "focal_px": self.camera.focal_px, "channels": list(IMU_COLUMNS[1:]),
                "gains": self.gains.tolist(), "biases": self.biases.tolist()}


def _rate(t_s: np.ndarray) -> float:
    return float((len(t_s) - 1) / (t_s[-1] - t_s[0])) if len(t_s) > 1 else 0.0


def make_recording(seed: int, label: str, duration_s: float, imu_start_s: float,
                   imu_rate_hz: float = 100.0, fps: float = 10.0, size: int = 224,
                   imu_jitter_s: float = 0.0005, accel_noise: float = 0.05,
                   gyro_noise: float = 0.005, accel_bias: float = 0.1, gyro_bias: float = 0.01,
                   gain_spread: float = 0.05) -> SyntheticRecording:
    """Render one recording of class ``label``; a deterministic function of the arguments.

    The video has ``round(duration_s * fps)`` frames starting at canonical 0 s; the IMU has
    ``round(duration_s * imu_rate_hz)`` samples starting at ``imu_start_s``.
    """
    if label not in CLASSES:
        raise ConfigError(f"unknown synthetic class {label!r}; known classes: {', '.join(CLASSES)}")
    rng = np.random.default_rng(seed)
    traj = Trajectory(label, sample_params(label, rng))
    cam = Camera(size)
    bg = background(rng, size, SCENES[CLASSES.index(label) % len(SCENES)])
    n_frames = max(1, int(round(duration_s * fps)))
    frames = render_frames(traj, np.arange(n_frames) / fps, cam, bg)

    n_imu = max(2, int(round(duration_s * imu_rate_hz)))
    jitter = np.clip(rng.normal(0.0, imu_jitter_s, n_imu), -0.4 / imu_rate_hz, 0.4 / imu_rate_hz)
    imu_t = imu_start_s + np.arange(n_imu) / imu_rate_hz + jitter  # (T,) s
    gains = 1.0 + rng.uniform(-gain_spread, gain_spread, 6)
    biases = np.concatenate([rng.normal(0.0, accel_bias, 3), rng.normal(0.0, gyro_bias, 3)])
    noise_std = np.array([accel_noise] * 3 + [gyro_noise] * 3)
    noise = rng.normal(0.0, 1.0, (n_imu, 6)) * noise_std
    imu = traj.motion(imu_t) * gains + biases + noise  # (T, 6)
    return SyntheticRecording(label=label, seed=int(seed), trajectory=traj, camera=cam,
                              frames=frames, fps=float(fps), imu_t_s=imu_t, imu=imu,
                              imu_start_s=float(imu_start_s), gains=gains, biases=biases)


def imu_csv(rec: SyntheticRecording) -> str:
    """The Ego4D-style IMU table of ``rec`` as CSV text (ms, m/s^2, rad/s)."""
    table = np.column_stack([rec.imu_t_s * 1000.0, rec.imu])  # (T, 7)
    lines = [",".join(IMU_COLUMNS)]
    lines += [f"{r[0]:.3f},{r[1]:.6f},{r[2]:.6f},{r[3]:.6f},{r[4]:.6f},{r[5]:.6f},{r[6]:.6f}"
              for r in table.tolist()]
    return "\n".join(lines) + "\n"


def write_recording(root: str | Path, uid: str, rec: SyntheticRecording, crf: int = 18) -> None:
    """Write ``videos/<uid>.mp4`` and ``imu/<uid>.csv`` under ``root``."""
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "imu").mkdir(parents=True, exist_ok=True)
    encode_mp4(root / "videos" / f"{uid}.mp4", rec.frames, rec.fps, crf=crf)
    (root / "imu" / f"{uid}.csv").write_text(imu_csv(rec))


def plan(cfg: SynthConfig) -> list[tuple[str, str, int, float]]:
    """(uid, label, seed, imu_start_s) of every recording, class by class."""
    rows = []
    for ci, label in enumerate(cfg.classes):
        for k in range(cfg.recordings_per_class):
            uid = f"{label}_{k:03d}"
            seq = np.random.SeedSequence([cfg.seed, ci, k])
            seed = int(seq.generate_state(1)[0])
            start = np.random.default_rng([cfg.seed, ci, k, 1]).uniform(
                -cfg.max_clock_offset_s, cfg.max_clock_offset_s)
            rows.append((uid, label, seed, float(cfg.imu_start_overrides.get(uid, start))))
    unknown = sorted(set(cfg.imu_start_overrides) - {r[0] for r in rows})
    if unknown:
        raise ConfigError(f"synth config: imu_start_overrides names unknown uids {unknown}; "
                          f"uids look like {rows[0][0]!r}")
    return rows


def split(cfg: SynthConfig, rows: list[tuple[str, str, int, float]]) -> dict[str, list[str]]:
    """Seeded split by recording within each class; every class lands in every split."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    n = cfg.recordings_per_class
    n_val = min(max(1, int(round(cfg.val_fraction * n))), n - 2)
    n_test = min(max(1, int(round(cfg.test_fraction * n))), n - 1 - n_val)
    for ci, label in enumerate(cfg.classes):
        uids = [r[0] for r in rows if r[1] == label]
        order = np.random.default_rng([cfg.seed, ci, 2]).permutation(n)
        out["test"] += [uids[i] for i in sorted(order[:n_test])]
        out["val"] += [uids[i] for i in sorted(order[n_test : n_test + n_val])]
        out["train"] += [uids[i] for i in sorted(order[n_test + n_val :])]
    return out


def generate(root: str | Path, cfg: SynthConfig) -> list[str]:
    """Write the whole dataset into ``root`` (created if missing); returns the uids."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = plan(cfg)
    truth: dict[str, Any] = {}
    started = time.perf_counter()
    for uid, label, seed, imu_start in progress(rows, desc="synth recordings", unit="rec"):
        rec = make_recording(seed, label, cfg.duration_s, imu_start, imu_rate_hz=cfg.imu_rate_hz,
                             fps=cfg.fps, size=cfg.size, imu_jitter_s=cfg.imu_jitter_s,
                             accel_noise=cfg.accel_noise, gyro_noise=cfg.gyro_noise,
                             accel_bias=cfg.accel_bias, gyro_bias=cfg.gyro_bias,
                             gain_spread=cfg.gain_spread)
        write_recording(root, uid, rec, crf=cfg.crf)
        truth[uid] = rec.truth()
    labels = {r[0]: r[1] for r in rows}
    for name, uids in split(cfg, rows).items():
        (root / f"{name}.txt").write_text("".join(f"{u}\t{labels[u]}\n" for u in uids))
    (root / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    log.info("synthetic dataset: %d recordings of %d classes (%.0f s each) in %s, %.1f s",
             len(rows), cfg.n_classes, cfg.duration_s, root, time.perf_counter() - started)
    return [r[0] for r in rows]


def run(cfg: SynthConfig, out_root: str | Path) -> list[str]:
    """(Re)generate ``out_root`` atomically: build a hidden sibling, then swap it in."""
    out = Path(out_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        uids = generate(tmp, cfg)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return uids
