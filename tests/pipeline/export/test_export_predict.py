"""comodo export -> comodo predict on the synthetic default: the bundle gives evaluate's labels."""

import json
import shutil

import numpy as np
import onnx
import polars as pl
import pytest
from conftest import EVAL
from synthetic_fixture import prepare

from comodo.pipeline.export.bundle import ENCODER_FILES, Bundle
from comodo.pipeline.export.predict import (
    cut_windows,
    predict_file,
    read_recording,
    segments_of,
)
from comodo.pipeline.stages.evaluate import open_windows
from comodo.pipeline.stages.export import ExportConfig, run, source_of
from comodo.pipeline.stages.imu import ImuConfig
from comodo.stores.errors import ConfigError


def _test_windows(prepared):
    index = pl.read_parquet(prepared.data / "tiny/windows.parquet")
    return index.filter(pl.col("split") == "test").sort("window_id")


def test_predict_on_the_test_recordings_gives_evaluates_labels_for_the_same_windows(
        prepared, bundle_dir):
    test = _test_windows(prepared)
    evaluated = np.load(prepared.metrics / "tiny/features/distilled.npz")
    classes = evaluated["classes"].tolist()
    expected = dict(zip(test["window_id"].to_list(), [classes[p] for p in evaluated["pred"]]))
    bundle = Bundle(bundle_dir)
    compared = 0
    for (rid,), windows in test.group_by("recording_id", maintain_order=True):
        rows = predict_file(bundle, prepared.root / "imu" / f"{rid}.csv",
                            from_s=float(windows["imu_start_s"].min()))
        by_start = {round(s, 6): label for s, label in zip(rows["start_s"], rows["label"])}
        for wid, start in zip(windows["window_id"], windows["imu_start_s"]):
            assert by_start[round(start, 6)] == expected[wid]
            compared += 1
    assert compared == len(test) >= 6
    assert len(set(expected.values())) > 1  # the labels are not one constant answer


def test_predict_cuts_the_windows_of_windows_zarr_bit_for_bit(prepared, bundle_dir):
    bundle = Bundle(bundle_dir)
    _index, store, _classes = open_windows(prepared.data, "tiny")
    test = _test_windows(prepared)
    for (rid,), windows in test.group_by("recording_id", maintain_order=True):
        path = prepared.root / "imu" / f"{rid}.csv"
        segments = segments_of(read_recording(path, bundle.prep), bundle.prep, str(path))
        cut = cut_windows(segments, bundle.prep, bundle.prep.window_s,
                          float(windows["imu_start_s"].min()), str(path))
        stored = store.read_rows("imu", windows["window_id"].to_numpy())
        np.testing.assert_array_equal(cut.imu[:len(stored)], stored)
        np.testing.assert_allclose(cut.start_s[:len(stored)], windows["imu_start_s"], atol=1e-9)


def test_bundle_records_parity_metrics_and_preprocessing(prepared, bundle_dir):
    info = json.loads((bundle_dir / "bundle.json").read_text())
    assert info["parity"]["top1_agreement"] == 1.0
    assert info["parity"]["embedding"]["max_abs_diff"] < 1e-4
    assert info["parity"]["classifier"]["label_agreement"] == 1.0
    evaluated = json.loads((prepared.metrics / "tiny/evaluate.json").read_text())["rows"][0]
    assert info["metrics"]["fp32"]["acc@1"] == pytest.approx(evaluated["acc@1"])
    assert info["metrics"]["fp32"]["acc@3"] == pytest.approx(evaluated["acc@3"])
    prep = json.loads((bundle_dir / "preprocessing.json").read_text())
    assert (prep["rate_hz"], prep["window_samples"], prep["window_s"]) == (200.0, 1000, 5.0)
    assert prep["units"] == ["g"] * 3 + ["deg/s"] * 3 and prep["layout"] == "ego4d"
    card = (bundle_dir / "model_card.md").read_text()
    for needle in ("teacher `tiny`", "objective `comodo`", "| fp32 |", "| int8 |",
                   "parameters", "latency", "100.0% of 9 test windows"):
        assert needle in card


def test_int8_bundle_reports_its_accuracy_size_and_latency_beside_fp32(bundle_dir):
    metrics = json.loads((bundle_dir / "bundle.json").read_text())["metrics"]
    fp32, int8 = metrics["fp32"], metrics["int8"]
    def weight_bytes(name: str) -> int:  # convolution kernels (3-d initializers) only
        kernels = [t for t in onnx.load(str(bundle_dir / name)).graph.initializer if len(t.dims) >= 3]
        return sum(int(np.prod(t.dims)) * (1 if t.data_type == onnx.TensorProto.INT8 else 4)
                   for t in kernels)

    weights = {precision: weight_bytes(name) for precision, name in ENCODER_FILES.items()}
    assert weights["int8"] < weights["fp32"] / 3  # convolution weights stored as int8
    assert int8["size_bytes"] > 0 and fp32["size_bytes"] > 0  # tiny graphs: overhead can exceed the saving
    assert int8["latency_ms_per_window"] > 0 and 0 <= int8["acc@1"] <= 1
    assert "int8 (dynamic quantisation) against fp32: Acc@1" in (bundle_dir / "model_card.md").read_text()
    z32 = Bundle(bundle_dir, "fp32").embed(np.ones((2, 6, 1000), np.float32))
    z8 = Bundle(bundle_dir, "int8").embed(np.ones((2, 6, 1000), np.float32))
    assert 0 < np.abs(z32 - z8).max() < 0.1 * np.abs(z32).max()  # quantised, not another model


def test_a_copied_bundle_runs_on_its_own(prepared, bundle_dir, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(bundle_dir, copy)
    path = next((prepared.root / "imu").glob("*.csv"))
    a, b = predict_file(Bundle(copy), path), predict_file(Bundle(bundle_dir), path)
    assert a.equals(b) and len(a) >= 2
    assert a.columns == ["start_s", "end_s", "label", "top1", "p1", "top2", "p2", "top3", "p3"]
    assert (a["label"] == a["top1"]).all()
    assert (a["p2"] >= a["p3"]).all()  # after the top-1, classes by probability


def test_linear_classifier_bundle_matches_evaluates_linear_probe(prepared, tmp_path):
    info = run(ExportConfig(classifier="linear", latency_windows=5), EVAL, prepared.source,
               prepared.data, "tiny", prepared.runs, prepared.metrics, tmp_path)
    assert info["classifier"]["kind"] == "linear"
    assert info["parity"]["top1_agreement"] == 1.0
    evaluated = json.loads((prepared.metrics / "tiny/evaluate.json").read_text())["rows"][0]
    assert info["metrics"]["fp32"]["acc@1"] == pytest.approx(evaluated["linear_acc"])


def test_whole_mode_bundle_reads_one_window_per_recording_with_evaluates_label(tmp_path):
    prepared = prepare(tmp_path, mode="whole")
    run(ExportConfig(latency_windows=5), EVAL, prepared.source, prepared.data, "tiny",
        prepared.runs, prepared.metrics, tmp_path / "exports")
    bundle = Bundle(tmp_path / "exports/tiny/default")
    assert bundle.prep.window_mode == "whole" and bundle.prep.window_samples > 3000
    test = _test_windows(prepared)
    evaluated = np.load(prepared.metrics / "tiny/features/distilled.npz")
    for rid, pred in zip(test["recording_id"], evaluated["pred"]):
        rows = predict_file(bundle, prepared.root / "imu" / f"{rid}.csv")
        assert len(rows) == 1 and rows["label"][0] == evaluated["classes"][pred]


def test_a_bundle_of_some_channels_picks_them_from_the_recording(tmp_path):
    prepared = prepare(tmp_path, channels=["gyro_z", "accl_x"])
    run(ExportConfig(latency_windows=5), EVAL, prepared.source, prepared.data, "tiny",
        prepared.runs, prepared.metrics, tmp_path / "exports")
    bundle = Bundle(tmp_path / "exports/tiny/default")
    assert bundle.prep.channels == ["gyro_z", "accl_x"] and bundle.prep.units == ["deg/s", "g"]
    _index, store, _classes = open_windows(prepared.data, "tiny")
    test = _test_windows(prepared)
    first = test.row(0, named=True)
    path = prepared.root / "imu" / f"{first['recording_id']}.csv"
    segments = segments_of(read_recording(path, bundle.prep), bundle.prep, str(path))
    cut = cut_windows(segments, bundle.prep, bundle.prep.window_s, first["imu_start_s"], str(path))
    np.testing.assert_array_equal(cut.imu[0], store.read_rows("imu", [first["window_id"]])[0])
    info = json.loads((tmp_path / "exports/tiny/default/bundle.json").read_text())
    assert info["parity"]["top1_agreement"] == 1.0


def test_params_whose_imu_section_did_not_make_imu_zarr_are_refused(prepared, tmp_path):
    other = source_of("ego4d", {}, ImuConfig(workers=1, resampler="reference"))
    with pytest.raises(ConfigError, match="imu section of the params differs"):
        run(ExportConfig(latency_windows=5), EVAL, other, prepared.data, "tiny", prepared.runs,
            prepared.metrics, tmp_path)
