"""The frame sampling rule: centres of F equal sub-intervals, nearest frame by time."""

from __future__ import annotations

import numpy as np

from comodo.pipeline.video.sampling import nearest_frames, target_times, window_bounds_error


def test_targets_are_the_centres_of_equal_sub_intervals():
    np.testing.assert_allclose(target_times(2.0, 6.0, 4), [2.5, 3.5, 4.5, 5.5])
    np.testing.assert_allclose(target_times(0.0, 5.0, 8), (np.arange(8) + 0.5) * 0.625)


def test_nearest_frame_by_time_for_a_5s_window_at_10fps():
    times = np.arange(100) / 10.0  # 10 fps
    idx = nearest_frames(times, target_times(5.0, 10.0, 8), 0.1)
    # targets 5.3125, 5.9375, ... -> frames 53, 59, 66, 72, 78, 84, 91, 97
    assert idx.tolist() == [53, 59, 66, 72, 78, 84, 91, 97]


def test_ties_go_to_the_earlier_frame_even_with_float32_timestamps():
    times = np.arange(50) / 10.0
    targets = np.array([1.05, 2.25, 3.35])  # exactly between two frames
    assert nearest_frames(times, targets, 0.1).tolist() == [10, 22, 33]
    jittered = times.astype(np.float32).astype(np.float64)  # what decord reports
    assert nearest_frames(jittered, targets, 0.1).tolist() == [10, 22, 33]


def test_irregular_timestamps_use_the_true_nearest_frame():
    times = np.array([0.0, 0.04, 0.2, 0.21, 0.5])
    assert nearest_frames(times, np.array([0.11, 0.13, 0.3, 0.36]), 0.04).tolist() == [1, 2, 3, 4]


def test_targets_past_the_last_frame_by_more_than_a_period_are_unservable():
    times = np.arange(40) / 10.0  # last frame at 3.9 s
    assert nearest_frames(times, np.array([3.95, 3.99, 4.01, 4.2]), 0.1).tolist() == [39, 39, -1, -1]
    assert nearest_frames(np.array([]), np.array([0.5]), 0.1).tolist() == [-1]


def test_window_bounds():
    assert window_bounds_error(0.0, 5.0) is None
    assert "not an interval" in window_bounds_error(5.0, 5.0)
    assert "before the first frame" in window_bounds_error(-1.0, 4.0)
    assert "not an interval" in window_bounds_error(float("nan"), 4.0)
