"""The evaluation noise suite, deterministic per seed.

Each noise maps ``(imu (N, C, T), video (N, F, D), rng)`` to new arrays of the same shapes;
time is the last IMU axis and the frame axis of the video. Per-window offsets are drawn as
fractions of the window, so both modalities move by the same share of their own length.

``shift``     content moved by up to ``SHIFT_MAX`` of the window in both modalities (zero fill)
``misalign``  the same shift applied to the IMU only
``dilation``  a random 50% span of both modalities, linearly upsampled to full length
``crop``      a random 60% span of both modalities kept in place, the rest zeroed
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from comodo.pipeline.registry import Registry

SHIFT_MAX = 0.3
DILATION_KEEP = 0.5
CROP_KEEP = 0.6

NoiseFn = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
NOISES: Registry[NoiseFn] = Registry("noise")


def shift_time(x: np.ndarray, fractions: np.ndarray, axis: int) -> np.ndarray:
    """Move each row's content by ``fractions[i]`` of its length along ``axis``; zero fill."""
    x_t = np.moveaxis(x, axis, -1)  # (N, ..., T)
    length = x_t.shape[-1]
    out = np.zeros_like(x_t)
    for i, frac in enumerate(fractions):
        k = int(round(float(frac) * length))
        if k >= 0:
            out[i, ..., k:] = x_t[i, ..., : length - k]
        else:
            out[i, ..., :k] = x_t[i, ..., -k:]
    return np.moveaxis(out, -1, axis)


def resample_span(x: np.ndarray, starts: np.ndarray, keep: float, axis: int) -> np.ndarray:
    """Each row's span [start, start + keep) (fractions) stretched to the full length."""
    x_t = np.moveaxis(x, axis, -1)  # (N, ..., T)
    length = x_t.shape[-1]
    out = np.empty_like(x_t)
    for i, start in enumerate(starts):
        pos = (float(start) + keep * np.arange(length) / length) * length  # source positions
        lo = np.clip(np.floor(pos).astype(int), 0, length - 1)
        hi = np.clip(lo + 1, 0, length - 1)
        w = (pos - lo).astype(x.dtype)
        row = x_t[i]  # (..., T)
        out[i] = row[..., lo] * (1 - w) + row[..., hi] * w
    return np.moveaxis(out, -1, axis)


def mask_outside(x: np.ndarray, starts: np.ndarray, keep: float, axis: int) -> np.ndarray:
    """Zero each row outside its span [start, start + keep) (fractions of the length)."""
    x_t = np.moveaxis(x, axis, -1).copy()  # (N, ..., T)
    length = x_t.shape[-1]
    for i, start in enumerate(starts):
        a = int(round(float(start) * length))
        b = max(a + 1, int(round((float(start) + keep) * length)))
        x_t[i, ..., :a] = 0
        x_t[i, ..., b:] = 0
    return np.moveaxis(x_t, -1, axis)


@NOISES.register("clean", doc="no noise")
def clean(imu: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return imu, video


@NOISES.register("shift", doc="both modalities shifted in time by the same fraction")
def time_shift(imu: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    frac = rng.uniform(-SHIFT_MAX, SHIFT_MAX, size=imu.shape[0])
    return shift_time(imu, frac, axis=2), shift_time(video, frac, axis=1)


@NOISES.register("misalign", doc="the IMU alone shifted in time")
def misalign(imu: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    frac = rng.uniform(-SHIFT_MAX, SHIFT_MAX, size=imu.shape[0])
    return shift_time(imu, frac, axis=2), video


@NOISES.register("dilation", doc="a random 50% span of both, upsampled to full length")
def dilation(imu: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    starts = rng.uniform(0.0, 1.0 - DILATION_KEEP, size=imu.shape[0])
    return (resample_span(imu, starts, DILATION_KEEP, axis=2),
            resample_span(video, starts, DILATION_KEEP, axis=1))


@NOISES.register("crop", doc="a random 60% span of both kept, the rest zeroed")
def crop(imu: np.ndarray, video: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    starts = rng.uniform(0.0, 1.0 - CROP_KEEP, size=imu.shape[0])
    return mask_outside(imu, starts, CROP_KEEP, axis=2), mask_outside(video, starts, CROP_KEEP, axis=1)


def apply_noise(name: str, imu: np.ndarray, video: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise ``name`` with its own generator, the same arrays for the same seed."""
    key = sum(ord(c) for c in name)
    return NOISES.get(name)(imu, video, np.random.default_rng([seed, key]))
