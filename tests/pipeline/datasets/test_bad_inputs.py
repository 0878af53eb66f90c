"""A corpus of broken inputs: each must end in a named InputDataError/LayoutError or a reject row.

Adapters read and report; cleaning (NaN rows, duplicate or unsorted timestamps) belongs to the
imu stage, so such files are returned as they are.
"""

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from comodo.pipeline.datasets.basicmotions import BasicMotions
from comodo.pipeline.datasets.czu_mhad import CzuMhad
from comodo.pipeline.datasets.egoexo4d import EgoExo4D
from comodo.pipeline.datasets.gopro import GoPro
from comodo.pipeline.datasets.manifest import Manifest
from comodo.pipeline.datasets.mmea import Mmea
from comodo.pipeline.datasets.utd_mhad import UtdMhad
from comodo.stores.errors import InputDataError

CLIP = "videos/gopro-gpmf-parser/max-heromode.mp4"
EGO_HEADER = "canonical_timestamp_ms,gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z\n"


def _manifest(root: Path, imu_name: str, content: bytes | str, rate: str = "") -> Manifest:
    path = root / imu_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    rows = f"recording_id,imu_path,label,imu_rate_hz\nr1,{imu_name},walk,{rate}\n"
    (root / "manifest.csv").write_text(rows, encoding="utf-8")
    return Manifest(root)


def _load_first(adapter) -> object:
    recs, rejects = adapter.scan()
    if rejects:
        raise InputDataError(rejects[0].reason)
    return adapter.load_imu(asdict(recs[0]))


def _utd(root: Path, inertial: dict | bytes) -> UtdMhad:
    for sub in ("Inertial", "Depth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / "Inertial" / "a1_s1_t1_inertial.mat"
    if isinstance(inertial, bytes):
        path.write_bytes(inertial)
    else:
        scipy.io.savemat(path, inertial)
    scipy.io.savemat(root / "Depth" / "a1_s1_t1_depth.mat", {"d_depth": np.zeros((2, 2, 3), np.uint16)})
    return UtdMhad(root, split="random")


def _egoexo(root: Path, imu: str, make_video) -> EgoExo4D:
    take = root / "takes" / "t1"
    take.mkdir(parents=True)
    (take / "imu.csv").write_text(imu)
    make_video(take / "video.mp4")
    (root / "takes.json").write_text(json.dumps([{"take_uid": "t1", "take_name": "t1",
                                                  "parent_task_name": "Cooking"}]))
    return EgoExo4D(root)


# --- empty, unreadable and malformed files -------------------------------------------------

def test_zero_byte_imu_csv_is_named(tmp_path, make_video):
    with pytest.raises(InputDataError, match=r"imu\.csv is empty \(0 bytes\)"):
        _load_first(_manifest(tmp_path / "m", "imu.csv", b"", rate="50"))
    recs, rejects = _egoexo(tmp_path / "e", "", make_video).scan()
    assert recs == [] and "imu.csv is empty (0 bytes)" in rejects[0].reason


def test_binary_garbage_csv_is_an_input_error(tmp_path):
    with pytest.raises(InputDataError, match=r"junk\.csv could not be parsed as a table: [^\n]+$"):
        _load_first(_manifest(tmp_path, "junk.csv", bytes(range(256)) * 8, rate="50"))


def test_ragged_csv_is_an_input_error(tmp_path):
    with pytest.raises(InputDataError, match=r"ragged\.csv could not be parsed"):
        _load_first(_manifest(tmp_path, "ragged.csv", "t_s,acc_x\n0,1\n0.01,2,3,4\n"))


def test_text_file_named_mat_is_rejected_at_scan(tmp_path):
    recs, rejects = _utd(tmp_path, b"this is not a mat file" * 10).scan()
    assert recs == [] and "is not a MATLAB v5 .mat file" in rejects[0].reason


# --- timestamps: returned as they are, the imu stage cleans them ----------------------------

def test_nan_duplicate_and_unsorted_timestamps_are_returned_as_is(tmp_path, make_video):
    rows = "t_s,acc_x\n0.00,1\n,2\nnan,3\n0.02,4\n0.02,5\n0.01,6\n0.03,7\n"
    imu = _load_first(_manifest(tmp_path / "m", "imu.csv", rows, rate="100"))
    assert np.array_equal(imu.t_s, [0.0, np.nan, np.nan, 0.02, 0.02, 0.01, 0.03], equal_nan=True)
    assert imu.values[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 7]
    ego = _egoexo(tmp_path / "e", EGO_HEADER + "0,0,0,0,0,0,1\n10,0,0,0,0,0,2\n5,0,0,0,0,0,3\n5,0,0,0,0,0,4\n"
                  "nan,0,0,0,0,0,5\n", make_video)
    imu = _load_first(ego)
    assert np.array_equal(imu.t_s, [0.0, 0.01, 0.005, 0.005, np.nan], equal_nan=True)


def test_nan_values_are_kept_for_cleaning(tmp_path):
    imu = _load_first(_manifest(tmp_path, "imu.csv", "t_s,acc_x\n0,1\n0.01,\n0.02,x\n0.03,4\n"))
    assert np.isnan(imu.values[1:3, 0]).all() and imu.values[3, 0] == 4


# --- wrong columns and channel counts ------------------------------------------------------

def test_wrong_column_names_are_listed(tmp_path, make_video):
    ego = _egoexo(tmp_path / "e", "time,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n1,1,2,3,4,5,6\n", make_video)
    recs, rejects = ego.scan()
    assert "no readable 'canonical_timestamp_ms' column" in rejects[0].reason
    recs, rejects = _manifest(tmp_path / "m", "imu.csv", "time,acc_x\n0,1\n1,2\n").scan()
    assert "imu.csv has no time column (t_s, timestamp_ms, canonical_timestamp_ms)" in rejects[0].reason


def test_wrong_channel_count_is_named(tmp_path, make_video):
    recs, rejects = _utd(tmp_path / "u", {"d_iner": np.zeros((50, 5))}).scan()
    assert "expected variable 'd_iner' of shape (N, 6), found {'d_iner': (50, 5)}" in rejects[0].reason
    root = tmp_path / "mmea"
    make_video(root / "video" / "1_walk" / "c.mp4")
    (root / "sensor" / "1_walk").mkdir(parents=True)
    (root / "sensor" / "1_walk" / "c.csv").write_text("1,2,3,4,5,6,7\n")
    with pytest.raises(InputDataError, match=r"c\.csv: expected 6 columns .* found 7"):
        _load_first(Mmea(root, probe_video=False))
    np.save(tmp_path / "cube.npy", np.zeros((4, 3, 2)))
    with pytest.raises(InputDataError, match=r"cube\.npy: expected a numeric \(T, C\) array"):
        _load_first(_manifest_npy(tmp_path / "n", tmp_path / "cube.npy"))


def _manifest_npy(root: Path, npy: Path) -> Manifest:
    root.mkdir(parents=True)
    shutil.copy(npy, root / npy.name)
    (root / "manifest.csv").write_text(f"imu_path,label,imu_rate_hz\n{npy.name},walk,10\n")
    return Manifest(root)


# --- .mat files without the expected variable ----------------------------------------------

def test_mat_without_expected_key_names_the_keys_found(tmp_path):
    adapter = _utd(tmp_path / "u", {"d_iner": np.zeros((50, 6))})
    rec = asdict(adapter.scan()[0][0])
    scipy.io.savemat(rec["imu_path"], {"inertial": np.zeros((50, 6))})
    with pytest.raises(InputDataError, match=r"has no variable 'd_iner'; found \['inertial'\]"):
        adapter.load_imu(rec)
    root = tmp_path / "czu"
    (root / "sensor_mat").mkdir(parents=True)
    (root / "depth_mat").mkdir()
    scipy.io.savemat(root / "sensor_mat" / "cx_a1_t1.mat", {"imu": np.zeros((3, 7))})
    scipy.io.savemat(root / "depth_mat" / "cx_a1_t1.mat", {"depth": np.zeros((2, 2, 3))})
    recs, rejects = CzuMhad(root).scan()
    assert "expected variable 'sensor' of shape (10, 1), found {'imu': (3, 7)}" in rejects[0].reason


# --- labels ----------------------------------------------------------------------------------

def test_unknown_labels_are_rejected_with_the_known_ones(tmp_path, make_video):
    recs, rejects = _utd(tmp_path / "u", {"d_iner": np.zeros((50, 6))}).scan()
    assert len(recs) == 1
    inertial = tmp_path / "u" / "Inertial"
    (inertial / "a1_s1_t1_inertial.mat").rename(inertial / "a40_s1_t1_inertial.mat")
    recs, rejects = UtdMhad(tmp_path / "u").scan()
    assert "unknown action 40; known actions are 1..27" in rejects[0].reason
    ts = tmp_path / "bm"
    ts.mkdir()
    header = "@dimensions 6\n@classLabel true Walking\n@data\n"
    case = ":".join(["1,2"] * 6)
    (ts / "BasicMotions_TRAIN.ts").write_text(header + f"{case}:Walking\n{case}:Flying\n")
    (ts / "BasicMotions_TEST.ts").write_text(header + f"{case}:Walking\n")
    recs, rejects = BasicMotions(ts).scan()
    assert len(recs) == 2 and "label 'Flying' is not in the header's classes ['Walking']" in rejects[0].reason
    ego = _egoexo(tmp_path / "e", EGO_HEADER + "0,0,0,0,0,0,1\n1,0,0,0,0,0,1\n", make_video)
    recs, rejects = EgoExo4D(ego.root, labels=["Soccer"]).scan()
    assert "label 'Cooking' (parent_task_name) is not one of ['Soccer']" in rejects[0].reason


# --- paths with spaces and non-ASCII characters ----------------------------------------------

def test_paths_with_spaces_and_non_ascii_characters(tmp_path, make_video, shared_data):
    root = tmp_path / "données brutes" / "prise ü 1"
    adapter = _manifest(root, "capteur été/imu 1.csv", "t_s,acc_x\n0,1\n0.01,2\n")
    imu = _load_first(adapter)
    assert imu.values[:, 0].tolist() == [1, 2] and "capteur été/imu 1.csv" in imu.meta["source"]
    utd = _utd(tmp_path / "UTD MHAD é", {"d_iner": np.ones((20, 6))})
    assert _load_first(utd).values.shape == (20, 6)
    clip = tmp_path / "vidéos ü" / "marche à pied.mp4"
    clip.parent.mkdir()
    shutil.copy(shared_data / CLIP, clip)
    recs, rejects = GoPro(clip.parent).scan()
    assert rejects == [] and recs[0].recording_id == "marche à pied"


# --- GoPro: zero-byte and truncated MP4s -----------------------------------------------------

def test_zero_byte_and_truncated_gopro_mp4_are_rejected(tmp_path, shared_data):
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = (shared_data / CLIP).read_bytes()
    (tmp_path / "head.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "tail.mp4").write_bytes(data[len(data) // 3:])
    recs, rejects = GoPro(tmp_path).scan()
    reasons = {r.item: r.reason for r in rejects}
    assert recs == [] and set(reasons) == {"empty.mp4", "head.mp4", "tail.mp4"}
    assert "empty.mp4 is empty (0 bytes)" in reasons["empty.mp4"]
    for name in ("head.mp4", "tail.mp4"):
        assert str(tmp_path / name) in reasons[name]


def test_gopro_load_imu_on_a_file_truncated_after_scan(tmp_path, shared_data):
    clip = tmp_path / "clip.mp4"
    shutil.copy(shared_data / CLIP, clip)
    adapter = GoPro(tmp_path)
    rec = asdict(adapter.scan()[0][0])
    clip.write_bytes(clip.read_bytes()[:100_000])
    with pytest.raises(InputDataError, match=r"clip\.mp4"):
        adapter.load_imu(rec)
