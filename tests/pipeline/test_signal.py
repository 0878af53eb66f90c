import math

import numpy as np
import pytest

from comodo.pipeline import signal
from comodo.pipeline.datasets.base import ImuData
from comodo.stores.errors import InputDataError


def _imu(t, x, units=("m/s^2",) * 3 + ("rad/s",) * 3):
    return ImuData(t_s=t, values=x, channels=[f"c{i}" for i in range(x.shape[1])], units=list(units))


@pytest.mark.parametrize("native", [50.0, 100.0, 197.3, 800.0])
def test_resample_reproduces_a_band_limited_signal_on_the_200hz_grid(native):
    t = 0.0137 + np.arange(0, 8, 1 / native)
    x = np.sin(2 * np.pi * 2.0 * t)[:, None]
    seg = signal.resample(t, x, 200.0)
    grid = seg.t0_s + np.arange(len(seg.values)) / 200.0
    assert math.isclose(seg.t0_s * 200, round(seg.t0_s * 200), abs_tol=1e-9)
    assert grid[0] >= t[0] - 1e-9 and grid[-1] <= t[-1] + 1e-9
    err = np.abs(seg.values[40:-40, 0] - np.sin(2 * np.pi * 2.0 * grid[40:-40]))
    assert err.max() < 0.01


def test_clean_drops_nan_duplicates_sorts_and_splits_at_gaps():
    t = np.array([0.0, 0.01, 0.01, np.nan, 0.03, 0.02, 0.04, 2.0, 2.01, 2.02])
    x = np.arange(len(t), dtype=float)[:, None].repeat(6, axis=1)
    x[6, 2] = np.inf
    pieces, report = signal.clean(_imu(t, x), max_gap_s=0.5)
    assert report.dropped_nonfinite == 2
    assert report.dropped_duplicates == 1
    assert report.was_unsorted
    assert report.gaps == 1
    assert [p[0].tolist() for p in pieces] == [[0.0, 0.01, 0.02, 0.03], [2.0, 2.01, 2.02]]


def test_every_second_of_a_recording_is_in_a_kept_piece_or_counted_by_reason():
    t = np.concatenate([np.arange(100) / 100, [2.0], 4.0 + np.arange(200) / 100, [7.0, 7.01]])
    x = np.zeros((len(t), 6))
    x[-2:, 0] = np.nan  # the last two rows: 1 s of the span (7.0 after 5.99) goes with them
    x[50, 1] = np.nan  # inside a piece: no time lost
    pieces, report = signal.clean(_imu(t, x), max_gap_s=0.5)
    assert report.period_s == pytest.approx(0.01, rel=0.01)
    assert report.seconds_in == pytest.approx(7.01 + report.period_s)
    assert report.nonfinite_s == pytest.approx(7.01 - 5.99)
    assert report.gaps_s == pytest.approx((2.0 - 0.99) + (4.0 - 2.0) - 2 * report.period_s)
    assert report.short_s == pytest.approx(report.period_s)  # the lone sample at 2.0 s
    assert report.pieces_s == pytest.approx([0.99 + report.period_s, 1.99 + report.period_s])
    segments = [signal.resample(tp, xp, 200.0) for tp, xp in pieces]
    kept = signal.drop_short(segments, report, min_duration_s=1.5)
    assert [len(s.values) for s in kept] == [399]  # 4.0 - 5.99 s; the first piece is too short
    assert report.short_s == pytest.approx(report.period_s + 0.99 + report.period_s)
    assert report.edge_s == pytest.approx(1.99 + report.period_s - 399 / 200)
    accounted = report.nonfinite_s + report.gaps_s + report.short_s + report.edge_s
    assert report.seconds_in == pytest.approx(399 / 200 + accounted)


def test_units_are_converted_to_g_and_deg_per_s():
    t = np.arange(0, 3, 0.01)
    x = np.tile([9.80665, 0, 0, math.pi, 0, 0], (len(t), 1))
    segments, units, _ = signal.process(_imu(t, x), 200.0, 0.5, "none")
    assert units == ["g"] * 3 + ["deg/s"] * 3
    np.testing.assert_allclose(segments[0].values[10, [0, 3]], [1.0, 180.0], rtol=2e-3)


def test_raw_counts_need_the_mmea_scaling_switch():
    t = np.arange(0, 3, 0.04)
    x = np.tile([16384.0, 0, 0, 16.4, 0, 0], (len(t), 1))
    imu = ImuData(t, x, ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], ["count"] * 6)
    with pytest.raises(InputDataError, match="imu.scale: mmea"):
        signal.process(imu, None, 0.5, "none")
    segments, units, _ = signal.process(imu, None, 0.5, "mmea")
    assert units == ["g"] * 3 + ["deg/s"] * 3
    assert segments[0].rate_hz == pytest.approx(25.0)
    np.testing.assert_allclose(segments[0].values[0, [0, 3]], [1.0, 1.0])


@pytest.mark.parametrize(("up", "down"), [(2, 1), (200, 197), (1, 4)])
def test_resampler_applies_the_gain_before_the_float32_cast(up, down):
    from scipy.signal import resample_poly

    x = np.cumsum(np.random.default_rng(0).standard_normal((5000, 6)), axis=0)
    gain = np.array([0.1, 0.2, 0.3, 57.0, 58.0, 59.0])
    out = signal._resample_poly(x, up, down, gain)
    expected = resample_poly((x * gain).astype(np.float32), up, down, axis=0, padtype="line")
    assert out.dtype == np.float32 and out.shape == (-(-5000 * up // down), 6)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_clean_returns_views_when_no_row_is_dropped():
    t = np.arange(0, 3, 0.01)
    x = np.random.default_rng(0).standard_normal((len(t), 6))
    pieces, report = signal.clean(_imu(t, x), max_gap_s=0.5)
    assert (report.dropped_nonfinite, report.dropped_duplicates, report.was_unsorted) == (0, 0, False)
    assert np.shares_memory(pieces[0][1], x) and np.shares_memory(pieces[0][0], t)
    np.testing.assert_array_equal(pieces[0][1], x)

