import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.egoexo4d import EgoExo4D
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

TAKES = [
    {"take_uid": "u1", "take_name": "cmu_bike01_2", "parent_task_name": "Bike Repair",
     "task_name": "Remove a Wheel", "participant_uid": 11},
    {"take_uid": "u2", "take_name": "georgiatech_cooking_01_01_2", "parent_task_name": "Cooking",
     "task_name": "Cooking an Omelet", "participant_uid": 12},
    {"take_uid": "u3", "take_name": "unc_basketball_03-16-23_01_10", "parent_task_name": "Basketball",
     "task_name": "Basketball Drills - Mikan Layup", "participant_uid": 11},
    {"take_uid": "u4", "take_name": "iiith_soccer_020_6", "parent_task_name": "Soccer",
     "task_name": "Soccer Drills - Dribbling", "participant_uid": 13},
]


def _imu_csv(path: Path, rate: float = 1000.0, seconds: float = 2.0) -> None:
    t_ms = np.arange(int(rate * seconds)) * 1000.0 / rate
    lines = ["component_idx,component_timestamp_ms,canonical_timestamp_ms,gyro_x,gyro_y,gyro_z,"
             "accl_x,accl_y,accl_z"]
    lines += [f"0,{t},{t},0.1,0.2,0.3,0.0,0.0,9.81" for t in t_ms]
    path.write_text("\n".join(lines) + "\n")


def _fixture(root: Path, make_video, splits: dict | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "takes.json").write_text(json.dumps(TAKES))
    for take in TAKES:
        folder = root / "takes" / take["take_name"]
        make_video(folder / "video.mp4", seconds=2.0, fps=10)
        _imu_csv(folder / "imu.csv")
    if splits is not None:
        (root / "annotations").mkdir()
        (root / "annotations" / "splits.json").write_text(json.dumps({"take_uid_to_split": splits}))
    return root


def test_registered_by_name():
    assert DATASETS.get("egoexo4d") is EgoExo4D


def test_takes_with_scenario_labels_participants_and_split_file(tmp_path, make_video):
    splits = {"u1": "train", "u2": "train", "u3": "val", "u4": "test"}
    recs, rejects = EgoExo4D(_fixture(tmp_path / "ee", make_video, splits)).scan()
    assert rejects == []
    by_id = {r.recording_id: r for r in recs}
    assert {k: r.split for k, r in by_id.items()} == splits
    assert by_id["u1"].label == "Bike Repair" and by_id["u1"].subject == "11"
    assert by_id["u2"].imu_rate_hz == pytest.approx(1000.0)
    assert '"task_name": "Cooking an Omelet"' in by_id["u2"].extra


def test_imu_in_m_s2_and_rad_s_on_the_video_clock(tmp_path, make_video):
    adapter = EgoExo4D(_fixture(tmp_path / "ee", make_video))
    rec = asdict(adapter.scan()[0][0])
    imu = adapter.load_imu(rec)
    assert imu.channels == ["accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]
    assert imu.units == ["m/s^2"] * 3 + ["rad/s"] * 3
    assert imu.values[0].tolist() == [0.0, 0.0, 9.81, 0.1, 0.2, 0.3]
    assert imu.t_s[0] == 0.0 and imu.t_s[1] == pytest.approx(0.001)


def test_subject_split_keeps_participants_disjoint(tmp_path, make_video):
    recs, _ = EgoExo4D(_fixture(tmp_path / "ee", make_video), split="subject", test_subjects=["11"]).scan()
    expected = {"u1": "test", "u2": "train", "u3": "test", "u4": "train"}
    assert {r.recording_id: r.split for r in recs} == expected


def test_finer_activity_labels_and_unknown_labels_are_rejected(tmp_path, make_video):
    root = _fixture(tmp_path / "ee", make_video)
    recs, rejects = EgoExo4D(root, labels=["Cooking", "Soccer"]).scan()
    assert sorted(r.label for r in recs) == ["Cooking", "Soccer"]
    assert {r.item for r in rejects} == {"u1", "u3"}
    assert "label 'Bike Repair' (parent_task_name) is not one of ['Cooking', 'Soccer']" in rejects[0].reason
    fine, _ = EgoExo4D(root, label_field="task_name").scan()
    assert len({r.label for r in fine}) == 4


def test_take_missing_video_is_rejected(tmp_path, make_video):
    root = _fixture(tmp_path / "ee", make_video)
    (root / "takes" / "iiith_soccer_020_6" / "video.mp4").unlink()
    recs, rejects = EgoExo4D(root).scan()
    assert len(recs) == 3 and rejects[0].item == "u4" and "video" in rejects[0].reason


def test_takes_csv_is_accepted_and_missing_fields_are_named(tmp_path, make_video):
    root = _fixture(tmp_path / "ee", make_video)
    (root / "takes.json").unlink()
    rows = ["take_uid,take_name,parent_task_name"] + [
        f"{t['take_uid']},{t['take_name']},{t['parent_task_name']}" for t in TAKES]
    (root / "takes.csv").write_text("\n".join(rows) + "\n")
    assert Counter(r.label for r in EgoExo4D(root).scan()[0])["Cooking"] == 1
    (root / "takes.csv").write_text("uid,scenario\nu1,Cooking\n")
    expected = r"take #0 in .*takes\.csv lacks \['parent_task_name', 'take_uid'\]"
    with pytest.raises(LayoutError, match=expected):
        EgoExo4D(root).scan()


def test_missing_take_list_is_a_layout_error(tmp_path):
    (tmp_path / "takes").mkdir()
    with pytest.raises(LayoutError, match=r"takes\.json or takes\.csv not found.*found in .*\['takes'\]"):
        EgoExo4D(tmp_path).scan()


def test_imu_csv_with_wrong_columns_names_them(tmp_path, make_video):
    root = _fixture(tmp_path / "ee", make_video)
    adapter = EgoExo4D(root)
    rec = asdict(adapter.scan()[0][0])
    Path(rec["imu_path"]).write_text("t,ax,ay,az\n0,1,2,3\n")
    with pytest.raises(InputDataError, match=r"imu\.csv lacks columns \['canonical_timestamp_ms'"):
        adapter.load_imu(rec)
