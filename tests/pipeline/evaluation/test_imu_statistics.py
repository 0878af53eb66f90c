"""The raw-IMU statistics baseline: documented per-channel features of the valid samples."""

import numpy as np
import pytest

from comodo.pipeline.evaluation.imu_statistics import STATISTICS, imu_statistics


def test_statistics_of_a_known_channel():
    window = np.array([[[1.0, 2.0, 3.0, 4.0, 0.0, 0.0]]], np.float32)  # 4 real samples, 2 padding
    got = dict(zip(STATISTICS, imu_statistics(window, np.array([4]))[0], strict=True))
    assert got["mean"] == pytest.approx(2.5)
    assert got["std"] == pytest.approx(np.sqrt(1.25))
    assert (got["min"], got["max"]) == (1.0, 4.0)
    assert got["p50"] == pytest.approx(2.5) and got["p25"] == pytest.approx(1.75)
    assert got["p10"] == pytest.approx(1.3) and got["p90"] == pytest.approx(3.7)
    assert got["rms"] == pytest.approx(np.sqrt(7.5))
    assert got["mean_abs_diff"] == pytest.approx(1.0)
    assert got["skewness"] == pytest.approx(0.0, abs=1e-6)
    assert got["kurtosis"] == pytest.approx(1.64 - 3.0)  # mean((x-m)^4)/std^4 = 2.5625/1.5625


def test_features_are_channel_major_and_ignore_padding():
    rng = np.random.default_rng(0)
    imu = rng.normal(size=(3, 2, 20)).astype(np.float32)
    padded = np.concatenate([imu, np.zeros((3, 2, 15), np.float32)], axis=2)
    feats = imu_statistics(imu)
    assert feats.shape == (3, 2 * len(STATISTICS))
    np.testing.assert_allclose(imu_statistics(padded, np.full(3, 20)), feats, rtol=1e-6)
    np.testing.assert_allclose(feats[:, len(STATISTICS)], imu[:, 1].mean(axis=1), rtol=1e-5)
    assert not np.allclose(imu_statistics(padded), feats)


def test_a_constant_channel_has_zero_spread_skewness_and_kurtosis():
    feats = dict(zip(STATISTICS, imu_statistics(np.full((1, 1, 8), 2.0, np.float32))[0],
                     strict=True))
    assert feats["std"] == feats["skewness"] == feats["kurtosis"] == feats["mean_abs_diff"] == 0.0
