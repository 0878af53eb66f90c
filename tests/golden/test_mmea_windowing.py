"""UESTC-MMEA-CL count scaling and Ego4D-style window counts against the reference.

The reference pairs video and IMU through pytorchvideo's clip sampler, which stops at the
first clip flagged "last" without using it: a recording of L seconds gives
min(T // 1000, max(0, floor(L / 5) - 1)) pairs. comodo keeps every full 5 s window that both
streams cover, floor(L / 5) of them here: one more per recording whenever the last clip fits
(docs/REFERENCE.md). IMU-only windows are the same in both."""

from __future__ import annotations

import numpy as np

from comodo.pipeline import signal
from comodo.pipeline.datasets.base import ImuData
from comodo.pipeline.windowing import tile_segment

MMEA_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def test_mmea_scaling_is_bit_identical_to_the_reference(oracle):
    ref = oracle("mmea_windowing")
    counts = ref["raw_counts"]  # (N, 6) int64
    recording = ImuData(np.arange(len(counts)) / 25.0, counts.astype(np.float64), MMEA_CHANNELS,
                        ["count"] * 6)
    (segment,), units, _ = signal.process(recording, None, 0.5, "mmea")
    assert units == ["g"] * 3 + ["deg/s"] * 3 and segment.values.dtype == np.float32
    np.testing.assert_array_equal(segment.values.T, ref["scaled_f32"])  # (6, N), bit for bit
    assert signal.MMEA_SCALE == {"acc": 1.0 / ref["acc_divisor"], "gyro": 1.0 / ref["gyro_divisor"]}


def test_every_int16_count_scales_to_the_reference_float32():
    counts = np.arange(-32768, 32768, dtype=np.float64)
    for kind, divisor in (("acc", 16384.0), ("gyro", 16.4)):
        by_factor = (counts * signal.MMEA_SCALE[kind]).astype(np.float32)
        np.testing.assert_array_equal(by_factor, (counts / divisor).astype(np.float32))


def windows_of(n_samples: int, length_s: float, with_video: bool) -> np.ndarray:
    rec = {"video_kind": "mp4" if with_video else "none", "video_start_s": 0.0,
           "video_duration_s": length_s if with_video else None}
    seg = {"rate_hz": 200.0, "t0_s": 0.0, "n_samples": n_samples, "row_start": 0}
    return tile_segment(rec, seg, 5.0, 1000)["sample_start"]


def test_imu_only_window_counts_match_the_reference(oracle):
    ref = oracle("mmea_windowing")
    for n, want in zip(ref["n_samples"], ref["n_imu_windows"], strict=True):
        starts = windows_of(int(n), float(n) / 200.0, with_video=False)
        assert len(starts) == want and starts.tolist() == [1000 * i for i in range(want)]


def test_video_imu_pairs_are_the_reference_pairs_plus_the_last_clip(oracle):
    ref = oracle("mmea_windowing")
    table = ref["pairs_table"]  # rows (recording, clip_start_s, clip_end_s, imu_start, imu_end)
    for k, (n, length, want) in enumerate(zip(ref["n_samples"], ref["lengths_s"], ref["n_video_imu_pairs"],
                                              strict=True)):
        starts = windows_of(int(n), float(length), with_video=True)
        assert len(starts) == min(int(n) // 1000, int(np.floor(length / 5.0)))
        assert len(starts) == (want + 1 if length >= 5.0 else want)
        mine = table[table[:, 0] == k]
        assert starts[: len(mine)].tolist() == mine[:, 3].astype(int).tolist()  # the shared pairs agree
