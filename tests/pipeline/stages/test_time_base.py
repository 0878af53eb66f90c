"""Whole-trial windows on one time base: ``stretch`` (IMU over the trial's span) and ``pad``."""

import numpy as np
import polars as pl
import pytest
from ego4d_fixture import make_dataset

from comodo.pipeline.stages import imu, ingest, windows
from comodo.pipeline.video.sampling import SAMPLING_RULES
from comodo.pipeline.windowing import pooled_channel_stats, stretch_windows
from comodo.stores.chunked import ChunkedStore

RECS = {"a": ("walk", "train"), "b": ("run", "train"), "c": ("walk", "test")}


def _whole(tmp_path, time_base: str, length: int = 800) -> tuple[pl.DataFrame, np.ndarray]:
    make_dataset(tmp_path / "raw", RECS, video_s=3.0)
    data = tmp_path / "data"
    ingest.run(ingest.IngestConfig(), data, "tiny", "ego4d", str(tmp_path / "raw"), {})
    imu.run(imu.ImuConfig(workers=1), data, "tiny", "ego4d", str(tmp_path / "raw"), {})
    windows.run(windows.WindowsConfig(mode="whole", whole_length=length, time_base=time_base),
                data, "tiny")
    index = pl.read_parquet(data / "tiny/windows.parquet")
    return index, ChunkedStore.open(str(data / "tiny/windows.zarr")).array("imu")[:]


def test_stretch_resamples_the_whole_trial_to_the_window_length(tmp_path):
    index, got = _whole(tmp_path, "stretch")
    segments = pl.read_parquet(tmp_path / "data/tiny/imu.parquet")
    source = ChunkedStore.open(str(tmp_path / "data/tiny/imu.zarr")).array("imu")[:]
    assert index["n_valid"].to_list() == [800, 800, 800]  # every sample is real
    for k, w in enumerate(index.iter_rows(named=True)):
        seg = segments.filter(pl.col("recording_id") == w["recording_id"]).row(0, named=True)
        trial = source[seg["row_start"] : seg["row_start"] + seg["n_samples"]]  # (599, C)
        assert seg["n_samples"] == 599
        np.testing.assert_allclose(got[k], stretch_windows(trial[None], 800)[0], atol=1e-6)
        # the stored span is the whole trial, not the first 800 samples at the IMU rate
        assert w["imu_end_s"] - w["imu_start_s"] == pytest.approx(599 / seg["rate_hz"])


@pytest.mark.parametrize("rule", sorted(SAMPLING_RULES))
def test_stretch_mode_imu_and_frame_spans_coincide(tmp_path, rule):
    """Frame k is sampled at some fraction of the video span (the trial); the window's IMU
    at that fraction of the window is the trial's IMU at that fraction of the trial."""
    index, got = _whole(tmp_path, "stretch", length=800)
    segments = pl.read_parquet(tmp_path / "data/tiny/imu.parquet")
    source = ChunkedStore.open(str(tmp_path / "data/tiny/imu.zarr")).array("imu")[:]
    for w, window in zip(index.iter_rows(named=True), got, strict=True):
        seg = segments.filter(pl.col("recording_id") == w["recording_id"]).row(0, named=True)
        trial = source[seg["row_start"] : seg["row_start"] + seg["n_samples"]]  # (n, C)
        assert w["imu_start_s"] == seg["t0_s"]
        assert w["imu_end_s"] == pytest.approx(seg["t0_s"] + seg["n_samples"] / seg["rate_hz"])
        assert w["video_start_s"] == 0.0 and w["video_end_s"] == pytest.approx(3.0, abs=0.2)
        frame_times = np.arange(30) / 10.0  # the fixture's 3 s at 10 fps
        targets = SAMPLING_RULES[rule].targets(w["video_start_s"], w["video_end_s"], 8,
                                               frame_times, 0.1)
        fraction = (targets - w["video_start_s"]) / (w["video_end_s"] - w["video_start_s"])
        for c in range(trial.shape[1]):
            seen = np.interp(fraction * window.shape[1], np.arange(window.shape[1]), window[c])
            expected = np.interp(fraction * len(trial), np.arange(len(trial)), trial[:, c])
            scale = float(np.ptp(trial[:, c])) + 1e-9  # interpolating twice: 0.5% of the range
            np.testing.assert_allclose(seen, expected, atol=5e-3 * scale)


def test_pad_mode_keeps_the_imu_rate_and_says_how_much_is_real(tmp_path):
    index, got = _whole(tmp_path, "pad")
    assert index["n_valid"].to_list() == [599, 599, 599]
    assert not got[:, :, 599:].any() and got[:, :, :599].any()


def test_stretch_windows_is_the_identity_at_the_source_length():
    samples = np.random.default_rng(0).normal(size=(2, 50, 3)).astype(np.float32)
    np.testing.assert_array_equal(stretch_windows(samples, 50), samples.transpose(0, 2, 1))
    twice = stretch_windows(samples, 100)
    np.testing.assert_allclose(twice[:, :, ::2], samples.transpose(0, 2, 1), atol=1e-6)


def test_pooled_channel_stats_never_count_the_padding():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, size=(2, 40)), rng.normal(-1, 5, size=(2, 25))
    padded = np.zeros((2, 2, 50))
    padded[0, :, :40], padded[1, :, :25] = a, b
    mean, std = pooled_channel_stats(padded, np.array([40, 25]))
    both = np.concatenate([a, b], axis=1)  # (C, 65) the real samples only
    np.testing.assert_allclose(mean[:, 0], both.mean(axis=1))
    np.testing.assert_allclose(std[:, 0], both.std(axis=1))
    assert not np.allclose(pooled_channel_stats(padded)[0], mean)
