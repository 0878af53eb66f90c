"""Which frames a window uses: the frame sampling rule, shared by every decoder.

Rule (recorded in store provenance as ``SAMPLING_RULE``): a window ``[start_s, end_s)`` on
the video's own clock (0 = the first frame's presentation time) is split into F equal
sub-intervals; the target time of frame k is the centre of sub-interval k,
``start_s + (k + 0.5) * (end_s - start_s) / F``; the frame used is the one whose presentation
time is nearest the target, the earlier one when two are equally near (within
``TIE_TOLERANCE_S``, which absorbs float32 timestamps). A target later than the last frame by
more than one frame period, or before 0, cannot be served: the window is rejected.
"""

from __future__ import annotations

import numpy as np

SAMPLING_RULE = ("F targets at the centres of F equal sub-intervals of [video_start_s, video_end_s); "
                 "nearest frame by presentation time, earlier on ties; 0 = first frame")
TIE_TOLERANCE_S = 1e-4


def target_times(start_s: float, end_s: float, n_frames: int) -> np.ndarray:
    """(F,) float64 target times: centres of F equal sub-intervals of [start_s, end_s)."""
    step = (end_s - start_s) / n_frames
    return start_s + (np.arange(n_frames, dtype=np.float64) + 0.5) * step


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


def window_bounds_error(start_s: float, end_s: float) -> str | None:
    """Why a window cannot be sampled at all (bad bounds), before any decoding; else None."""
    if not np.isfinite(start_s) or not np.isfinite(end_s) or end_s <= start_s:
        return f"window bounds [{start_s}, {end_s}) s are not an interval"
    if start_s < 0:
        return f"window starts at {start_s:.3f} s, before the first frame (0 s)"
    return None
