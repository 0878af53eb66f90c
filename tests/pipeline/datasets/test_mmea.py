from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.mmea import Mmea, clip_key
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

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
