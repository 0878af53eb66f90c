"""Cross-dataset harmonisation: valid part, linear resampling to the source rate, cut/pad."""

import numpy as np
import pytest

from comodo.pipeline.evaluation.harmonise import harmonise_windows, resampled_length
from comodo.stores.errors import ConfigError


def ramp_windows(rate: float, n_valid: int, length: int) -> np.ndarray:
    """(1, 2, length): channel 0 = 3 t + 1, channel 1 = -t, zero after n_valid samples."""
    t = np.arange(length) / rate
    imu = np.stack([3 * t + 1, -t])[None].astype(np.float64)
    imu[:, :, n_valid:] = 0.0
    return imu


def test_upsampling_a_linear_signal_is_exact_and_padded_to_the_source_length():
    imu = ramp_windows(10.0, 100, 100)  # 9.9 s at 10 Hz
    out = harmonise_windows(imu, np.array([100]), 10.0, 200.0, 2, 2000)
    n = resampled_length(100, 10.0, 200.0)
    assert n == 1981  # 0 .. 9.9 s at 200 Hz
    t = np.arange(n) / 200.0
    np.testing.assert_allclose(out[0, 0, :n], 3 * t + 1, atol=1e-5)
    np.testing.assert_allclose(out[0, 1, :n], -t, atol=1e-5)
    assert out.shape == (1, 2, 2000) and not out[0, :, n:].any()


def test_downsampling_by_an_integer_factor_keeps_every_kth_valid_sample_and_cuts_the_end():
    rng = np.random.default_rng(0)
    imu = rng.normal(size=(3, 2, 1000))
    n_valid = np.array([1000, 600, 401])
    out = harmonise_windows(imu, n_valid, 200.0, 50.0, 2, 120)
    np.testing.assert_allclose(out[0], imu[0, :, ::4][:, :120], rtol=1e-6)  # 250 -> cut to 120
    np.testing.assert_allclose(out[1], imu[1, :, :600:4][:, :120], rtol=1e-6)
    np.testing.assert_allclose(out[2, :, :101], imu[2, :, :401:4], rtol=1e-6)
    assert not out[2, :, 101:].any()  # padding of the target is never read as signal


def test_a_sine_keeps_its_frequency_in_seconds_after_resampling():
    rate_b, rate_a = 50.0, 200.0
    t_b = np.arange(250) / rate_b
    imu = np.stack([np.sin(2 * np.pi * 2 * t_b)] * 2)[None]
    out = harmonise_windows(imu, np.array([250]), rate_b, rate_a, 2, 1000)
    spectrum = np.abs(np.fft.rfft(out[0, 0, :997]))
    peak_hz = np.argmax(spectrum) * rate_a / 997
    assert peak_hz == pytest.approx(2.0, abs=0.25)


def test_channel_count_mismatch_is_refused_with_both_counts():
    with pytest.raises(ConfigError, match="3 channels but the encoder reads 6"):
        harmonise_windows(np.zeros((1, 3, 10)), np.array([10]), 10.0, 200.0, 6, 100)
