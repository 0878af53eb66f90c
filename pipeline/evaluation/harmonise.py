"""Bring one dataset's IMU windows to the sampling rate and window length of another.

An encoder distilled on dataset A reads windows of A's layout: ``C_A`` channels, ``T_A``
samples at ``r_A`` Hz. To judge it on dataset B, each of B's windows is mapped as follows:

1. keep its valid part: the first ``n_valid`` samples (whole-mode windows are zero-padded);
2. resample that part from ``r_B`` to ``r_A`` by linear interpolation on the time grid
   ``t_k = k / r_A`` for ``k = 0 .. floor((n_valid - 1) * r_A / r_B)`` (time 0 = the first
   sample; no anti-alias filter, so downsampling picks interpolated instants);
3. fit it to ``T_A``: cut the end when longer, zero-pad the end when shorter (as A's own
   whole-mode windows are padded).

Channels are matched by position and their count must agree; units are not converted (the
SVM protocol L2-normalises and standardises the features anyway).
"""

from __future__ import annotations

import numpy as np

from comodo.stores.errors import ConfigError


def resampled_length(n_valid: int, rate_from: float, rate_to: float) -> int:
    """Samples of a series of ``n_valid`` samples at ``rate_from`` after resampling."""
    if n_valid < 1:
        return 0
    # a tiny tolerance keeps k = (n - 1) * ratio integral when rates are not exact floats
    return int(np.floor((n_valid - 1) * rate_to / rate_from + 1e-9)) + 1


def resample_series(series: np.ndarray, rate_from: float, rate_to: float) -> np.ndarray:
    """(C, n) at ``rate_from`` -> (C, m) at ``rate_to`` by linear interpolation."""
    channels, n = series.shape  # (C, n)
    m = resampled_length(n, rate_from, rate_to)
    t_from = np.arange(n) / rate_from  # (n,)
    t_to = np.minimum(np.arange(m) / rate_to, t_from[-1] if n else 0.0)  # (m,)
    return np.stack([np.interp(t_to, t_from, series[c]) for c in range(channels)]
                    ) if m else np.zeros((channels, 0))


def harmonised_valid(n_valid: np.ndarray, length: int, rate_from: float, rate_to: float,
                     n_samples: int) -> np.ndarray:
    """(N,) real samples of each harmonised window (what ``harmonise_windows`` keeps)."""
    valid = np.clip(np.asarray(n_valid, np.int64), 1, length)
    return np.array([min(resampled_length(int(v), rate_from, rate_to), n_samples) for v in valid],
                    dtype=np.int64)


def harmonise_windows(imu: np.ndarray, n_valid: np.ndarray, rate_from: float, rate_to: float,
                      n_channels: int, n_samples: int) -> np.ndarray:
    """(N, C, T_B) windows at ``rate_from`` -> (N, C, n_samples) at ``rate_to`` (rule above)."""
    n, channels, length = imu.shape  # (N, C, T_B)
    if channels != n_channels:
        raise ConfigError(f"cross-dataset evaluation: the target windows have {channels} "
                          f"channels but the encoder reads {n_channels}; pair datasets with the "
                          f"same IMU channels (accelerometer xyz + gyroscope xyz)")
    if rate_from <= 0 or rate_to <= 0:
        raise ConfigError(f"cross-dataset evaluation needs positive rates, got {rate_from} -> "
                          f"{rate_to} Hz; check rate_hz in the windows stores' attrs")
    out = np.zeros((n, channels, n_samples), dtype=np.float32)  # (N, C, T_A)
    for i in range(n):
        valid = int(min(max(n_valid[i], 0), length))
        series = resample_series(imu[i, :, :valid].astype(np.float64), rate_from, rate_to)
        keep = min(series.shape[1], n_samples)
        out[i, :, :keep] = series[:, :keep]
    return out
