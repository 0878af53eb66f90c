from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from comodo.pipeline.datasets.czu_mhad import CHANNELS, CzuMhad, unpack_wallclock
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

START = 723150859_000000  # July 23, 15:08:59.000000: crosses a minute boundary after 1 s


def packed(seconds: np.ndarray) -> np.ndarray:
    """Packed MMDDhhmmss+us stamps for times after START (within the same hour)."""
    total = 8 * 60 + 59 + seconds
    minute, sec = np.floor_divide(total, 60), np.mod(total, 60)
    whole = np.floor(sec)
    return 7231500_00_000000 + minute * 100_000000 + whole * 1_000000 + np.round((sec - whole) * 1e6)


def _sensor_cells(n: int = 100, offset: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cells = np.empty((10, 1), dtype=object)
    for s in range(10):
        t = offset + s * 0.004 + np.arange(n) / 50.0
        block = np.column_stack([rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) * 50, packed(t)])
        block[:, 0] = s + t  # a known ramp per sensor: value = sensor index + time
        cells[s, 0] = block
    return cells


def _fixture(root: Path, names: list[str], frames: int = 20) -> Path:
    for sub in ("sensor_mat", "depth_mat"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        scipy.io.savemat(root / "sensor_mat" / f"{name}.mat", {"sensor": _sensor_cells(seed=i)})
        depth = np.zeros((8, 10, frames), dtype=np.uint16)
        scipy.io.savemat(root / "depth_mat" / f"{name}.mat", {"depth": depth}, do_compression=True)
    return root


NAMES = ["cx_a1_t1", "cyy_a2_t1", "myj_a3_t2", "qyh_a15_t1", "zyh_a22_t3"]


def test_registered_by_name():
    assert DATASETS.get("czu_mhad") is CzuMhad


def test_scan_labels_subjects_depth_and_default_subject_split(tmp_path):
    recs, rejects = CzuMhad(_fixture(tmp_path / "czu", NAMES)).scan()
    assert rejects == []
    by_id = {r.recording_id: r for r in recs}
    assert by_id["qyh_a15_t1"].label == "clap" and by_id["zyh_a22_t3"].label == "right_lateral_movement"
    assert Counter(r.split for r in recs) == {"train": 3, "val": 1, "test": 1}
    assert by_id["qyh_a15_t1"].split == "val" and by_id["zyh_a22_t3"].split == "test"
    rec = by_id["cx_a1_t1"]
    assert rec.video_kind == "depth_mat" and rec.video_duration_s == pytest.approx(20 / 30)
    assert '"depth_key": "depth"' in rec.extra and '"align": "trial_span"' in rec.extra


def test_sixty_channels_merged_on_the_reference_clock(tmp_path):
    adapter = CzuMhad(_fixture(tmp_path / "czu", NAMES[:1]))
    imu = adapter.load_imu(asdict(adapter.scan()[0][0]))
    assert imu.values.shape[1] == 60 and imu.channels == CHANNELS
    assert imu.units[:6] == ["g"] * 3 + ["deg/s"] * 3
    assert imu.t_s[0] == 0.0 and np.allclose(np.diff(imu.t_s), 0.02, atol=1e-6)  # across 15:09:00
    # pi09 starts 36 ms after pi00: the reference is cut to the common span (first kept pi00
    # sample at 40 ms becomes 0) and the other sensors are interpolated onto its times
    t_abs = imu.t_s + 0.04
    for s in (0, 3, 9):
        assert np.allclose(imu.values[:, 6 * s], s + t_abs, atol=1e-5)


def test_unpack_wallclock_is_linear_across_minute_boundaries():
    t = np.array([0.5, 0.98, 1.0, 1.02, 61.0])
    assert np.allclose(unpack_wallclock(packed(t), "x") - unpack_wallclock(packed(t), "x")[0], t - 0.5)
    with pytest.raises(InputDataError, match="not packed MMDDhhmmss.*timestamp: us"):
        unpack_wallclock(np.array([723150899000000.0]), "f.mat sensor pi00")


def test_bad_names_unknown_actions_missing_depth_are_rejected(tmp_path):
    root = _fixture(tmp_path / "czu", ["cx_a1_t1", "cx_a23_t1", "cx_a2_t1"])
    (root / "depth_mat" / "cx_a2_t1.mat").unlink()
    (root / "sensor_mat" / "readme.mat").write_bytes(b"x")
    recs, rejects = CzuMhad(root).scan()
    assert [r.recording_id for r in recs] == ["cx_a1_t1"]
    reasons = {Path(r.item).name: r.reason for r in rejects}
    assert "unknown action 23" in reasons["cx_a23_t1"]
    assert reasons["cx_a2_t1"].startswith("no depth video")
    assert "readme.mat" in reasons


def test_wrong_cell_count_is_rejected_at_scan(tmp_path):
    root = _fixture(tmp_path / "czu", ["cx_a1_t1"])
    scipy.io.savemat(root / "sensor_mat" / "cx_a1_t1.mat", {"sensor": _sensor_cells()[:6]})
    recs, rejects = CzuMhad(root).scan()
    assert recs == [] and "expected variable 'sensor' of shape (10, 1)" in rejects[0].reason


def test_missing_depth_folder_is_a_layout_error(tmp_path):
    (tmp_path / "sensor_mat").mkdir()
    with pytest.raises(LayoutError, match="depth_mat folder not found"):
        CzuMhad(tmp_path).scan()


def test_sensor_with_wrong_width_names_it(tmp_path):
    root = _fixture(tmp_path / "czu", ["cx_a1_t1"])
    adapter = CzuMhad(root)
    rec = asdict(adapter.scan()[0][0])
    cells = _sensor_cells()
    cells[4, 0] = cells[4, 0][:, :6]
    scipy.io.savemat(rec["imu_path"], {"sensor": cells})
    expected = r"cx_a1_t1\.mat: sensor pi04 has shape \(100, 6\); expected \(N, 7\)"
    with pytest.raises(InputDataError, match=expected):
        adapter.load_imu(rec)
