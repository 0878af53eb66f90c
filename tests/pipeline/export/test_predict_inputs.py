"""What predict does with files that are not clean recordings: clear errors, or the
imu stage's own cleaning."""

import numpy as np
import polars as pl
import pytest

from comodo.pipeline.export.bundle import Bundle
from comodo.pipeline.export.predict import Reading, predict_file
from comodo.stores.errors import ConfigError, InputDataError, ModelLoadError

UNITS = {"accl_x": "m/s^2", "accl_y": "m/s^2", "accl_z": "m/s^2",
         "gyro_x": "rad/s", "gyro_y": "rad/s", "gyro_z": "rad/s"}


def _recording(prepared):
    return sorted((prepared.root / "imu").glob("*.csv"))[0]


def test_garbled_file_is_an_error_naming_it(prepared, bundle_dir, tmp_path):
    path = tmp_path / "garbled.csv"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(InputDataError, match="garbled.csv"):
        predict_file(Bundle(bundle_dir), path)


def test_file_truncated_to_less_than_a_window_says_so(prepared, bundle_dir, tmp_path):
    lines = _recording(prepared).read_text().splitlines()
    path = tmp_path / "short.csv"
    path.write_text("\n".join(lines[:300]) + "\n")  # 3 s at 100 Hz
    with pytest.raises(InputDataError, match=r"short.csv: no full 5 s window.*shorter than one "
                                             r"window or truncated"):
        predict_file(Bundle(bundle_dir), path)


def test_header_only_or_wrong_columns_are_errors(prepared, bundle_dir, tmp_path):
    header = _recording(prepared).read_text().splitlines()[0]
    (tmp_path / "header.csv").write_text(header + "\n")
    (tmp_path / "columns.csv").write_text("t,a,b\n1,2,3\n2,3,4\n")
    for name, match in (("header.csv", "header.csv"), ("columns.csv", "lacks columns")):
        with pytest.raises(InputDataError, match=match):
            predict_file(Bundle(bundle_dir), tmp_path / name)


def test_a_row_cut_mid_write_is_dropped_as_the_imu_stage_drops_it(prepared, bundle_dir, tmp_path):
    source = _recording(prepared)
    text = source.read_text()
    cut = tmp_path / "cut.csv"
    cut.write_text(text[:len(text) - 25])  # the last row loses its last fields
    whole, truncated = predict_file(Bundle(bundle_dir), source), predict_file(Bundle(bundle_dir), cut)
    assert len(truncated) >= 2
    assert truncated["label"].to_list() == whole["label"].to_list()[:len(truncated)]


def test_parquet_in_the_manifest_layout_gives_the_csvs_windows(prepared, bundle_dir, tmp_path):
    source = _recording(prepared)
    pl.read_csv(source).write_parquet(tmp_path / "rec.parquet")
    reading = Reading("manifest", {"units": UNITS})
    bundle = Bundle(bundle_dir)
    a, b = predict_file(bundle, source), predict_file(bundle, tmp_path / "rec.parquet", reading=reading)
    assert a.equals(b)
    with pytest.raises(InputDataError, match="units"):  # units not given: a.u. is refused
        predict_file(bundle, tmp_path / "rec.parquet", reading=Reading("manifest"))
    data = (tmp_path / "rec.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="cut.parquet could not be parsed"):
        predict_file(bundle, tmp_path / "cut.parquet", reading=reading)


def test_unknown_layout_missing_bundle_and_bad_hop_are_errors(prepared, bundle_dir, tmp_path):
    path = _recording(prepared)
    with pytest.raises(ConfigError, match="utd_mhad.*one of: ego4d"):
        predict_file(Bundle(bundle_dir), path, reading=Reading("utd_mhad"))
    with pytest.raises(ConfigError, match="hop must be positive"):
        predict_file(Bundle(bundle_dir), path, hop_s=0)
    with pytest.raises(ModelLoadError, match="comodo export"):
        Bundle(tmp_path / "nothing")


def test_hop_slides_overlapping_windows(prepared, bundle_dir):
    path = _recording(prepared)
    rows = predict_file(Bundle(bundle_dir), path, hop_s=1.0)
    starts = rows["start_s"].to_numpy()
    np.testing.assert_allclose(np.diff(starts), 1.0, atol=1e-9)
    assert (rows["end_s"] - rows["start_s"]).to_numpy() == pytest.approx(5.0)
    tiled = predict_file(Bundle(bundle_dir), path)
    assert len(rows) > 3 * len(tiled)
