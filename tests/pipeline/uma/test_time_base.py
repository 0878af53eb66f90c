"""Whole-trial IMU: the valid part stretched to the trial span; padding never a statistic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from uma_fixture import synthetic_arrays

from comodo.pipeline.uma.data import (
    Normalizer,
    eval_view,
    stretch_valid,
    train_view,
    with_time_base,
)
from comodo.pipeline.uma.splits import make_splits


def padded(seed: int = 0, fill: float = 0.0) -> tuple:
    """The fixture with each window's IMU cut to a random valid length and ``fill`` after it."""
    data = synthetic_arrays(seed)
    n, _channels, samples = data.imu.shape
    n_valid = np.random.default_rng(7).integers(samples // 3, samples + 1, n)
    imu = data.imu.copy()
    for i, k in enumerate(n_valid):
        imu[i, :, k:] = fill
    return dataclasses.replace(data, imu=imu, n_valid=n_valid), n_valid


def test_a_ramp_over_the_valid_part_becomes_a_ramp_over_the_whole_window() -> None:
    imu = np.zeros((2, 1, 101), np.float32)
    imu[0, 0, :51] = np.linspace(0, 1, 51)
    imu[1, 0] = np.sin(np.arange(101))
    out = stretch_valid(imu, np.array([51, 101]))
    np.testing.assert_allclose(out[0, 0], np.linspace(0, 1, 101), atol=1e-6)
    np.testing.assert_array_equal(out[1], imu[1])  # a full window is left as it is


def test_stretch_removes_padding_and_pad_keeps_the_stored_layout() -> None:
    data, _n_valid = padded()
    stretched = with_time_base(data, "stretch")
    assert stretched.n_valid is None
    assert np.all(np.abs(stretched.imu[:, :, -1]).sum(axis=1) > 0)  # the last sample is real data
    assert with_time_base(data, "pad") is data


def test_padding_is_not_in_the_normaliser_statistics_and_stays_zero() -> None:
    data, n_valid = padded(fill=0.0)
    garbage, _ = padded(fill=1e3)
    splits = make_splits(data.labels.size, data.subjects, seed=0)
    norm = Normalizer.fit(train_view(data, splits))
    norm_garbage = Normalizer.fit(train_view(garbage, splits))
    np.testing.assert_array_equal(norm.imu_mean, norm_garbage.imu_mean)
    np.testing.assert_array_equal(norm.imu_std, norm_garbage.imu_std)
    valid = np.concatenate([data.imu[i, :, :n_valid[i]] for i in splits.align], axis=1)  # (C, n)
    np.testing.assert_allclose(norm.imu_mean[:, 0], valid.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.imu_std[:, 0], valid.std(axis=1), rtol=1e-4)
    with_padding = Normalizer.fit(train_view(dataclasses.replace(data, n_valid=None), splits))
    assert not np.allclose(with_padding.imu_mean, norm.imu_mean)  # counting the padding would show
    test = eval_view(garbage, splits.test, norm)
    for row, k in zip(test.imu, n_valid[splits.test]):
        assert np.all(row[:, k:] == 0)


@pytest.mark.parametrize("bad", ["warp"])
def test_an_unknown_time_base_is_refused(bad: str) -> None:
    from comodo.stores.errors import ConfigError

    with pytest.raises(ConfigError, match="stretch, pad"):
        with_time_base(synthetic_arrays(), bad)
