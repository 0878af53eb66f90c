from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.io

from comodo.pipeline.datasets.manifest import Manifest
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

N = 200


def _fixture(root: Path, make_video) -> Path:
    (root / "imu").mkdir(parents=True)
    t = np.arange(N) / 100.0
    pl.DataFrame({"t_s": t, "acc_x": np.sin(t), "gyro_x": np.cos(t)}).write_csv(root / "imu" / "a.csv")
    pl.DataFrame({"component_idx": [0] * N, "timestamp_ms": t * 1000 / 2, "acc_x": t,
                  "gyro_x": t}).write_csv(root / "imu" / "b.csv")
    np.save(root / "imu" / "c.npy", np.column_stack([t, -t]))
    pl.DataFrame({"acc_x": t, "gyro_x": t}).write_parquet(root / "imu" / "d.parquet")
    make_video(root / "videos" / "a.mp4", seconds=2.0, fps=10)
    scipy.io.savemat(root / "depth.mat", {"frames": np.zeros((4, 5, 60), dtype=np.uint16)})
    pl.DataFrame({
        "recording_id": ["a", "b", "c", "d"],
        "imu_path": ["imu/a.csv", "imu/b.csv", "imu/c.npy", "imu/d.parquet"],
        "video_path": ["videos/a.mp4", None, "depth.mat", None],
        "label": ["walk", "run", "walk", "run"],
        "split": ["train", "train", "val", "test"],
        "subject": ["s1", "s1", "s2", "s3"],
        "imu_rate_hz": [None, None, 50.0, 25.0],
        "imu_start_s": [0.5, None, None, 2.0],
        "video_start_s": [0.25, None, None, None],
    }).write_csv(root / "manifest.csv")
    return root


def test_registered_by_name():
    assert DATASETS.get("manifest") is Manifest


def test_rows_become_recordings_with_rates_videos_and_splits(tmp_path, make_video):
    recs, rejects = Manifest(_fixture(tmp_path / "m", make_video)).scan()
    assert rejects == []
    by_id = {r.recording_id: r for r in recs}
    assert {k: r.split for k, r in by_id.items()} == {"a": "train", "b": "train", "c": "val", "d": "test"}
    assert by_id["a"].imu_rate_hz == pytest.approx(100.0) and by_id["b"].imu_rate_hz == pytest.approx(200.0)
    a = by_id["a"]
    assert (a.video_kind, a.fps, a.video_start_s) == ("mp4", pytest.approx(10), 0.25)
    assert by_id["b"].video_kind == "none" and by_id["b"].video_path is None
    assert by_id["c"].video_kind == "depth_mat" and by_id["c"].video_duration_s == pytest.approx(2.0)
    assert '"depth_key": "frames"' in by_id["c"].extra
    assert by_id["a"].imu_path == str(tmp_path / "m" / "imu" / "a.csv")


def test_imu_times_channels_and_units_per_format(tmp_path, make_video):
    adapter = Manifest(_fixture(tmp_path / "m", make_video), units={"acc_x": "m/s^2", "gyro_x": "rad/s"},
                       channels=["acc_x", "gyro_x"])
    recs = {r.recording_id: asdict(r) for r in adapter.scan()[0]}
    a = adapter.load_imu(recs["a"])
    assert a.t_s[0] == 0.5 and a.channels == ["acc_x", "gyro_x"] and a.units == ["m/s^2", "rad/s"]
    b = adapter.load_imu(recs["b"])
    assert b.channels == ["acc_x", "gyro_x"] and b.t_s[2] == pytest.approx(0.01)  # ms column, idx ignored
    c = adapter.load_imu(recs["c"])
    assert c.values.shape == (N, 2) and c.t_s[1] == pytest.approx(0.02)
    d = adapter.load_imu(recs["d"])
    assert d.t_s[0] == 2.0 and d.t_s[1] == pytest.approx(2.04)


def test_units_default_to_arbitrary(tmp_path, make_video):
    adapter = Manifest(_fixture(tmp_path / "m", make_video))
    rec = asdict(adapter.scan()[0][0])
    assert adapter.load_imu(rec).units == ["a.u.", "a.u."]


def test_without_split_column_a_subject_split_can_be_asked_for(tmp_path, make_video):
    root = _fixture(tmp_path / "m", make_video)
    table = pl.read_csv(root / "manifest.csv").drop("split")
    table.write_parquet(root / "list.parquet")
    recs, _ = Manifest(root, manifest="list.parquet", split="subject", test_subjects=["s1"]).scan()
    assert {r.recording_id: r.split for r in recs} == {"a": "test", "b": "test", "c": "train", "d": "train"}


def test_bad_rows_are_rejected_with_their_line(tmp_path, make_video):
    root = _fixture(tmp_path / "m", make_video)
    rows = (root / "manifest.csv").read_text().splitlines()
    rows[2] = rows[1]  # duplicate id "a"
    rows.append("e,imu/missing.csv,,walk,train,s1,,,")
    rows.append("f,imu/c.npy,,walk,holdout,s1,50,,")
    rows.append("g,imu/c.npy,,walk,train,s1,,,")  # NPY without a rate
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    recs, rejects = Manifest(root).scan()
    reasons = {r.item: r.reason for r in rejects}
    assert sorted(r.recording_id for r in recs) == ["a", "c", "d"]
    assert reasons["a"] == "row 3: duplicate recording_id 'a'"
    assert "row 6:" in reasons["e"] and "missing.csv does not exist" in reasons["e"]
    assert "split 'holdout' is not one of" in reasons["f"]
    assert "NPY file needs the rate" in reasons["g"]


def test_manifest_without_required_columns_is_a_layout_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("path,class\nx.csv,walk\n")
    expected = r"lacks column\(s\) \['imu_path', 'label'\]; found \['path', 'class'\]"
    with pytest.raises(LayoutError, match=expected):
        Manifest(tmp_path).scan()


def test_channel_names_must_match_npy_width(tmp_path, make_video):
    adapter = Manifest(_fixture(tmp_path / "m", make_video), channels=["x", "y", "z"])
    rec = next(asdict(r) for r in adapter.scan()[0] if r.recording_id == "c")
    with pytest.raises(InputDataError, match=r"c\.npy has 2 columns but option channels names 3"):
        adapter.load_imu(rec)
