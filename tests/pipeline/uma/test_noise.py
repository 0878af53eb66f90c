"""Noise suite: shapes kept, content moved as described, deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest

from comodo.pipeline.uma.noise import NOISES, apply_noise, mask_outside, resample_span, shift_time


def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((6, 3, 40)).astype(np.float32),
            rng.standard_normal((6, 10, 5)).astype(np.float32))


def test_shift_moves_content_by_the_fraction_and_zero_fills() -> None:
    x = np.arange(1, 11, dtype=np.float32).reshape(1, 1, 10)
    right = shift_time(x, np.array([0.3]), axis=2)
    assert right[0, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    left = shift_time(x, np.array([-0.2]), axis=2)
    assert left[0, 0].tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]


def test_dilation_keeps_length_and_stretches_half_the_window() -> None:
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 20)
    out = resample_span(x, np.array([0.25]), 0.5, axis=2)
    assert out.shape == x.shape
    assert out[0, 0, 0] == pytest.approx(5.0) and out[0, 0, -1] == pytest.approx(14.5)
    assert np.all(np.diff(out[0, 0]) == pytest.approx(0.5))


def test_crop_keeps_sixty_percent_in_place() -> None:
    x = np.ones((1, 2, 10), np.float32)
    out = mask_outside(x, np.array([0.2]), 0.6, axis=2)
    assert out[0, 0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("name", list(NOISES))
def test_every_noise_keeps_shapes_and_is_deterministic_per_seed(name: str) -> None:
    imu, video = arrays()
    a_imu, a_video = apply_noise(name, imu, video, seed=5)
    b_imu, b_video = apply_noise(name, imu, video, seed=5)
    assert a_imu.shape == imu.shape and a_video.shape == video.shape
    assert np.array_equal(a_imu, b_imu) and np.array_equal(a_video, b_video)
    if name != "clean":
        c_imu, _ = apply_noise(name, imu, video, seed=6)
        assert not np.array_equal(a_imu, imu)
        assert not np.array_equal(a_imu, c_imu)


def test_misalign_moves_the_imu_only_and_shift_moves_both() -> None:
    imu, video = arrays()
    m_imu, m_video = apply_noise("misalign", imu, video, seed=1)
    assert np.array_equal(m_video, video) and not np.array_equal(m_imu, imu)
    s_imu, s_video = apply_noise("shift", imu, video, seed=1)
    assert not np.array_equal(s_video, video) and not np.array_equal(s_imu, imu)
