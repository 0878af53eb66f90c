"""The reference's IMU resampler: torchaudio's windowed-sinc interpolation, in numpy.

Breezelled/COMODO (and imu2clip) resample Ego4D IMU with ``torchaudio.functional.resample``
at its defaults (``sinc_interp_hann``, ``lowpass_filter_width`` 6, ``rolloff`` 0.99) on a
float64 array. ``sinc_resample`` builds the same kernel and applies it the same way (zero
padding at both ends, output sample j at time j / new_rate, no delay, ``ceil(n * new / orig)``
samples), so it reproduces torchaudio without depending on it. ``imu.resampler: reference``
selects it in place of the polyphase filter (``pipeline.signal``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def sinc_kernel(orig: int, new: int, lowpass_filter_width: int = 6,
                rolloff: float = 0.99) -> tuple[np.ndarray, int]:
    """(new, 2 * width + orig) float64 kernel, one row per output phase, and ``width``;
    ``orig`` and ``new`` already divided by their gcd (torchaudio ``_get_sinc_resample_kernel``)."""
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    lag = np.arange(-width, width + orig, dtype=np.float64) / orig  # (K,)
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + lag) * base  # (new, K)
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2  # Hann
    return np.sinc(t) * window * (base / orig), width


def sinc_resample(x: np.ndarray, orig_hz: int, new_hz: int, lowpass_filter_width: int = 6,
                  rolloff: float = 0.99) -> np.ndarray:
    """(T, C) at ``orig_hz`` -> (ceil(T * new_hz / orig_hz), C) float64 at ``new_hz``."""
    gcd = math.gcd(int(orig_hz), int(new_hz))
    orig, new = int(orig_hz) // gcd, int(new_hz) // gcd
    kernel, width = sinc_kernel(orig, new, lowpass_filter_width, rolloff)  # (new, K)
    n_in, n_ch = x.shape  # (T, C)
    padded = np.pad(np.asarray(x, dtype=np.float64), ((width, width + orig), (0, 0)))
    frames = sliding_window_view(padded, kernel.shape[1], axis=0)[::orig]  # (F, C, K)
    out = np.einsum("fck,pk->fpc", frames, kernel).reshape(-1, n_ch)  # (F * new, C)
    return out[: math.ceil(new * n_in / orig)]


def reference_resample(x: np.ndarray, up: int, down: int, gain: np.ndarray | None = None
                       ) -> np.ndarray:
    """``signal``'s resampler interface: (T, C) -> (ceil(T * up / down), C) float32 of
    ``x * gain`` resampled by ``up / down`` with ``sinc_resample``."""
    scaled = np.asarray(x, dtype=np.float64) * (1.0 if gain is None else gain)
    return sinc_resample(scaled, down, up).astype(np.float32)
