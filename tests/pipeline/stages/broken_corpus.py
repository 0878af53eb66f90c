"""A corpus of broken recordings in the Ego4D layout, beside good ones.

Every broken recording has one fault; the stages must keep it (the cleaner repairs it) or
reject it with a counted reason, never lose it silently nor stop with a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ego4d_fixture import make_dataset, write_imu, write_video

N_GOOD = 30
VIDEO_S, FPS, IMU_HZ = 12.0, 10, 100.0


def _imu(root: Path, uid: str) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(root / "imu" / f"{uid}.csv", delimiter=",", skiprows=1)
    return table[:, 0] / 1000.0, table[:, 1:]


def _rewrite(root: Path, uid: str, keep) -> None:
    t, x = _imu(root, uid)
    t, x = keep(t, x)
    write_imu(root / "imu" / f"{uid}.csv", t, x)


def _nan_timestamps(t, x):
    t = t.copy()
    t[100:110] = np.nan
    return t, x


def _duplicate_timestamps(t, x):
    return np.insert(t, 300, t[300:320]), np.insert(x, 300, x[300:320], axis=0)


def _backwards(t, x):
    t = t.copy()
    t[500:510] = t[500:510][::-1]
    return t, x


def _gap(t, x):
    keep = (t < 3.0) | (t >= 6.0)  # a 3 s segment (shorter than a window), a 3 s gap
    return t[keep], x[keep]


def _short(t, x):
    return t[:50], x[:50]  # 0.5 s


FAULTS = {
    "nan_timestamps": lambda root, uid: _rewrite(root, uid, _nan_timestamps),
    "duplicate_timestamps": lambda root, uid: _rewrite(root, uid, _duplicate_timestamps),
    "backwards_timestamps": lambda root, uid: _rewrite(root, uid, _backwards),
    "gap": lambda root, uid: _rewrite(root, uid, _gap),
    "short_imu": lambda root, uid: _rewrite(root, uid, _short),
    "short_video": lambda root, uid: write_video(root / "videos" / f"{uid}.mp4", 2 * FPS, FPS),
    "missing_imu": lambda root, uid: (root / "imu" / f"{uid}.csv").unlink(),
    "empty_imu": lambda root, uid: (root / "imu" / f"{uid}.csv").write_bytes(b""),
    "truncated_imu": lambda root, uid: _truncate(root / "imu" / f"{uid}.csv", 0.4),
    "wrong_columns": lambda root, uid: _rename_columns(root / "imu" / f"{uid}.csv"),
    "missing_video": lambda root, uid: (root / "videos" / f"{uid}.mp4").unlink(),
    "empty_video": lambda root, uid: (root / "videos" / f"{uid}.mp4").write_bytes(b""),
    "truncated_video": lambda root, uid: _truncate(root / "videos" / f"{uid}.mp4", 0.3),
}
ODD_NAME = "odd name-ü.1"


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction) + 7])  # mid-line, mid-packet


def _rename_columns(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[0] = "time,ax,ay,az,gx,gy,gz"
    path.write_text("\n".join(lines) + "\n")


def make_broken_corpus(root: Path) -> dict[str, str]:
    """Write the corpus; returns recording id -> its fault ("good" for the sound ones)."""
    faults = {f"good{i:02d}": "good" for i in range(N_GOOD)} | {ODD_NAME: "good"}
    faults |= {f"bad_{name}": name for name in FAULTS}
    splits = ["train", "test"]
    recordings = {uid: ("walk" if k % 2 else "run", splits[k % 3 == 0])
                  for k, uid in enumerate(faults)}
    make_dataset(root, recordings, video_s=VIDEO_S, imu_rate=IMU_HZ, fps=FPS)
    for uid, fault in faults.items():
        if fault != "good":
            FAULTS[fault](root, uid)
    return faults
