"""Frame sampling reproduces the reference's UniformTemporalSubsample indices exactly."""

from __future__ import annotations

import numpy as np
import pytest

from comodo.pipeline.video.sampling import SAMPLING_RULES, frames_in_window, uniform_indices


def test_uniform_indices_match_the_reference_on_every_pair(oracle):
    ref = oracle("frame_indices")
    offsets = ref["offsets"]
    for p, (t, n) in enumerate(ref["pairs"]):
        want = ref["indices"][offsets[p] : offsets[p + 1]]
        np.testing.assert_array_equal(uniform_indices(int(t), int(n)), want, err_msg=f"(t, n) = ({t}, {n})")


def test_uniform_indices_keep_the_float32_truncation_on_sensitive_pairs(oracle):
    ref = oracle("frame_indices")
    offsets = ref["sensitive_offsets"]
    for p, (t, n) in enumerate(ref["sensitive_pairs"]):
        got = uniform_indices(int(t), int(n))
        np.testing.assert_array_equal(got, ref["sensitive_indices"][offsets[p] : offsets[p + 1]])
        assert not np.array_equal(got, ref["sensitive_exact_floor"][offsets[p] : offsets[p + 1]])


@pytest.mark.parametrize("n_frames", [8, 16])
def test_uniform_rule_on_a_10fps_clock_gives_the_reference_ego4d_frames(oracle, n_frames):
    ref = oracle("frame_indices")
    times = np.arange(400) / 10.0  # frame k presented at k / 10 s
    rule = SAMPLING_RULES["uniform"]
    for start, want in zip(ref["ego4d_clip_starts_s"], ref[f"ego4d_frames_n{n_frames}"], strict=True):
        targets = rule.targets(float(start), float(start) + 5.0, n_frames, times, 0.1)
        np.testing.assert_array_equal(np.rint(targets * 10).astype(np.int64), want)


def test_frames_in_window_is_half_open_and_refuses_windows_past_the_video():
    times = np.arange(50) / 10.0  # last frame at 4.9 s
    assert frames_in_window(times, 1.0, 2.0, 0.1).tolist() == list(range(10, 20))
    jittered = times.astype(np.float32).astype(np.float64)  # float32 clocks land just off k/10
    assert frames_in_window(jittered, 1.0, 2.0, 0.1).tolist() == list(range(10, 20))
    assert frames_in_window(times, 4.5, 5.0, 0.1).tolist() == list(range(45, 50))
    assert frames_in_window(times, 4.5, 5.1, 0.1) is None
    with pytest.raises(ValueError, match="at least|>= 1"):
        uniform_indices(0, 8)
