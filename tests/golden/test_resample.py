"""IMU resampling on a real UTD-MHAD trial (50 Hz -> 200 Hz) against the reference fixtures.

comodo's default (``imu.resampler: polyphase``) is ``scipy.signal.resample_poly`` with
``padtype="line"`` (the fixture's ``resample_poly_line``), computed in float32; the
reference's torchaudio windowed-sinc resampler is ``imu.resampler: reference``
(``resamplers.sinc_resample``, float64, the fixture's ``torchaudio_f64``). comodo keeps the
output samples up to the last input's time: floor((n - 1) * 4) + 1 = 577 of the 580 the
reference writes (the last 3 lie past the recording's end)."""

from __future__ import annotations

import numpy as np
import pytest

from comodo.pipeline import signal
from comodo.pipeline.resamplers import sinc_resample


def float32_tolerance(x: np.ndarray) -> np.ndarray:
    """(C,) absolute tolerance for float32 filtering: 1e-6 of each channel's largest value."""
    return 1e-6 * np.abs(x).max(axis=0)


def test_sinc_resample_reproduces_torchaudio_in_float64(oracle):
    ref = oracle("resample")
    out = sinc_resample(ref["x_50hz"], 50, 200)
    assert out.shape == ref["torchaudio_f64"].shape == (580, 6)
    np.testing.assert_allclose(out, ref["torchaudio_f64"], atol=1e-9, rtol=0)


def test_sinc_resample_of_float32_input_is_within_the_reference_float32_tolerance(oracle):
    ref = oracle("resample")
    out = sinc_resample(ref["x_50hz"].astype(np.float32), 50, 200)
    np.testing.assert_allclose(out[:, :3], ref["torchaudio_f32"][:, :3], atol=1e-4, rtol=0)  # g
    np.testing.assert_allclose(out[:, 3:], ref["torchaudio_f32"][:, 3:], atol=1e-2, rtol=0)  # deg/s


@pytest.mark.parametrize(("resampler", "expected"), [("polyphase", "resample_poly_line"),
                                                     ("reference", "torchaudio_f64")])
def test_imu_resamplers_match_their_reference_on_a_real_trial(oracle, resampler, expected):
    ref = oracle("resample")
    x = ref["x_50hz"]  # (145, 6) g, deg/s
    segment = signal.resample(np.arange(len(x)) / 50.0, x, 200.0, None, resampler)
    assert segment.t0_s == 0.0 and segment.rate_hz == 200.0 and segment.values.shape == (577, 6)
    want = ref[expected][:577]
    worst = np.abs(segment.values - want).max(axis=0)  # (C,)
    assert (worst <= float32_tolerance(x)).all(), f"max |diff| per channel {worst}"
    other = ref["torchaudio_f64" if resampler == "polyphase" else "resample_poly_line"][:577]
    assert np.abs(segment.values - other).max() > 1.0  # the two filters differ by up to 2.7 deg/s


def test_the_polyphase_resampler_pads_with_a_line_not_zeros(oracle):
    ref = oracle("resample")
    x = ref["x_50hz"]
    values = signal.resample(np.arange(len(x)) / 50.0, x, 200.0).values
    edge = np.abs(values[:48] - ref["resample_poly_constant"][:48]).max(axis=0)
    assert (edge > 100 * float32_tolerance(x)).all()  # zero padding bends the first 12 inputs' span
