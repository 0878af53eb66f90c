from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from comodo.pipeline.datasets.readers import mat_shapes
from comodo.pipeline.datasets.utd_mhad import ACTIONS, UtdMhad
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import ConfigError, InputDataError, LayoutError


def _fixture(root: Path, names: list[str], frames: int = 12, imu_rows: int = 40) -> Path:
    for sub in ("Inertial", "Depth", "Skeleton"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        scipy.io.savemat(root / "Inertial" / f"{n}_inertial.mat", {"d_iner": rng.normal(size=(imu_rows, 6))})
        depth = rng.integers(0, 4000, size=(24, 32, frames)).astype(np.uint16)
        scipy.io.savemat(root / "Depth" / f"{n}_depth.mat", {"d_depth": depth}, do_compression=True)
    return root


def test_registered_by_name():
    assert DATASETS.get("utd_mhad") is UtdMhad


def test_real_data_has_539_recordings_27_classes_and_five_subjects(shared_data):
    recs, rejects = UtdMhad(shared_data / "UTD-MHAD").scan()
    assert (len(recs), rejects) == (539, [])
    assert len({r.label for r in recs}) == 27
    assert {r.subject for r in recs} == {"1", "2", "3", "4", "5"}
    assert {r.split for r in recs if r.subject in "123"} == {"train"}
    assert {r.split for r in recs if r.subject == "4"} == {"val"}
    assert {r.split for r in recs if r.subject == "5"} == {"test"}
    assert "a8_s1_t4" not in {r.recording_id for r in recs}  # missing in the original dataset


def test_real_depth_frames_from_header_match_full_load(shared_data):
    root = shared_data / "UTD-MHAD"
    recs, _ = UtdMhad(root).scan()
    rec = next(r for r in recs if r.recording_id == "a1_s1_t2")
    frames = scipy.io.loadmat(rec.video_path)["d_depth"].shape[2]
    assert rec.video_kind == "depth_mat" and rec.fps == 30.0
    assert rec.video_duration_s == pytest.approx(frames / 30.0)
    assert '"align": "trial_span"' in rec.extra and '"trial": 2' in rec.extra
    skeleton = scipy.io.loadmat(root / "Skeleton" / "a1_s1_t2_skeleton.mat")["d_skel"]
    assert skeleton.shape[2] == frames


def test_real_imu_is_in_g_and_deg_per_s_at_50hz(shared_data):
    adapter = UtdMhad(shared_data / "UTD-MHAD")
    recs, _ = adapter.scan()
    rec = next(r for r in recs if r.recording_id == "a23_s2_t1")
    imu = adapter.load_imu(asdict(rec))
    assert imu.units == ["g"] * 3 + ["deg/s"] * 3
    assert imu.values.shape[1] == 6 and np.allclose(np.diff(imu.t_s), 0.02)
    assert 0.8 < np.median(np.linalg.norm(imu.values[:, :3], axis=1)) < 1.3  # gravity, in g
    assert imu.meta["sensor_site"] == "right_thigh"  # walking: actions 22-27 are thigh-worn
    assert rec.label == "walk"


def test_labels_follow_action_list_with_spelling_fixed(shared_data):
    adapter = UtdMhad(shared_data / "UTD-MHAD")
    assert adapter.actions() == ACTIONS
    assert adapter.actions()[0] == "swipe_left"


def test_mat_header_shapes_match_scipy(shared_data):
    for path in sorted((shared_data / "UTD-MHAD" / "Depth").glob("a2*_s3_*.mat"))[:5]:
        assert mat_shapes(path) == {n: s for n, s, _ in scipy.io.whosmat(str(path))}


def test_rgb_video_is_preferred_over_depth(tmp_path, make_video):
    root = _fixture(tmp_path / "utd", ["a1_s1_t1", "a2_s1_t1"])
    make_video(root / "RGB" / "a1_s1_t1_color.avi", seconds=2.0, fps=15)
    recs, _ = UtdMhad(root, split="random").scan()
    by_id = {r.recording_id: r for r in recs}
    assert by_id["a1_s1_t1"].video_kind == "mp4" and by_id["a1_s1_t1"].fps == pytest.approx(15)
    assert by_id["a1_s1_t1"].video_duration_s == pytest.approx(2.0, abs=0.1)
    assert by_id["a2_s1_t1"].video_kind == "depth_mat"
    assert by_id["a2_s1_t1"].video_duration_s == pytest.approx(12 / 30)


def test_bad_names_unknown_actions_and_missing_video_are_rejected(tmp_path):
    root = _fixture(tmp_path / "utd", ["a1_s1_t1", "a2_s2_t1", "a3_s3_t1", "a28_s1_t1"])
    (root / "Depth" / "a2_s2_t1_depth.mat").unlink()
    (root / "Inertial" / "notes.mat").write_bytes(b"x")
    (root / "Inertial" / ".DS_Store").write_bytes(b"x")
    recs, rejects = UtdMhad(root, test_subjects=["3"], val_subjects=[]).scan()
    assert sorted(r.recording_id for r in recs) == ["a1_s1_t1", "a3_s3_t1"]
    reasons = {Path(r.item).name: r.reason for r in rejects}
    assert set(reasons) == {"a2_s2_t1", "a28_s1_t1", "notes.mat"}
    assert "unknown action 28" in reasons["a28_s1_t1"]
    assert "a2_s2_t1_depth.mat" in reasons["a2_s2_t1"]
    assert {r.recording_id: r.split for r in recs} == {"a1_s1_t1": "train", "a3_s3_t1": "test"}


def test_missing_inertial_folder_is_a_layout_error(tmp_path):
    (tmp_path / "Depth").mkdir()
    with pytest.raises(LayoutError, match="Inertial folder not found.*found in .*Depth"):
        UtdMhad(tmp_path).scan()


def test_unknown_option_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="unknown option.*'splt'.*valid options:.*test_subjects"):
        UtdMhad(tmp_path, splt="random")


def test_load_imu_names_file_with_wrong_key(tmp_path):
    root = _fixture(tmp_path / "utd", ["a1_s1_t1"])
    recs, _ = UtdMhad(root).scan()
    scipy.io.savemat(recs[0].imu_path, {"acc": np.zeros((5, 3))})
    expected = r"a1_s1_t1_inertial\.mat has no variable 'd_iner'; found \['acc'\]"
    with pytest.raises(InputDataError, match=expected):
        UtdMhad(root).load_imu(asdict(recs[0]))
