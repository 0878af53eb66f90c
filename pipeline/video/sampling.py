"""Which frames a window uses: the frame sampling rules, shared by every decoder.

A rule turns a window ``[start_s, end_s)`` on the video's own clock (0 = the first frame's
presentation time) into F target times; each decoder then takes, for every target, the frame
whose presentation time is nearest it (the earlier one on ties within ``TIE_TOLERANCE_S``,
which absorbs float32 timestamps). Rules (``SAMPLING_RULES``, recorded in store provenance):

- ``uniform`` (default; the reference's ``UniformTemporalSubsample``): the t frames whose
  presentation time lies in ``[start_s, end_s)``, then ``uniform_indices(t, F)`` of them:
  ``torch.linspace(0, t - 1, F)`` in float32, clamped, truncated toward zero. The targets are
  those frames' own times, so it needs the video's frame time table.
- ``centre``: the centres of F equal sub-intervals, ``start_s + (k + 0.5) * (end_s - start_s) / F``;
  no frame table needed.

A window that ends more than one frame period after the last frame (or a target later than
that), or that starts before 0, cannot be served: the window is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from comodo.stores.errors import ConfigError

TIE_TOLERANCE_S = 1e-4


def uniform_indices(n_frames_in_window: int, n_sampled: int) -> np.ndarray:
    """(n_sampled,) int64 indices into a window of ``n_frames_in_window`` decoded frames.

    The reference's rule, float rounding included: ``torch.linspace(0, t - 1, n)`` in float32,
    clamped to [0, t - 1], truncated toward zero. Indices repeat when n > t.
    """
    if n_frames_in_window < 1 or n_sampled < 1:
        raise ValueError(f"uniform_indices needs >= 1 frame in the window and >= 1 to sample, "
                         f"got {n_frames_in_window} and {n_sampled}")
    last = n_frames_in_window - 1
    values = torch.linspace(0, last, n_sampled, dtype=torch.float32).clamp(0, last)
    return values.long().numpy()


def target_times(start_s: float, end_s: float, n_frames: int) -> np.ndarray:
    """(F,) float64 target times: centres of F equal sub-intervals of [start_s, end_s)."""
    step = (end_s - start_s) / n_frames
    return start_s + (np.arange(n_frames, dtype=np.float64) + 0.5) * step


def frames_in_window(frame_times: np.ndarray, start_s: float, end_s: float,
                     period_s: float) -> np.ndarray | None:
    """Indices of the frames presented in [start_s, end_s); None when the video ends
    (last frame + one period) before the window does."""
    times = np.asarray(frame_times, dtype=np.float64)
    if len(times) == 0 or end_s > times[-1] + period_s + TIE_TOLERANCE_S:
        return None
    lo, hi = np.searchsorted(times, [start_s - TIE_TOLERANCE_S, end_s - TIE_TOLERANCE_S])
    return np.arange(lo, hi)


def pick_nearest(t_before: float | None, t_after: float | None, target: float) -> int:
    """0 to take the frame at ``t_before`` (<= target), 1 for ``t_after`` (> target)."""
    if t_before is None:
        return 1
    if t_after is None:
        return 0
    return 1 if (t_after - target) < (target - t_before) - TIE_TOLERANCE_S else 0


def nearest_frames(frame_times: np.ndarray, targets: np.ndarray, period_s: float) -> np.ndarray:
    """Index of the nearest frame for each target; -1 where no frame is within reach.

    ``frame_times`` (N,) ascending presentation times relative to the first frame;
    ``period_s`` the nominal frame period, the reach past the last frame.
    """
    times = np.asarray(frame_times, dtype=np.float64)
    out = np.full(len(targets), -1, dtype=np.int64)
    if len(times) == 0:
        return out
    before = np.searchsorted(times, targets, side="right") - 1  # last frame <= target
    for k, (target, i) in enumerate(zip(targets, before, strict=True)):
        if target < -TIE_TOLERANCE_S or target > times[-1] + period_s:
            continue
        t_before = times[i] if i >= 0 else None
        t_after = times[i + 1] if i + 1 < len(times) else None
        out[k] = i + pick_nearest(t_before, t_after, float(target))
    return out


def _centre_targets(start_s: float, end_s: float, n_frames: int, frame_times: np.ndarray | None,
                    period_s: float) -> np.ndarray | None:
    return target_times(start_s, end_s, n_frames)


def _uniform_targets(start_s: float, end_s: float, n_frames: int, frame_times: np.ndarray | None,
                     period_s: float) -> np.ndarray | None:
    times = np.asarray(frame_times, dtype=np.float64)
    inside = frames_in_window(times, start_s, end_s, period_s)
    if inside is None or len(inside) == 0:
        return None
    return times[inside[uniform_indices(len(inside), n_frames)]]


@dataclass(frozen=True)
class SamplingRule:
    """F target times for a window; ``None`` when the window cannot be served."""

    description: str  # recorded in store provenance
    needs_frame_times: bool
    targets: Callable[[float, float, int, np.ndarray | None, float], np.ndarray | None]


SAMPLING_RULES: dict[str, SamplingRule] = {
    "uniform": SamplingRule(
        "frames presented in [video_start_s, video_end_s); indices torch.linspace(0, t-1, F) "
        "float32, truncated (pytorchvideo UniformTemporalSubsample); 0 = first frame",
        True, _uniform_targets),
    "centre": SamplingRule(
        "F targets at the centres of F equal sub-intervals of [video_start_s, video_end_s); "
        "nearest frame by presentation time, earlier on ties; 0 = first frame",
        False, _centre_targets),
}
DEFAULT_SAMPLING = "uniform"


def sampling_rule(name: str) -> SamplingRule:
    if name not in SAMPLING_RULES:
        raise ConfigError(f"frame sampling {name!r} is unknown; choose one of {', '.join(SAMPLING_RULES)}")
    return SAMPLING_RULES[name]


def window_bounds_error(start_s: float, end_s: float) -> str | None:
    """Why a window cannot be sampled at all (bad bounds), before any decoding; else None."""
    if not np.isfinite(start_s) or not np.isfinite(end_s) or end_s <= start_s:
        return f"window bounds [{start_s}, {end_s}) s are not an interval"
    if start_s < 0:
        return f"window starts at {start_s:.3f} s, before the first frame (0 s)"
    return None
