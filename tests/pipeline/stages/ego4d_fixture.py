"""Build tiny datasets in the Ego4D layout for stage tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_video(path: Path, n_frames: int, fps: int = 10, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            img = np.full((size, size, 3), (i * 7) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_imu(path: Path, t_s: np.ndarray, values: np.ndarray) -> None:
    """values (T, 6) in m/s^2 and rad/s; timestamps in seconds on the video clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "canonical_timestamp_ms,accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z"
    table = np.column_stack([t_s * 1000.0, values])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.6f")


def make_dataset(root: Path, recordings: dict[str, tuple[str, str]], video_s: float = 12.0,
                 imu_start_s: float = 0.0, imu_rate: float = 100.0, fps: int = 10) -> None:
    """recordings: uid -> (label, split). IMU: a 1 Hz sine per channel starting at imu_start_s,
    plus gravity (9.80665 m/s^2) on accl_z so that the imu stage's units check passes."""
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for uid, (label, split) in recordings.items():
        write_video(root / "videos" / f"{uid}.mp4", int(video_s * fps), fps)
        t = imu_start_s + np.arange(int(video_s * imu_rate)) / imu_rate
        values = np.column_stack([np.sin(2 * np.pi * (1 + c) * 0.5 * t) for c in range(6)])
        values[:, 2] += 9.80665
        write_imu(root / "imu" / f"{uid}.csv", t, values)
        lists[split].append(f"{uid}\t{label}")
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
