from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.mmea import Mmea, clip_key
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError, RejectLimitError

CLIPS = {"1_upstairs": ["1_upstairs_2020_12_28_15_44_31", "1_upstairs_2020_12_28_15_45_02"],
         "32_watch_TV": ["32_watch_TV_2021_01_03_10_00_00", "32_watch_TV_2021_01_03_10_01_00"]}


def _fixture(root: Path, make_video, rows: int = 50) -> Path:
    rng = np.random.default_rng(1)
    for folder, clips in CLIPS.items():
        for clip in clips:
            make_video(root / "video" / folder / f"{clip}.mp4", seconds=rows / 25, fps=10)
            sensor = root / "sensor" / folder / f"{clip}.csv"
            sensor.parent.mkdir(parents=True, exist_ok=True)
            counts = rng.integers(-16384, 16384, size=(rows, 6))
            sensor.write_text("\n".join(",".join(map(str, r)) for r in counts) + "\n")
    return root


def test_registered_by_name():
    assert DATASETS.get("mmea") is Mmea


def test_split_lists_decide_and_tolerate_prefixes_extensions_and_extra_fields(tmp_path, make_video):
    root = _fixture(tmp_path / "UESTC-MMEA-CL", make_video)
    (root / "train.txt").write_text(
        "./data/1_upstairs/1_upstairs_2020_12_28_15_44_31 120 0\n"
        "32_watch_TV/32_watch_TV_2021_01_03_10_00_00.mp4 98 31\n")
    (root / "val.txt").write_text("1_upstairs/1_upstairs_2020_12_28_15_45_02\n")
    (root / "test.txt").write_text("# comment\n\n32_watch_TV/32_watch_TV_2021_01_03_10_01_00\n")
    recs, rejects = Mmea(root).scan()
    assert rejects == []
    assert Counter(r.split for r in recs) == {"train": 2, "val": 1, "test": 1}
    assert {r.label for r in recs} == {"upstairs", "watch_TV"}
    rec = next(r for r in recs if r.split == "val")
    assert rec.fps == pytest.approx(10) and rec.video_duration_s == pytest.approx(2.0, abs=0.15)
    assert '"class_id": 1' in rec.extra


def test_imu_is_raw_counts_at_25hz_without_timestamps(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    adapter = Mmea(root, probe_video=False)
    recs, _ = adapter.scan()
    imu = adapter.load_imu(asdict(recs[0]))
    expected = np.loadtxt(recs[0].imu_path, delimiter=",")
    assert np.array_equal(imu.values, expected)
    assert imu.units == ["count"] * 6 and imu.channels[3] == "gyro_x"
    assert np.allclose(np.diff(imu.t_s), 0.04) and imu.t_s[0] == 0.0


def test_without_split_lists_a_seeded_split_is_used(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    opts = {"seed": 5, "test_fraction": 0.25, "val_fraction": 0.25}
    first = {r.recording_id: r.split for r in Mmea(root, **opts).scan()[0]}
    again = {r.recording_id: r.split for r in Mmea(root, **opts).scan()[0]}
    assert first == again and Counter(first.values()) == {"train": 2, "val": 1, "test": 1}


def test_listed_clip_without_files_and_empty_csv_are_rejected(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    (root / "sensor" / "1_upstairs" / "1_upstairs_2020_12_28_15_45_02.csv").write_text("")
    (root / "train.txt").write_text("1_upstairs/1_upstairs_2020_12_28_15_44_31\n1_upstairs/missing_clip\n"
                                    "1_upstairs/1_upstairs_2020_12_28_15_45_02\n")
    recs, rejects = Mmea(root).scan()
    assert [r.recording_id for r in recs] == ["1_upstairs/1_upstairs_2020_12_28_15_44_31"]
    reasons = {r.item: r.reason for r in rejects}
    assert reasons["1_upstairs/missing_clip"].startswith("no sensor CSV")
    assert "empty (0 bytes)" in reasons["1_upstairs/1_upstairs_2020_12_28_15_45_02"]


def test_clip_listed_in_two_splits_is_an_error(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    (root / "train.txt").write_text("1_upstairs/a\n")
    (root / "test.txt").write_text("1_upstairs/a\n")
    with pytest.raises(InputDataError, match=r"test\.txt:1: clip 1_upstairs/a is also listed in train\.txt"):
        Mmea(root).scan()


def test_missing_sensor_folder_is_a_layout_error(tmp_path):
    (tmp_path / "video").mkdir()
    with pytest.raises(LayoutError, match="sensor folder not found.*found in .*: \\['video'\\]"):
        Mmea(tmp_path).scan()


def test_wrong_column_count_names_the_file(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    adapter = Mmea(root, probe_video=False)
    rec = asdict(adapter.scan()[0][0])
    Path(rec["imu_path"]).write_text("1,2,3\n4,5,6\n")
    with pytest.raises(InputDataError, match=r"\.csv: expected 6 columns .* found 3"):
        adapter.load_imu(rec)


def test_header_row_is_skipped(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    adapter = Mmea(root, probe_video=False)
    rec = asdict(adapter.scan()[0][0])
    Path(rec["imu_path"]).write_text("ax,ay,az,gx,gy,gz\n1,2,3,4,5,6\n7,8,9,10,11,12\n")
    assert adapter.load_imu(rec).values.tolist() == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]


def test_clip_key_parsing():
    assert clip_key("/data/video/3_walk/3_walk_x.mp4") == "3_walk/3_walk_x"
    assert clip_key("walk/3_walk_x") is None


def _sensor_at(root: Path, counts_per_g: float) -> None:
    """Every clip: a still sensor, gravity on z as ``counts_per_g`` counts, gyro 0."""
    for path in (root / "sensor").glob("*/*.csv"):
        rows = np.tile([0, 0, int(counts_per_g), 0, 0, 0], (100, 1))  # 4 s at 25 Hz
        path.write_text("\n".join(",".join(map(str, r)) for r in rows))


def _ingest_and_imu(root: Path, data: Path, **imu_settings):
    from comodo.pipeline.stages import imu, ingest

    options = {"probe_video": False}
    ingest.run(ingest.IngestConfig(), data, "mmea", "mmea", str(root), options)
    cfg = imu.ImuConfig(workers=1, scale="mmea", target_rate_hz=None, **imu_settings)
    return imu.run(cfg, data, "mmea", "mmea", str(root), options)


def test_a_4g_sensor_divided_by_16384_is_rejected_with_the_factor_to_use(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    _sensor_at(root, 8192)
    with pytest.raises(RejectLimitError, match="imu for dataset mmea: rejected 4 of 4"):
        _ingest_and_imu(root, tmp_path / "data")
    import polars as pl

    reasons = pl.read_parquet(tmp_path / "data/mmea/rejects/imu.parquet")["reason"].to_list()
    assert len(reasons) == 4
    assert "is 0.5 g" in reasons[0]
    assert ("counts scaled by 16384 but the sensor looks like ±4 g: try imu.scale_factors.acc: 8192"
            in reasons[0])


def test_scale_factors_setting_converts_counts_of_a_4g_sensor(tmp_path, make_video):
    from comodo.stores.chunked import ChunkedStore

    root = _fixture(tmp_path / "mmea", make_video)
    _sensor_at(root, 8192)
    summary = _ingest_and_imu(root, tmp_path / "data", scale_factors={"acc": 8192, "gyro": 16.4})
    assert (summary.kept, summary.rejected) == (4, 0)
    store = ChunkedStore.open(str(tmp_path / "data/mmea/imu.zarr"))
    z = store.array("imu")[:, 2]
    assert np.allclose(z, 1.0) and store.group.attrs["units"][:3] == ["g"] * 3


def test_release_split_lists_are_read_as_shipped(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    (root / "mydataset_train.txt").write_text(
        "yourdataset_path/data/1_upstairs/1_upstairs_2020_12_28_15_44_31 418 50 0\r\n"
        "yourdataset_path/data/32_watch_TV/32_watch_TV_2021_01_03_10_00_00 343 50 31")
    (root / "mydataset_test.txt").write_text(
        "yourdataset_path/data/1_upstairs/1_upstairs_2020_12_28_15_45_02 418 50 0")
    recs, rejects = Mmea(root, probe_video=False).scan()
    assert rejects == []
    assert {r.recording_id: r.split for r in recs} == {
        "1_upstairs/1_upstairs_2020_12_28_15_44_31": "train",
        "32_watch_TV/32_watch_TV_2021_01_03_10_00_00": "train",
        "1_upstairs/1_upstairs_2020_12_28_15_45_02": "test"}


def test_a_release_label_that_is_not_the_class_number_minus_one_is_an_error(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    (root / "mydataset_train.txt").write_text(
        "yourdataset_path/data/1_upstairs/1_upstairs_2020_12_28_15_44_31 418 50 1\n")
    with pytest.raises(InputDataError, match=r"mydataset_train\.txt:1: label 1 does not match class folder "
                                             r"1_upstairs \(labels are 0-based: expected 0\)"):
        Mmea(root).scan()


def test_both_list_names_for_one_split_is_a_layout_error(tmp_path, make_video):
    root = _fixture(tmp_path / "mmea", make_video)
    (root / "train.txt").write_text("1_upstairs/1_upstairs_2020_12_28_15_44_31\n")
    (root / "mydataset_train.txt").write_text("1_upstairs/1_upstairs_2020_12_28_15_44_31\n")
    with pytest.raises(LayoutError, match="keep one list per split"):
        Mmea(root).scan()
