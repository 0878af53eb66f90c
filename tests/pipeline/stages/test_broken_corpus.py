"""A corpus of broken recordings through ingest -> imu -> windows -> features with the
default limits: every stage's offered = kept + rejected, every IMU second accounted for,
no traceback, and a stage fails only where its real rejects pass its limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from broken_corpus import make_broken_corpus
from typer.testing import CliRunner

from comodo.cli.main import app

LIMITS = {"ingest": 0.2, "imu": 0.2, "windows": 0.2, "features": 0.05}  # params.yaml defaults
FEATURES = {"teacher": "mobilenetv2_imagenet", "key": "m", "frames": 2, "chunk_rows": 16,
            "batch_size": 16, "num_workers": 0, "device": "cpu"}


def _stage(stage: str, params: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [stage, "-d", "broken", "--params", str(params)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{stage} raised {result.exception!r}")
    assert "Traceback" not in result.output
    if result.exit_code:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0]
    return result.exit_code, result.output


def _fails_iff_over_limit(stage: str, code: int, rejected: int, offered: int) -> None:
    over = rejected / offered > LIMITS[stage]
    assert code == (1 if over else 0), f"{stage}: {rejected}/{offered} rejected, exit {code}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("broken")
    faults = make_broken_corpus(root / "raw")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "datasets": {"broken": {"adapter": "ego4d", "root": str(root / "raw")}},
        "imu": {"workers": 1}, "features": FEATURES}))
    return params, faults


@pytest.mark.slow
def test_broken_recordings_are_kept_or_counted_at_every_stage(corpus):
    params, faults = corpus
    data = Path(yaml.safe_load(params.read_text())["data_dir"]) / "broken"
    rejects = lambda stage: pl.read_parquet(data / "rejects" / f"{stage}.parquet")  # noqa: E731

    code, _ = _stage("ingest", params)
    recs = pl.read_parquet(data / "recordings.parquet")
    assert len(recs) + len(rejects("ingest")) == len(faults)
    _fails_iff_over_limit("ingest", code, len(rejects("ingest")), len(faults))
    assert "odd name-ü.1" in recs["recording_id"].to_list()

    code, _ = _stage("imu", params)
    segs, imu_rejects = pl.read_parquet(data / "imu.parquet"), rejects("imu")
    kept_imu = set(segs["recording_id"].to_list())
    assert kept_imu | set(imu_rejects["item"].to_list()) == set(recs["recording_id"].to_list())
    assert len(kept_imu) + len(imu_rejects) == len(recs)
    _fails_iff_over_limit("imu", code, len(imu_rejects), len(recs))

    code, _ = _stage("windows", params)
    windows, win_rejects = pl.read_parquet(data / "windows.parquet"), rejects("windows")
    cut = set(windows["recording_id"].to_list())
    assert cut | set(win_rejects["item"].to_list()) == kept_imu  # imu's rejects not re-counted
    assert len(cut) + len(win_rejects) == len(kept_imu)
    _fails_iff_over_limit("windows", code, len(win_rejects), len(kept_imu))
    samples = pl.read_parquet(data / "rejects" / "windows_samples.parquet")
    per_rec = segs.group_by("recording_id").agg(pl.col("n_samples").sum())
    joined = samples.join(per_rec, on="recording_id")
    assert len(joined) == len(kept_imu) and (joined["samples_in"] == joined["n_samples"]).all()
    assert (samples["samples_in"] == samples["samples_in_windows"] + samples["trimmed"]).all()
    in_windows = windows.group_by("recording_id").agg(pl.col("n_valid").sum())
    assert dict(in_windows.iter_rows()) == {
        r: n for r, n in samples.select("recording_id", "samples_in_windows").iter_rows() if n}
    gap = samples.filter(pl.col("recording_id") == "bad_gap").row(0, named=True)
    # resampled at 200 Hz, 0-2.995 s before the gap, 6-11.995 s after it: one 5 s window
    assert (gap["short_segment"], gap["samples_in_windows"], gap["partial_window"]) == (599, 1000, 199)
    good = samples.filter(pl.col("recording_id") == "good00").row(0, named=True)
    assert (good["samples_in_windows"], good["partial_window"]) == (2000, 399)  # 2 windows + tail
    seconds = pl.read_parquet(data / "rejects" / "imu_samples.parquet").join(samples, on="recording_id")
    assert len(seconds) == len(kept_imu)
    lost = seconds.select("trimmed_s", "nonfinite_s", "gaps_s", "short_segment_s").sum_horizontal()
    assert ((seconds["seconds_in"] - seconds["samples_in_windows_s"] - lost).abs() <= 0.01).all()  # 100 Hz
    gap_s = seconds.filter(pl.col("recording_id") == "bad_gap").row(0, named=True)
    assert gap_s["gaps_s"] == pytest.approx(3.0, abs=1e-6) and gap_s["short_segment_s"] == 0  # 3 s >= 1 s

    code, _ = _stage("features", params)
    feat_rejects = rejects("features")
    import zarr
    valid = zarr.open_group(str(data / "features" / "m.zarr"), mode="r")["valid"][:]
    assert int(valid.sum()) + len(feat_rejects) == len(windows)
    _fails_iff_over_limit("features", code, len(feat_rejects), len(windows))


@pytest.mark.slow
def test_a_limit_below_the_real_rejects_fails_the_stage_in_one_line(corpus, tmp_path):
    params, _faults = corpus
    values = yaml.safe_load(params.read_text())
    values["data_dir"] = str(tmp_path / "data")
    values["ingest"] = {"max_reject_fraction": 0.01}
    tight = tmp_path / "params.yaml"
    tight.write_text(yaml.safe_dump(values))
    code, output = _stage("ingest", tight)
    assert code == 1 and "max_reject_fraction=0.01" in output


def test_windows_counts_only_what_imu_kept_and_accounts_for_every_sample(tmp_path):
    from ego4d_fixture import make_dataset, write_imu

    from comodo.pipeline.stages import imu, ingest, windows

    recs = {"a": ("walk", "train"), "b": ("run", "test"), "short": ("walk", "train")}
    make_dataset(tmp_path / "raw", recs, video_s=12.0)
    write_imu(tmp_path / "raw" / "imu" / "short.csv", np.arange(3) / 100.0, np.zeros((3, 6)))
    raw, data = str(tmp_path / "raw"), tmp_path / "data"
    ingest.run(ingest.IngestConfig(max_reject_fraction=0.5), data, "t", "ego4d", raw, {})
    imu.run(imu.ImuConfig(workers=1, max_reject_fraction=0.5), data, "t", "ego4d", raw, {})
    summary = windows.run(windows.WindowsConfig(max_reject_fraction=0.0), data, "t")
    assert (summary.ingested, summary.rejected) == (2, 0)  # "short" was imu's reject
    samples = pl.read_parquet(data / "t" / "rejects" / "windows_samples.parquet").sort("recording_id")
    assert samples["recording_id"].to_list() == ["a", "b"]
    assert samples["samples_in"].to_list() == [2399, 2399]
    assert samples["samples_in_windows"].to_list() == [2000, 2000]
    assert samples["partial_window"].to_list() == [399, 399]
    assert samples["trimmed_s"].to_list() == pytest.approx([1.995, 1.995])


def _cut(raw: Path, uid: str, keep, rate: float = 100.0, seconds: float = 20.0) -> None:
    """Rewrite one recording's IMU (``rate`` Hz over ``seconds``) through ``keep(t, x)``."""
    from ego4d_fixture import write_imu

    t = np.arange(int(seconds * rate)) / rate
    x = np.column_stack([np.sin(2 * np.pi * 0.5 * t)] * 6)
    x[:, 2] += 9.80665
    write_imu(raw / "imu" / f"{uid}.csv", *keep(t, x))


def _nan_rows(t, x):
    x = x.copy()
    x[300:310, 0] = np.nan  # inside: bridged by the resampler, costs no time
    x[-50:, 3] = np.nan  # the last 0.5 s
    return t, x


def test_imu_seconds_in_are_in_windows_or_counted_through_imu_and_windows(tmp_path):
    from ego4d_fixture import make_dataset

    raw = tmp_path / "raw"
    recs = {"nan_rows": ("walk", "train"), "gap": ("run", "train"), "whole200": ("walk", "test"),
            "whole100": ("run", "test")}
    make_dataset(raw, recs, video_s=20.0)
    _cut(raw, "nan_rows", _nan_rows)
    _cut(raw, "gap", lambda t, x: (t[(t < 0.5) | (t >= 4.5)], x[(t < 0.5) | (t >= 4.5)]))  # 0.5 s, 4 s gap
    _cut(raw, "whole200", lambda t, x: (t, x), rate=200.0)  # resampled IMU ends at 19.995 s
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "ingest": {"require_splits": []},
                                      "datasets": {"c": {"adapter": "ego4d", "root": str(raw)}}}))
    for stage in ("ingest", "imu", "windows"):
        result = CliRunner().invoke(app, [stage, "-d", "c", "--params", str(params)])
        assert result.exit_code == 0, result.output
    rejects = tmp_path / "data" / "c" / "rejects"
    imu_s = pl.read_parquet(rejects / "imu_samples.parquet")
    win = pl.read_parquet(rejects / "windows_samples.parquet")
    both = {r["recording_id"]: r for r in imu_s.join(win, on="recording_id").iter_rows(named=True)}
    assert sorted(both) == sorted(recs)
    period = {"nan_rows": 0.01, "gap": 0.01, "whole200": 0.005, "whole100": 0.01}
    for rid, r in both.items():
        assert r["seconds_out"] == pytest.approx(r["samples_in_s"], abs=1e-9)  # imu's out is windows' in
        accounted = r["trimmed_s"] + r["nonfinite_s"] + r["gaps_s"] + r["short_segment_s"]
        assert abs(r["seconds_in"] - r["samples_in_windows_s"] - accounted) <= period[rid] + 1e-9, r
        assert 0 <= r["resampling_edge_s"] <= period[rid] + 1e-9
    nan, gap = both["nan_rows"], both["gap"]
    # one period is the mean step inside the pieces: the 10 bridged rows lengthen it by 0.5%
    assert (nan["nonfinite_rows"], nan["seconds_in"]) == (60, pytest.approx(20.0, abs=1e-4))
    assert nan["nonfinite_s"] == pytest.approx(0.5) and nan["gaps_s"] == nan["short_segment_s"] == 0
    assert (gap["gaps_s"], gap["short_segment_s"]) == (pytest.approx(4.0), pytest.approx(0.5))
    assert gap["samples_in_windows_s"] == 15.0  # 4.5 - 19.5 s
    assert (both["whole200"]["seconds_in"], both["whole200"]["samples_in_windows_s"]) == (20.0, 20.0)
    whole100 = both["whole100"]  # resampled to 19.99 s: three windows, the 4th is 999 samples short
    assert (whole100["samples_in_windows_s"], whole100["partial_window"]) == (15.0, 999)
