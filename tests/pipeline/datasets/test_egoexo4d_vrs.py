"""Ego-Exo4D IMU straight from Aria VRS files: the two real Aria Gen1 recordings."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from comodo.pipeline.datasets import aria_vrs
from comodo.pipeline.datasets.egoexo4d import EgoExo4D
from comodo.stores.errors import ConfigError, InputDataError

GEN1 = "egoexo4d/facebookresearch__projectaria_tools/data/gen1"
AEA = f"{GEN1}/aria_everyday_activities_test_data/recording.vrs"
TIMECODE = f"{GEN1}/aria_unit_test_timecode_sequence_calib.vrs"


@pytest.fixture(scope="module")
def pyvrs():
    return pytest.importorskip("pyvrs", reason="the optional extra 'vrs' (pyvrs) is not installed")


@pytest.mark.parametrize(("path", "stream", "n", "rate", "origin_ns", "gravity"), [
    (AEA, "1202-1", 400, 1001.1, 86385246037, 9.780),
    (AEA, "1202-2", 319, 798.2, 86385246037, 9.853),
    (TIMECODE, "1202-1", 150, 999.8, 280591693600, 9.828),
    (TIMECODE, "1202-2", 121, 807.4, 280591693600, 9.689),
])
def test_vrs_imu_streams_have_their_counts_rates_units_and_rgb_clock(pyvrs, real_formats, path, stream, n,
                                                                     rate, origin_ns, gravity):
    imu = aria_vrs.read_vrs_imu(real_formats / path, stream)
    assert imu.values.shape == (n, 6) and imu.meta["invalid"] == 0
    assert imu.channels[:3] == ["accl_x", "accl_y", "accl_z"] and imu.units == ["m/s^2"] * 3 + ["rad/s"] * 3
    assert aria_vrs.peek_vrs_rate(real_formats / path, stream) == pytest.approx(rate, abs=0.1)
    assert imu.meta["clock_origin"] == "rgb" and imu.meta["origin_ns"] == origin_ns
    assert np.all(np.diff(imu.t_s) > 0) and abs(imu.t_s[0]) < 0.05  # IMU starts near the first frame
    # m/s^2 at rest (uncalibrated factory values: each IMU's bias shows, within 1.3% of g)
    assert np.linalg.norm(imu.values[:, :3], axis=1).mean() == pytest.approx(gravity, abs=0.001)
    assert np.abs(imu.values[:, 3:]).max() < 2.0  # rad/s


def test_first_aea_record_is_read_field_by_field(pyvrs, real_formats):
    imu = aria_vrs.read_vrs_imu(real_formats / AEA)
    np.testing.assert_allclose(imu.values[0], [-7.893682956695557, 2.142810583114624, 2.6599581241607666,
                                               0.7740546464920044, -0.1719529926776886, -0.3263380229473114])
    assert imu.t_s[0] == pytest.approx((86347942362 - 86385246037) * 1e-9)


def test_a_stream_the_file_lacks_names_its_imu_streams(pyvrs, real_formats):
    with pytest.raises(InputDataError, match=r"no stream 1202-3; its IMU streams are \['1202-1', '1202-2'\]"):
        aria_vrs.read_vrs_imu(real_formats / AEA, "1202-3")


def test_a_take_reads_its_vrs_when_it_has_no_csv(pyvrs, real_formats, tmp_path, make_video):
    folder = tmp_path / "takes" / "aea_take"
    make_video(folder / "video.mp4", seconds=1.0, fps=10)
    (folder / "1WM093701M1276_noimagestreams.vrs").symlink_to(real_formats / AEA)
    (tmp_path / "takes.json").write_text(json.dumps([{"take_uid": "t1", "take_name": "aea_take",
                                                      "parent_task_name": "Cooking"}]))
    adapter = EgoExo4D(tmp_path, split="random", test_fraction=0.0, val_fraction=0.0)
    recs, rejects = adapter.scan()
    assert rejects == [] and recs[0].imu_path.endswith("_noimagestreams.vrs")
    assert recs[0].imu_rate_hz == pytest.approx(1001.1, abs=0.1)
    assert adapter.load_imu(asdict(recs[0])).values.shape == (400, 6)
    csv_only = EgoExo4D(tmp_path, imu_source="csv").scan()[1][0].reason
    assert csv_only.startswith("take aea_take: no IMU file (imu.csv)")


def test_vrs_files_mode_lists_every_vrs_as_an_imu_only_recording(pyvrs, real_formats):
    recs, rejects = EgoExo4D(real_formats / "egoexo4d", recordings="vrs_files", label="aria").scan()
    assert rejects == [] and len(recs) == 2
    assert {r.label for r in recs} == {"aria"} and {r.video_kind for r in recs} == {"none"}


def test_without_pyvrs_the_error_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pyvrs", None)  # as if not installed
    path = tmp_path / "take.vrs"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match=r"needs the optional extra 'vrs' \(pip install 'comodo\[vrs\]'"):
        aria_vrs.read_vrs_imu(path)
