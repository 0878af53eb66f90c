"""Adapters on real files in the datasets' own formats (../shared/data/real-formats).

Each test pins numbers read from the files themselves (counts, rates, units, magnitudes):
a reader that shifts a column, drops a line or scales by the wrong factor fails here.
"""

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets.common import read_label_list
from comodo.pipeline.datasets.ego4d import Ego4D
from comodo.pipeline.datasets.gopro import GoPro, read_telemetry
from comodo.pipeline.datasets.hapt import Hapt
from comodo.pipeline.datasets.mmea import Mmea
from comodo.pipeline.units_check import G, gravity_check

MMEA_OFFICIAL = "mmea/Xu-Linfeng__UESTC_MMEA_CL_main"
MMEA_COMODO = "mmea/Breezelled__COMODO/dataset/UESTC-MMEA-CL"
HAPT = "har_imu/maria-o-machado__ProjetoATD"
GOPRO = "gopro_gpmf/gopro__gpmf-parser/samples"


def test_mmea_release_lists_are_read_with_their_counts_and_0_based_labels(real_formats):
    official = Mmea(real_formats / MMEA_OFFICIAL)
    assert sorted(p.name for p in official.split_lists().values()) == [
        "mydataset_test.txt", "mydataset_train.txt", "mydataset_val.txt"]
    listed = official._listed()  # each line's label was checked against its class folder
    assert Counter(listed.values()) == {"train": 4553, "val": 653, "test": 1316}
    assert len({key.split("/")[0] for key in listed}) == 32
    assert listed["27_open_close_door/27_open_close_door_2022_05_05_16_05_51"] == "train"


def test_mmea_comodo_copies_list_the_same_clips_as_the_release(real_formats):
    assert Mmea(real_formats / MMEA_COMODO)._listed() == Mmea(real_formats / MMEA_OFFICIAL)._listed()


def test_mmea_lists_without_sensor_files_reject_every_clip_with_the_missing_path(real_formats):
    recs, rejects = Mmea(real_formats / MMEA_OFFICIAL, probe_video=False).scan()
    assert recs == [] and len(rejects) == 6522
    assert all(r.reason.startswith("no sensor CSV") for r in rejects)


def _ego4d_doc_csv(real_formats: Path, tmp_path: Path, null_first: bool = False) -> Path:
    """The three rows of a real Ego4D IMU csv quoted in the official docs, as a file."""
    text = (real_formats / "ego4d_imu/EGO4D__docs/docs/data/imu.md").read_text()
    block = text.split("## Sample", 1)[1].split("```")[1].strip().splitlines()
    if null_first:  # the docs: canonical_timestamp_ms may be NULL
        cells = block[1].split(",")
        block[1] = ",".join(cells[:2] + ["NULL"] + cells[3:])
    path = tmp_path / "imu" / "uid.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(block) + "\n")
    return path


def test_ego4d_official_csv_columns_are_taken_by_name_gyro_before_accl(real_formats, tmp_path):
    path = _ego4d_doc_csv(real_formats, tmp_path)
    assert path.read_text().splitlines()[0].count(",") == 8  # 9 columns
    imu = Ego4D.__new__(Ego4D).load_imu({"imu_path": str(path)})
    assert imu.channels == ["accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]
    assert imu.units == ["m/s^2"] * 3 + ["rad/s"] * 3
    np.testing.assert_allclose(imu.t_s, [0.0, 0.004975124378109452, 0.009950248756218905])
    accl = [-2.278177458033573, -1.0311750599520384, -1.0311750599520384]
    gyro = [0.025559105431309903, 0.25026624068157616, 0.11182108626198084]
    np.testing.assert_allclose(imu.values[0], accl + gyro)
    assert 1 / np.diff(imu.t_s).mean() == pytest.approx(201.0)


def test_ego4d_csv_row_with_null_canonical_timestamp_is_dropped_by_cleaning(real_formats, tmp_path):
    from comodo.pipeline import signal

    imu = Ego4D.__new__(Ego4D).load_imu({"imu_path": str(_ego4d_doc_csv(real_formats, tmp_path, True))})
    assert np.isnan(imu.t_s[0]) and np.isfinite(imu.t_s[1:]).all()
    pieces, report = signal.clean(imu, max_gap_s=0.5)
    assert report.dropped_nonfinite == 1 and len(pieces[0][0]) == 2


def test_ego4d_comodo_split_lists_give_uid_and_scenario(real_formats):
    folder = real_formats / "ego4d_imu/Breezelled__COMODO/dataset/Ego4D"
    lists = {s: read_label_list(folder / f"{s}.txt") for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in lists.items()} == {"train": 1110, "val": 162, "test": 316}
    assert lists["train"]["23d27284-5421-4913-baba-b660fadd1920"] == "cleaning / laundry"
    assert len(set().union(*(set(v.values()) for v in lists.values()))) == 31


def test_hapt_raw_files_give_45_stretches_in_g_at_50hz(real_formats):
    adapter = Hapt(real_formats / HAPT, split="random", test_fraction=0.3)
    recs, rejects = adapter.scan()
    assert rejects == [] and len(recs) == 45
    assert Counter(r.split for r in recs) == {"train": 31, "test": 14}
    labels = Counter(r.label for r in recs)
    assert len(labels) == 12 and labels["WALKING"] == 8 and labels["LIE_TO_STAND"] == 2
    first = next(r for r in recs if r.recording_id == "exp01_user01_00250")
    assert first.label == "STANDING" and first.subject == "1" and first.imu_rate_hz == 50.0
    imu = adapter.load_imu(asdict(first))
    assert imu.values.shape == (983, 3) and imu.units == ["g"] * 3  # rows 250..1232 inclusive
    assert imu.t_s[0] == pytest.approx(249 / 50) and np.diff(imu.t_s) == pytest.approx(0.02)
    np.testing.assert_allclose(imu.values[0], np.loadtxt(real_formats / HAPT / "acc_exp01_user01.txt",
                                                         skiprows=249, max_rows=1))
    verdict = gravity_check(imu.values, 50.0)
    assert verdict.ok and verdict.median_g == pytest.approx(1.03, abs=0.02)


def test_hapt_default_split_puts_user_1_in_train(real_formats):
    recs, _ = Hapt(real_formats / HAPT).scan()
    assert {r.split for r in recs} == {"train"}  # user 1 is not a UCI HAR test volunteer


@pytest.mark.parametrize(("name", "acc_hz", "gyro_hz", "axes"), [
    ("karma.mp4", 184.2, 368.5, "ZXY"),  # HERO5: no ORIN, the stream names give the order
    ("max-heromode.mp4", 197.5, 197.5, "XzY"),  # GoPro MAX: ORIN
])
def test_gopro_real_streams_have_their_own_clocks_and_declared_axes(real_formats, name, acc_hz, gyro_hz,
                                                                    axes):
    tel = read_telemetry(real_formats / GOPRO / name)
    assert len(tel.t_s["ACCL"]) / tel.span_s == pytest.approx(acc_hz, abs=0.1)
    assert len(tel.t_s["GYRO"]) / tel.span_s == pytest.approx(gyro_hz, abs=0.1)
    assert tel.order == {"ACCL": axes, "GYRO": axes}
    assert tel.units == {"ACCL": "m/s^2", "GYRO": "rad/s"}


@pytest.mark.parametrize(("stem", "n_rows", "acc_mean", "quiet_cv"), [
    ("karma", 2588, [-0.43, -0.04, 9.71], 0.05),
    ("max-heromode", 2108, [-0.06, 1.31, 9.70], 0.15),  # a walk: no 1 s window at rest
])
def test_gopro_real_imu_on_the_200hz_grid_reads_gravity_on_camera_z(real_formats, stem, n_rows, acc_mean,
                                                                    quiet_cv):
    adapter = GoPro(real_formats / GOPRO)
    recs, rejects = adapter.scan()
    assert rejects == [] and sorted(r.recording_id for r in recs) == ["karma", "max-heromode"]
    imu = adapter.load_imu(asdict(next(r for r in recs if r.recording_id == stem)))
    assert imu.values.shape == (n_rows, 6) and np.diff(imu.t_s) == pytest.approx(0.005)
    np.testing.assert_allclose(imu.values[:, :3].mean(axis=0), acc_mean, atol=0.01)
    assert np.abs(imu.values[:, 3:]).mean() < 1.0  # rad/s of a handheld / gimbal camera
    verdict = gravity_check(imu.values[:, :3] / G, 200.0, quiet_cv=quiet_cv)
    assert verdict.ok and abs(verdict.median_g - 1.0) < 0.03
    if quiet_cv > 0.05:
        assert gravity_check(imu.values[:, :3] / G, 200.0) is None  # not judged at the default


def test_egoexo4d_comodo_list_names_takes_labels_and_split_without_takes_json(real_formats):
    from comodo.pipeline.datasets.egoexo4d import EgoExo4D

    adapter = EgoExo4D(real_formats / "egoexo4d/Breezelled__COMODO/dataset/EgoExo4D")
    takes = adapter.takes()
    assert len(takes) == 3495
    assert takes[0] == {"take_uid": "uniandes_bouldering_026_31", "take_name": "uniandes_bouldering_026_31",
                        "parent_task_name": "Rock Climbing"}
    assert len({t["parent_task_name"] for t in takes}) == 8
    assert set(adapter._splits().values()) == {"train"}
    recs, rejects = adapter.scan()  # no take folders here: each take is a reject naming what it looked for
    assert recs == [] and len(rejects) == 3495
    assert "no IMU file (imu.csv or *_noimagestreams.vrs)" in rejects[0].reason
