import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.basicmotions import BasicMotions
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

HEADER = "#comment\n@problemName Tiny\n@dimensions 6\n@classLabel true Walking Running\n@data\n"


def _case(label: str, steps: int = 5, dims: int = 6, value: str = "0.5") -> str:
    return ":".join(",".join([value] * steps) for _ in range(dims)) + f":{label}\n"


def _tiny(root: Path, train: str, test: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Tiny_TRAIN.ts").write_text(HEADER + train)
    (root / "Tiny_TEST.ts").write_text(HEADER + test)
    return root


def test_registered_by_name():
    assert DATASETS.get("basicmotions") is BasicMotions


def test_real_data_has_40_plus_40_cases_in_4_classes(shared_data):
    adapter = BasicMotions(shared_data / "BasicMotions")
    recs, rejects = adapter.scan()
    assert rejects == []
    assert Counter(r.split for r in recs) == {"train": 40, "test": 40}
    assert Counter(r.label for r in recs) == {"Standing": 20, "Running": 20, "Walking": 20, "Badminton": 20}
    assert {r.video_kind for r in recs} == {"none"} and {r.imu_rate_hz for r in recs} == {10.0}


def test_real_case_is_6_by_100_at_10hz_in_arbitrary_units(shared_data):
    adapter = BasicMotions(shared_data / "BasicMotions")
    recs, _ = adapter.scan()
    imu = adapter.load_imu(asdict(recs[41]))
    assert imu.values.shape == (100, 6)
    assert imu.t_s[-1] == pytest.approx(9.9)
    assert imu.units == ["a.u."] * 6
    first = (shared_data / "BasicMotions" / "BasicMotions_TEST.ts").read_text().split("@data\n")[1]
    second_line = first.splitlines()[1]
    assert imu.values[0, 0] == pytest.approx(float(second_line.split(",")[0]))


def test_val_fraction_carves_val_from_train_only(shared_data):
    recs, _ = BasicMotions(shared_data / "BasicMotions", val_fraction=0.25, seed=3).scan()
    counts = Counter(r.split for r in recs)
    assert counts == {"train": 30, "val": 10, "test": 40}
    assert all(r.recording_id.startswith("train_") for r in recs if r.split == "val")


def test_bad_cases_become_rejects_with_line_numbers(tmp_path):
    train = _case("Walking") + _case("Running", dims=5) + _case("Jumping") + _case("Walking", value="x")
    root = _tiny(tmp_path / "ts", train, _case("Running"))
    recs, rejects = BasicMotions(root, problem="Tiny").scan()
    assert [r.recording_id for r in recs] == ["train_000", "test_000"]
    reasons = {r.item: r.reason for r in rejects}
    assert "Tiny_TRAIN.ts:7: expected 6 dimensions" in reasons["train_001"]
    assert "label 'Jumping' is not in the header's classes" in reasons["train_002"]
    assert "non-numeric" in reasons["train_003"]


def test_missing_values_are_nan_for_the_imu_stage(tmp_path):
    root = _tiny(tmp_path / "ts", _case("Walking", value="?"), _case("Running"))
    adapter = BasicMotions(root, problem="Tiny")
    recs, _ = adapter.scan()
    assert np.isnan(adapter.load_imu(asdict(recs[0])).values).all()


def test_missing_test_file_is_a_layout_error(tmp_path, shared_data):
    shutil.copy(shared_data / "BasicMotions" / "BasicMotions_TRAIN.ts", tmp_path)
    with pytest.raises(LayoutError, match=r"TEST \.ts file not found.*BasicMotions_TEST\.ts.*found in"):
        BasicMotions(tmp_path).scan()


def test_file_without_data_section_is_a_layout_error(tmp_path):
    root = _tiny(tmp_path / "ts", "", "")
    (root / "Tiny_TRAIN.ts").write_text("@problemName Tiny\n1,2:3\n")
    with pytest.raises(LayoutError, match="no '@data' line"):
        BasicMotions(root, problem="Tiny").scan()


def test_case_index_outside_the_file_is_named(tmp_path):
    root = _tiny(tmp_path / "ts", _case("Walking"), _case("Running"))
    adapter = BasicMotions(root, problem="Tiny")
    rec = asdict(adapter.scan()[0][0]) | {"extra": '{"case": 7}'}
    with pytest.raises(InputDataError, match="refers to case 7 but the file has 1 cases"):
        adapter.load_imu(rec)
