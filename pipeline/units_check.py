"""Units sanity check: at rest an accelerometer reads gravity, 1 g.

The imu stage converts every recording to g and deg/s; a wrong declared unit or a wrong
counts-per-g factor scales the whole recording by a constant. ``gravity_check`` measures the
median accelerometer magnitude over the recording's quiet stretches (the 1 s windows whose
magnitude varies by at most ``quiet_cv``, 5 %, of its mean: a scale-free test) and compares
it with 1 g. A recording without a quiet stretch (a short trial in motion throughout, as
most UTD-MHAD trials are) is not judged.
When it is off, the ratio is matched against the usual mistakes so that the message can name
the likely cause (a ±4 g sensor divided by 16384 reads 0.5 g; m/s^2 declared as g reads 9.81 g;
mg declared as g reads 1000 g).

Pure functions on arrays: no files, no config; the stage decides what a failure means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G = 9.80665
QUIET_CV = 0.05  # a window is "at rest" when std/mean of its |acc| is at most this

# (ratio of the measured median to 1 g, what usually causes it) for values declared in units
CAUSES: tuple[tuple[float, str], ...] = (
    (G, "the values look like m/s^2 declared as g: declare the unit m/s^2"),
    (1.0 / G, "the values look like g declared as m/s^2: declare the unit g"),
    (1000.0, "the values look like mg declared as g: declare the unit mg"),
    (1e-3, "the values look like g declared as mg: declare the unit g"),
)
FULL_SCALE_COUNTS = 32768  # a 16-bit sensor: counts per g = 32768 / range in g


@dataclass(frozen=True)
class GravityVerdict:
    """The check's outcome: ``ok`` unless the quiet median is outside 1 g ± tolerance."""

    ok: bool
    median_g: float
    n_quiet: int  # samples in the quiet windows
    factor: float | None = None  # the matched ratio (measured / 1 g) when not ok
    cause: str = ""

    def message(self, tolerance: float) -> str:
        found = f"median |acc| over {self.n_quiet} quiet samples is {self.median_g:.3g} g"
        expected = f"expected 1 g ± {tolerance:g} at rest"
        if self.ok:
            return f"{found}; {expected}"
        cause = self.cause or "no usual factor (2x, 9.81x, 1000x) explains it; check the units"
        return f"{found}, {expected}: {cause}"


def quiet_magnitudes(acc_g: np.ndarray, rate_hz: float, window_s: float = 1.0,
                     quiet_cv: float = QUIET_CV) -> np.ndarray:
    """The acceleration magnitudes of the ``window_s`` windows at rest (flat); a clip
    shorter than four windows (but of 32 samples or more) is cut in four."""
    n_total = len(acc_g)  # acc_g: (T, 3)
    per = max(int(round(window_s * rate_hz)), 2)
    if n_total < 4 * per and n_total >= 32:  # a short clip: four windows of at least 8 samples
        per = n_total // 4
    n_windows = n_total // per
    if n_windows == 0:
        return np.zeros(0)
    squares = np.zeros(n_windows * per)  # (W * per,) float64 whatever the input's float type
    for axis in acc_g[: n_windows * per].T:  # x, y, z: strided views, no copy
        squares += np.square(axis, dtype=np.float64)
    magnitude = np.sqrt(squares).reshape(n_windows, per)  # (W, per)
    mean = magnitude.mean(axis=1)  # (W,)
    quiet = magnitude.std(axis=1) <= quiet_cv * np.abs(mean)  # (W,)
    return magnitude[quiet & (mean > 0)].ravel()


def gravity_check(acc_g: np.ndarray, rate_hz: float, tolerance: float = 0.25,
                  counts_per_g: float | None = None, match_within: float = 0.15,
                  quiet_cv: float = QUIET_CV) -> GravityVerdict | None:
    """Judge one recording's accelerometer (T, 3) in g at ``rate_hz``; None when it has no
    quiet window (or fewer than 32 samples and less than one 1 s window): nothing to judge.
    ``counts_per_g`` is the divisor applied to raw counts, when the source was counts (it
    names the factor in the cause)."""
    magnitudes = quiet_magnitudes(np.asarray(acc_g), rate_hz, quiet_cv=quiet_cv)
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    if magnitudes.size == 0:
        return None
    median = float(np.median(magnitudes))
    if abs(median - 1.0) <= tolerance:
        return GravityVerdict(True, median, int(magnitudes.size))
    factor, cause = likely_cause(median, counts_per_g, match_within)
    return GravityVerdict(False, median, int(magnitudes.size), factor, cause)


def likely_cause(median_g: float, counts_per_g: float | None, match_within: float = 0.15
                 ) -> tuple[float | None, str]:
    """The usual mistake whose ratio is within ``match_within`` (relative) of ``median_g``.
    From raw counts, a ratio that is a power of two (1/8 .. 8) means another sensor range."""
    if median_g <= 0:
        return None, ""
    if counts_per_g:
        power = 2.0 ** round(np.log2(median_g))
        if power != 1.0 and 0.125 <= power <= 8 and abs(median_g / power - 1.0) <= match_within:
            suggested = counts_per_g * power
            return power, (f"counts scaled by {counts_per_g:g} but the sensor looks like "
                           f"±{FULL_SCALE_COUNTS / suggested:g} g: try imu.scale_factors.acc: {suggested:g}")
    for ratio, text in CAUSES:
        if abs(median_g / ratio - 1.0) <= match_within:
            return ratio, text
    return None, ""
