"""UCI HAPT RawData adapter on tiny files in the release's layout."""

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.hapt import Hapt
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import ConfigError, LayoutError


def _raw(root: Path, gyro: bool = True, users: tuple[int, ...] = (1, 2)) -> Path:
    """RawData/ with one experiment per user, 300 rows each, and labels.txt of 3 stretches each."""
    raw = root / "RawData"
    raw.mkdir(parents=True)
    labels = []
    for exp, user in enumerate(users, start=1):
        rows = np.column_stack([np.arange(300) / 1000.0 + user, np.zeros(300), np.ones(300)])
        np.savetxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt", rows, fmt="%.6f")
        if gyro:
            np.savetxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt", rows * 0.1, fmt="%.6f")
        labels += [f"{exp} {user} 5 1 100", f"{exp} {user} 1 101 250", f"{exp} {user} 7 251 300"]
    (raw / "labels.txt").write_text("\n".join(labels))
    return root


def test_registered_by_name():
    assert DATASETS.get("hapt") is Hapt


def test_each_labels_line_is_a_recording_with_its_rows_on_the_experiment_clock(tmp_path):
    adapter = Hapt(_raw(tmp_path / "hapt"), split="random", test_fraction=0.0, val_fraction=0.0)
    recs, rejects = adapter.scan()
    assert rejects == [] and len(recs) == 6
    rec = next(r for r in recs if r.recording_id == "exp02_user02_00101")
    assert (rec.label, rec.subject, rec.imu_rate_hz) == ("WALKING", "2", 50.0)
    imu = adapter.load_imu(asdict(rec))
    assert imu.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert imu.units == ["g"] * 3 + ["rad/s"] * 3
    assert imu.values.shape == (150, 6) and imu.t_s[0] == pytest.approx(2.0)
    assert imu.values[0, 0] == pytest.approx(2.1) and imu.values[-1, 3] == pytest.approx(0.2249)


def test_accelerometer_only_when_there_is_no_gyro_file(tmp_path):
    adapter = Hapt(_raw(tmp_path / "hapt", gyro=False), split="random")
    recs, _ = adapter.scan()
    assert adapter.load_imu(asdict(recs[0])).channels == ["acc_x", "acc_y", "acc_z"]
    recs, rejects = Hapt(tmp_path / "hapt", sensors="acc+gyro").scan()
    assert recs == [] and "no gyroscope file" in rejects[0].reason and "sensors: acc" in rejects[0].reason


def test_subject_split_uses_the_uci_har_test_volunteers(tmp_path):
    recs, _ = Hapt(_raw(tmp_path / "hapt", users=(1, 2, 3))).scan()
    assert {r.subject: r.split for r in recs} == {"1": "train", "2": "test", "3": "train"}


def test_activities_option_keeps_the_listed_ids(tmp_path):
    recs, _ = Hapt(_raw(tmp_path / "hapt"), activities=[1, 5], split="random").scan()
    assert Counter(r.label for r in recs) == {"STANDING": 2, "WALKING": 2}


def test_bad_lines_are_rejects_and_experiments_without_files_are_skipped(tmp_path):
    root = _raw(tmp_path / "hapt")
    labels = root / "RawData/labels.txt"
    labels.write_text(labels.read_text() + "\n1 1 4 290 400\n1 1 walk 1 2\n9 9 1 1 10")
    recs, rejects = Hapt(root, split="random").scan()
    assert len(recs) == 6
    assert [r.item for r in rejects] == ["labels.txt:7", "labels.txt:8"]
    assert "rows 290-400 run past the 300 rows of acc_exp01_user01.txt" in rejects[0].reason
    assert "expected 'experiment user activity start_row end_row'" in rejects[1].reason


def test_missing_labels_file_and_unknown_option_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="labels.txt not found"):
        Hapt(tmp_path / "empty").scan()
    with pytest.raises(ConfigError, match="unknown option.*'rate'"):
        Hapt(tmp_path / "empty", rate=50)
