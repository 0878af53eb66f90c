import shutil
import struct
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from comodo.pipeline.datasets import gpmf
from comodo.pipeline.datasets.gopro import GoPro
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import LayoutError

CLIP = "videos/gopro-gpmf-parser/max-heromode.mp4"


def klv(key: str, type_code: str, size: int, payload: bytes) -> bytes:
    repeat = len(payload) // size if size else 0
    head = key.encode() + bytes([ord(type_code) if type_code else 0, size]) + struct.pack(">H", repeat)
    return head + payload + b"\x00" * (-len(payload) % 4)


def nest(key: str, *children: bytes) -> bytes:
    body = b"".join(children)
    return key.encode() + bytes([0, 1]) + struct.pack(">H", len(body)) + body


@pytest.fixture
def real(shared_data) -> GoPro:
    return GoPro((shared_data / CLIP).parent)


def test_registered_by_name():
    assert DATASETS.get("gopro") is GoPro


def test_real_clip_rate_gravity_and_clock(real):
    recs, rejects = real.scan()
    assert rejects == [] and len(recs) == 1
    rec = recs[0]
    assert (rec.recording_id, rec.label, rec.video_kind) == ("max-heromode", "unlabelled", "mp4")
    assert 196.0 < rec.imu_rate_hz < 199.0
    assert rec.video_duration_s == pytest.approx(10.51, abs=0.05)
    imu = real.load_imu(asdict(rec))
    assert imu.values.shape == (2108, 6)  # 2082 samples at ~197.5 Hz onto the 200 Hz grid
    assert imu.units == ["m/s^2"] * 3 + ["rad/s"] * 3
    assert np.linalg.norm(imu.values[:, :3], axis=1).mean() == pytest.approx(9.8, abs=0.3)
    assert 0.0 <= imu.t_s[0] < 0.01  # first telemetry packet starts with the first frame
    assert imu.t_s[-1] <= 10.55 and np.all(np.diff(imu.t_s) > 0)
    assert np.diff(imu.t_s) == pytest.approx(0.005)


def test_orin_xzy_maps_stored_columns_to_camera_axes(real):
    rec = asdict(real.scan()[0][0])
    camera = real.load_imu(rec).values
    raw = GoPro(Path(rec["imu_path"]).parent, axes="raw").load_imu(rec).values
    assert np.allclose(camera[:, 0], raw[:, 0])
    assert np.allclose(camera[:, 1], raw[:, 2])
    assert np.allclose(camera[:, 2], -raw[:, 1])
    assert raw[:, 1].mean() < -9.0 < 9.0 < camera[:, 2].mean()  # gravity on the stored -Z column


def test_labels_csv_sets_label_and_split_per_file(tmp_path, shared_data):
    for name in ("walk a.mp4", "sub/walk b.MP4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / CLIP, tmp_path / name)
    rows = "file,label,split\nwalk a.mp4,walking,train\nsub/walk b.MP4,stairs,test\n"
    (tmp_path / "labels.csv").write_text(rows)
    recs, rejects = GoPro(tmp_path).scan()
    assert rejects == []
    assert {r.recording_id: (r.label, r.split) for r in recs} == {
        "walk a": ("walking", "train"), "sub/walk b": ("stairs", "test")}


def test_split_column_must_cover_every_file(tmp_path, shared_data):
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(shared_data / CLIP, tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,label,split\na.mp4,walking,train\n")
    with pytest.raises(LayoutError, match=r"split must be one of .* missing or invalid for \['b'\]"):
        GoPro(tmp_path).scan()


def test_file_without_telemetry_is_rejected_with_the_tracks_found(tmp_path, make_video):
    make_video(tmp_path / "plain.mp4")
    recs, rejects = GoPro(tmp_path, label="walking").scan()
    assert recs == [] and len(rejects) == 1
    assert "no video stream or no 'GoPro MET' telemetry track" in rejects[0].reason
    assert rejects[0].item == "plain.mp4"


def test_folder_without_mp4_is_a_layout_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LayoutError, match=r"GoPro \.mp4 file not found.*notes\.txt"):
        GoPro(tmp_path).scan()


def test_gpmf_scal_per_axis_and_sticky_metadata():
    accl = struct.pack(">6h", 10, 20, 30, -10, -20, -30)
    first = nest("DEVC", nest("STRM", klv("SIUN", "c", 4, b"m/s\xb2"), klv("ORIN", "c", 3, b"ZXY"),
                              klv("SCAL", "s", 2, struct.pack(">3h", 10, 20, 30)), klv("ACCL", "s", 6, accl)))
    second = nest("DEVC", nest("STRM", klv("ACCL", "s", 6, accl)))
    sticky: dict = {}
    block = gpmf.sensor_blocks(first, ("ACCL",), sticky)["ACCL"]
    assert np.allclose(block.values, [[1, 1, 1], [-1, -1, -1]])
    assert (block.unit, block.orin) == ("m/s^2", "ZXY")
    again = gpmf.sensor_blocks(second, ("ACCL",), sticky)["ACCL"]
    assert np.allclose(again.values, block.values) and again.orin == "ZXY"


def test_gpmf_truncated_entry_raises():
    payload = nest("DEVC", nest("STRM", klv("ACCL", "s", 6, struct.pack(">6h", *range(6)))))
    with pytest.raises(gpmf.GpmfError, match="needs"):
        gpmf.parse(payload[:-4])


def test_orient_negates_lower_case_axes():
    values = np.array([[1.0, 2.0, 3.0]])
    assert gpmf.orient(values, "XzY").tolist() == [[1.0, 3.0, -2.0]]
    with pytest.raises(gpmf.GpmfError):
        gpmf.orient(values, "XXY")
