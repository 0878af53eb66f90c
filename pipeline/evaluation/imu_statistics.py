"""A baseline without a network: per-channel statistics of each window's valid IMU samples.

For every channel of a window (B, C, T), over its first ``n_valid`` samples only (padding is
never counted), ``STATISTICS`` in this order:

- ``mean``, ``std`` (population), ``min``, ``max``;
- the 10th, 25th, 50th, 75th and 90th percentiles (linear interpolation, numpy's default);
- ``rms`` (square root of the mean square: the energy per sample, offset included);
- ``mean_abs_diff``: mean absolute difference of consecutive samples (how fast it moves);
- ``skewness`` and ``kurtosis`` (excess) of the centred samples, 0 for a constant channel.

The feature vector is channel-major: ``[c0 mean, c0 std, ..., c0 kurtosis, c1 mean, ...]``,
``C * len(STATISTICS)`` values. The benchmark's ``imu_statistics`` row feeds it to the same
SVM protocol as an encoder's features, so a learned encoder that loses to it is visible.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
STATISTICS = ("mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90", "rms",
              "mean_abs_diff", "skewness", "kurtosis")


def channel_statistics(series: np.ndarray) -> np.ndarray:
    """(C, n) valid samples of one window -> (C, len(STATISTICS)) float64."""
    x = np.asarray(series, dtype=np.float64)  # (C, n)
    mean = x.mean(axis=1)
    std = x.std(axis=1)
    centred = x - mean[:, None]
    safe = np.where(std > 0, std, 1.0)
    skew = np.where(std > 0, (centred**3).mean(axis=1) / safe**3, 0.0)
    kurt = np.where(std > 0, (centred**4).mean(axis=1) / safe**4 - 3.0, 0.0)
    diff = np.abs(np.diff(x, axis=1)).mean(axis=1) if x.shape[1] > 1 else np.zeros(len(x))
    quantiles = np.quantile(x, QUANTILES, axis=1)  # (Q, C)
    columns = [mean, std, x.min(axis=1), x.max(axis=1), *quantiles,
               np.sqrt((x**2).mean(axis=1)), diff, skew, kurt]
    return np.stack(columns, axis=1)  # (C, S)


def imu_statistics(imu: np.ndarray, n_valid: np.ndarray | None = None) -> np.ndarray:
    """(N, C, T) windows -> (N, C * len(STATISTICS)) float32 features of their valid parts."""
    n, _channels, samples = imu.shape
    if n_valid is None:
        n_valid = np.full(n, samples)
    valid = np.clip(np.asarray(n_valid, dtype=np.int64), 1, samples)
    rows = [channel_statistics(imu[i, :, : valid[i]]).ravel() for i in range(n)]
    return np.asarray(rows, dtype=np.float32).reshape(n, -1)
