"""The gravity check: quiet stretches read 1 g, and a constant factor off names its cause."""

import numpy as np
import pytest

from comodo.pipeline.units_check import G, gravity_check, likely_cause, quiet_magnitudes


def _walk_then_rest(rate_hz: float = 200.0, seconds: float = 20.0, seed: int = 0) -> np.ndarray:
    """(T, 3) in g: gravity on a tilted axis, a 2 Hz bounce for 15 s then 5 s at rest, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    down = np.array([0.2, -0.95, 0.24]) / np.linalg.norm([0.2, -0.95, 0.24])
    bounce = np.where(t < 0.75 * seconds, 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t), 0.0)  # (T,)
    acc = down * (1.0 + bounce[:, None])
    return acc + rng.normal(0.0, 0.01, acc.shape)


def test_quiet_windows_read_one_g_while_moving_ones_do_not_count():
    acc = _walk_then_rest()
    quiet = quiet_magnitudes(acc, 200.0)
    assert quiet.size == 5 * 200  # the 5 one-second windows at rest of 20
    assert np.median(quiet) == pytest.approx(1.0, abs=0.01)
    assert np.median(np.linalg.norm(acc, axis=1)) > 1.05  # the plain median is pulled up


def test_correct_units_pass():
    verdict = gravity_check(_walk_then_rest(), 200.0)
    assert verdict is not None and verdict.ok
    assert verdict.median_g == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(("scale", "counts_per_g", "factor", "words"), [
    (0.5, 16384.0, 0.5, "counts scaled by 16384 but the sensor looks like ±4 g: try "
                        "imu.scale_factors.acc: 8192"),
    (2.0, 8192.0, 2.0, "counts scaled by 8192 but the sensor looks like ±2 g: try "
                       "imu.scale_factors.acc: 16384"),
    (G, None, G, "m/s^2 declared as g"),
    (1000.0, None, 1000.0, "mg declared as g"),
    (1.0 / G, None, 1.0 / G, "g declared as m/s^2"),
])
def test_a_factor_off_is_caught_and_named(scale, counts_per_g, factor, words):
    verdict = gravity_check(_walk_then_rest() * scale, 200.0, counts_per_g=counts_per_g)
    assert verdict is not None and not verdict.ok
    assert verdict.factor == pytest.approx(factor)
    assert words in verdict.message(0.25)


def test_half_g_from_declared_units_is_not_blamed_on_counts():
    verdict = gravity_check(_walk_then_rest() * 0.5, 200.0)
    assert not verdict.ok and verdict.factor is None
    assert "no usual factor" in verdict.message(0.25)


def test_tolerance_is_configurable():
    acc = _walk_then_rest() * 1.2
    assert not gravity_check(acc, 200.0, tolerance=0.1).ok
    assert gravity_check(acc, 200.0, tolerance=0.3).ok


def test_a_recording_in_motion_throughout_is_not_judged():
    acc = _walk_then_rest(seconds=20.0)[:3000]  # the 15 s of bouncing only
    assert quiet_magnitudes(acc, 200.0).size == 0 and gravity_check(acc, 200.0) is None


def test_a_short_clip_is_cut_in_four_and_a_tiny_one_is_not_judged():
    short = _walk_then_rest()[-80:]  # 0.4 s at rest: four windows of 20 samples
    verdict = gravity_check(short, 200.0)
    assert verdict.ok and verdict.n_quiet == 80
    assert gravity_check(np.ones((31, 3)), 200.0) is None
    assert likely_cause(-1.0, None) == (None, "")
